"""The Fashion-RAG pipeline on the tiny bundle: wiring, garment tokens, determinism, input checks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag.errors import InputError, WeightsIntegrityError
from fashion_rag.generation.compose import feathered_alpha, paste_back
from fashion_rag.generation.loading import check_state_dict, load_fashion_unet, load_scheduler
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.generation.prompt import (
    GARMENT_PLACEHOLDER_ID,
    encode_text,
    garment_prompt,
    placeholder_span,
    text_only_prompt,
    tokenize,
)

STEPS = 3


@pytest.fixture(scope="module")
def pipeline(tiny_sources) -> FashionRAGPipeline:
    return FashionRAGPipeline.from_sources(tiny_sources, "cpu")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[100:400, 80:300] = 1
    pose = np.zeros((18, 512, 384), np.float32)
    pose[2, 150:170, 100:120] = 1.0
    pose[5, 150:170, 260:280] = 1.0
    garments = [Image.fromarray(rng.integers(0, 256, (300 + 40 * i, 220, 3), dtype=np.uint8)) for i in range(3)]
    return frame, mask, pose, garments


def run(pipeline, inputs, seed=0, **overrides):
    frame, mask, pose, garments = inputs
    arguments = dict(
        image=frame,
        mask=mask,
        category="upper_body",
        garment_images=garments[:1],
        pose_map=pose,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(seed),
    )
    arguments.update(overrides)
    return pipeline(**arguments)


# --- prompts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "what"),
    [("dresses", "a dress"), ("upper_body", "an upper body garment"), ("lower_body", "a lower body garment")],
)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_garment_prompt_has_16_placeholders_per_garment(pipeline, category, what, n):
    prompt = garment_prompt(category, n)
    assert prompt.startswith(f"a photo of a model wearing {what} made of ")
    ids = tokenize(pipeline.tokenizer, prompt)
    assert ids.shape == (1, 77)
    assert int((ids == GARMENT_PLACEHOLDER_ID).sum()) == 16 * n
    span = placeholder_span(ids, 16 * n)
    assert bool((ids[0, span] == GARMENT_PLACEHOLDER_ID).all())


def test_text_only_prompt_carries_the_description():
    assert (
        text_only_prompt("dresses", "red satin slip dress")
        == "a photo of a model wearing a dress. red satin slip dress"
    )
    assert "$" not in text_only_prompt("upper_body", "x")


@pytest.mark.parametrize("n", [1, 3])
def test_garment_tokens_land_exactly_at_the_placeholders(pipeline, n):
    """Injection equals a text encoder whose embedding table holds the garment vectors at spare ids."""
    tokenizer, encoder = pipeline.tokenizer, pipeline.text_encoder
    width = encoder.config.hidden_size
    tokens = torch.randn(16 * n, width, generator=torch.Generator().manual_seed(n))
    injected = encode_text(tokenizer, encoder, garment_prompt("dresses", n), tokens)

    reference_encoder = copy.deepcopy(encoder)
    spare_ids = torch.arange(40000, 40000 + 16 * n)
    reference_encoder.get_input_embeddings().weight.data[spare_ids] = tokens
    ids = tokenize(tokenizer, garment_prompt("dresses", n))
    span = placeholder_span(ids, 16 * n)
    ids[0, span] = spare_ids
    expected = reference_encoder(ids).last_hidden_state
    torch.testing.assert_close(injected, expected, atol=1e-6, rtol=0)

    # Nowhere else: positions before the first `$` see only the text (causal attention), so they are
    # unchanged; the placeholders themselves are changed.
    plain = encode_text(tokenizer, encoder, garment_prompt("dresses", n))
    torch.testing.assert_close(injected[:, : span.start], plain[:, : span.start], atol=0, rtol=0)
    assert (injected[:, span] - plain[:, span]).abs().amax() > 1e-3
    # The hook is removed afterwards.
    torch.testing.assert_close(encode_text(tokenizer, encoder, garment_prompt("dresses", n)), plain)


# --- the pipeline -----------------------------------------------------------------------------------


def test_output_shape_range_and_determinism(pipeline, inputs):
    first = run(pipeline, inputs)
    assert first.shape == (1, 512, 384, 3) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, run(pipeline, inputs))


def test_every_input_changes_the_output(pipeline, inputs):
    frame, mask, pose, garments = inputs
    base = run(pipeline, inputs)
    other_mask = np.zeros_like(mask)
    other_mask[50:300, 40:200] = 1
    variants = {
        "seed": run(pipeline, inputs, seed=1),
        "garment": run(pipeline, inputs, garment_images=garments[1:2]),
        "garment count": run(pipeline, inputs, garment_images=garments),
        "pose": run(pipeline, inputs, pose_map=np.roll(pose, 60, axis=1)),
        "mask": run(pipeline, inputs, mask=other_mask),
        "category": run(pipeline, inputs, category="dresses"),
        "guidance": run(pipeline, inputs, guidance_scale=3.0),
    }
    for name, image in variants.items():
        assert np.abs(image - base).max() > 1e-3, f"changing the {name} did not change the output"


def test_garment_order_matters(pipeline, inputs):
    _, _, _, garments = inputs
    forward = run(pipeline, inputs, garment_images=garments[:2])
    backward = run(pipeline, inputs, garment_images=garments[1::-1])
    assert np.abs(forward - backward).max() > 1e-3


def test_several_images_share_one_unet_call_and_differ(pipeline, inputs):
    batches = []
    handle = pipeline.unet.register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))
    try:
        images = run(pipeline, inputs, num_images=3)
    finally:
        handle.remove()
    assert images.shape == (3, 512, 384, 3)
    assert batches == [6] * STEPS  # [unconditional x 3; conditional x 3] per step, one call
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(images[a] - images[b]).max() > 1e-2, f"images {a} and {b} are copies"


def test_unet_input_layout_and_zero_pose_for_the_unconditional_half(pipeline, inputs):
    frame, mask, pose, _ = inputs
    seen = []
    handle = pipeline.unet.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        run(pipeline, inputs)
    finally:
        handle.remove()
    model_input = seen[0]
    assert model_input.shape == (2, 27, 64, 48)
    unconditional, conditional = model_input[0], model_input[1]
    torch.testing.assert_close(unconditional[:9], conditional[:9])  # latents, mask, masked latents
    assert unconditional[9:].abs().max() == 0  # no pose for the unconditional half
    expected_pose = torch.nn.functional.interpolate(torch.from_numpy(pose)[None], size=(64, 48), mode="bilinear")
    torch.testing.assert_close(conditional[9:], expected_pose[0])
    expected_mask = torch.from_numpy(mask)[None, None][..., ::8, ::8]  # nearest = top-left sample here
    torch.testing.assert_close(conditional[4], expected_mask[0, 0])


def test_progress_callback_counts_every_step(pipeline, inputs):
    calls = []
    run(pipeline, inputs, callback=lambda done, total: calls.append((done, total)))
    assert calls == [(i, STEPS) for i in range(1, STEPS + 1)]


def test_dpm_solver_option_gives_a_different_sampler_and_back(pipeline, inputs):
    ddim = run(pipeline, inputs)
    pipeline.use_scheduler("dpm++")
    try:
        dpm = run(pipeline, inputs)
        assert type(pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler"
    finally:
        pipeline.use_scheduler("ddim")
    assert pipeline.scheduler.config.timestep_spacing == "leading"
    np.testing.assert_array_equal(run(pipeline, inputs), ddim)
    assert dpm.shape == ddim.shape
    assert np.abs(dpm - ddim).max() > 1e-2, "the dpm++ option changed nothing"


def test_an_unknown_sampler_is_the_same_input_error_at_load_and_at_switch(pipeline, tiny_sources):
    """One scheduler builder (loading.make_scheduler): the loader and the switch refuse a name alike."""
    unknown = r"unknown scheduler 'euler': use one of ddim, dpm\+\+"
    sd2 = tiny_sources.require("sd2-inpainting")
    with pytest.raises(InputError, match=unknown):
        load_scheduler(sd2, "euler")
    with pytest.raises(InputError, match=unknown):
        pipeline.use_scheduler("euler")
    assert type(pipeline.scheduler).__name__ == "DDIMScheduler"
    assert type(load_scheduler(sd2, "dpm++")).__name__ == "DPMSolverMultistepScheduler"


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"category": "shoes"}, "unknown category 'shoes'"),
        ({"garment_images": [None]}, "not an image"),
        ({"garment_images": ["x"] * 4}, "takes 1 to 3"),
        ({"mask": np.ones((100, 100), np.float32)}, "mask has size"),
        ({"mask": np.zeros((512, 384), np.float32)}, "mask is empty"),
        ({"image": np.zeros((10, 10, 3), np.uint8)}, "person frame has shape"),
        ({"pose_map": np.zeros((17, 512, 384), np.float32)}, "pose map has shape"),
        ({"num_inference_steps": 0}, "steps=0"),
        ({"num_inference_steps": 1000}, "steps=1000"),
        ({"guidance_scale": -1.0}, "guidance=-1.0"),
        ({"guidance_scale": float("nan")}, "guidance=nan"),
        ({"num_images": 5}, "num_images=5"),
    ],
)
def test_bad_input_is_one_clear_value_error(pipeline, inputs, overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        run(pipeline, inputs, **overrides)
    assert isinstance(info.value, InputError)


def test_no_garments_uses_the_text_only_prompt(pipeline, inputs):
    with_text = run(pipeline, inputs, garment_images=None, description="red satin slip dress")
    other_text = run(pipeline, inputs, garment_images=None, description="blue denim jacket")
    assert np.abs(with_text - other_text).max() > 1e-3


# --- strict loading ---------------------------------------------------------------------------------


def test_renamed_or_missing_unet_key_is_refused_by_name(pipeline):
    state = {k: v.clone() for k, v in pipeline.unet.state_dict().items()}
    renamed = dict(state)
    renamed["conv_in.weights"] = renamed.pop("conv_in.weight")
    with pytest.raises(
        WeightsIntegrityError, match=r"missing keys \['conv_in.weight'\].*unexpected keys \['conv_in.weights'\]"
    ):
        check_state_dict(pipeline.unet, renamed, "unet_120000.pth")
    missing = dict(state)
    del missing["conv_out.bias"]
    with pytest.raises(WeightsIntegrityError, match="conv_out.bias"):
        check_state_dict(pipeline.unet, missing, "unet_120000.pth")
    wrong = dict(state)
    wrong["conv_in.weight"] = wrong["conv_in.weight"][:, :9]
    with pytest.raises(WeightsIntegrityError, match="shape of conv_in.weight"):
        check_state_dict(pipeline.unet, wrong, "unet_120000.pth")


def test_tampered_checkpoint_file_is_refused_at_load(tiny_bundle, tmp_path):
    import shutil

    fashion = tmp_path / "fashion-rag"
    shutil.copytree(tiny_bundle / "fashion-rag", fashion)
    for cached in fashion.glob("*.safetensors"):
        cached.unlink()
    state = torch.load(fashion / "unet_120000.pth", weights_only=True)
    state["conv_in.weightz"] = state.pop("conv_in.weight")
    torch.save(state, fashion / "unet_120000.pth")
    with pytest.raises(WeightsIntegrityError, match="conv_in.weight"):
        load_fashion_unet(tiny_bundle / "sd2-inpainting", fashion, torch.device("cpu"), torch.float32)


def test_unet_loader_reads_only_the_config_of_the_base_unet(tiny_bundle, tmp_path, monkeypatch):
    import safetensors.torch

    opened = []
    real_load_file = safetensors.torch.load_file
    monkeypatch.setattr(
        safetensors.torch, "load_file", lambda path, *a, **k: opened.append(str(path)) or real_load_file(path, *a, **k)
    )
    real_torch_load = torch.load
    monkeypatch.setattr(torch, "load", lambda path, *a, **k: opened.append(str(path)) or real_torch_load(path, *a, **k))
    unet = load_fashion_unet(
        tiny_bundle / "sd2-inpainting", tiny_bundle / "fashion-rag", torch.device("cpu"), torch.float32
    )
    assert unet.config.in_channels == 27
    assert opened and all("fashion-rag" in path for path in opened)
    assert not any("sd2-inpainting" in path for path in opened)


# --- paste-back ------------------------------------------------------------------------------------


def test_feathered_alpha_is_one_inside_and_zero_beyond_the_band():
    mask = np.zeros((512, 384), bool)
    mask[200:300, 100:200] = True
    alpha = feathered_alpha(mask, 8)
    assert (alpha[mask] == 1).all()
    assert alpha[200, 96] == pytest.approx(0.5, abs=0.05)
    assert alpha[200, 91] == 0 and alpha[190, 100] == 0
    assert alpha[150, 150] == 0


def test_paste_back_keeps_the_original_outside_the_band_bit_for_bit():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (512, 384, 3), dtype=np.uint8)
    edited = rng.random((512, 384, 3), dtype=np.float32)
    mask = np.zeros((512, 384), bool)
    mask[100:400, 80:300] = True
    alpha = feathered_alpha(mask, 8)
    result = paste_back(original, edited, alpha)
    outside = alpha == 0
    np.testing.assert_array_equal(result[outside], original[outside])
    np.testing.assert_array_equal(result[mask], np.rint(edited[mask] * 255).astype(np.uint8))
    band = (alpha > 0) & (alpha < 1)
    assert band.sum() > 0


def test_feathered_alpha_and_paste_back_against_brute_force():
    """alpha = 1 - d / feather, d the Euclidean distance to the nearest mask pixel (brute force here; the
    code's 5x5 distance transform is within 0.02 of it), and result = rint(alpha edit + (1 - alpha) original)."""
    mask = np.zeros((60, 45), bool)
    mask[20:35, 10:22] = True
    mask[40, 30] = True
    ys, xs = np.mgrid[0:60, 0:45]
    inside = np.argwhere(mask)
    distance = np.sqrt(((ys[..., None] - inside[:, 0]) ** 2 + (xs[..., None] - inside[:, 1]) ** 2).min(axis=-1))
    expected_alpha = np.clip(1 - distance / 6.0, 0, 1)
    alpha = feathered_alpha(mask, 6)
    np.testing.assert_allclose(alpha, expected_alpha, atol=0.02, rtol=0)
    assert (alpha[expected_alpha == 0] == 0).all()
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (60, 45, 3), dtype=np.uint8)
    edited = rng.random((60, 45, 3), dtype=np.float32)
    expected = np.rint(alpha[..., None] * edited * 255 + (1 - alpha[..., None]) * original)
    np.testing.assert_allclose(paste_back(original, edited, alpha), expected, atol=1)
