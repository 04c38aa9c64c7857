"""Each speed option against the default path on the tiny bundle (CPU), with its stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag.generation.pipeline import FashionRAGPipeline

STEPS = 3


@pytest.fixture(scope="module")
def pipeline(tiny_sources) -> FashionRAGPipeline:
    return FashionRAGPipeline.from_sources(tiny_sources, "cpu")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(5)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[80:420, 60:320] = 1
    pose = rng.random((18, 512, 384), dtype=np.float32)
    garment = Image.fromarray(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8))
    return frame, mask, pose, garment


def run(pipeline, inputs, **overrides):
    frame, mask, pose, garment = inputs
    arguments = dict(
        image=frame,
        mask=mask,
        category="dresses",
        garment_images=[garment],
        pose_map=pose,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(0),
    )
    arguments.update(overrides)
    return pipeline(**arguments)


def is_channels_last(model: torch.nn.Module) -> bool:
    convolutions = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return bool(convolutions) and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)


def test_enable_fast_path_on_the_cpu_changes_nothing(pipeline, inputs):
    """On the CPU `enable_fast_path` keeps the eager UNet (CUDA graphs are CUDA's) and no longer sets
    channels-last, which issue 21 measured slower for this UNet: the same picture, bit for bit."""
    default = run(pipeline, inputs)
    path = pipeline.enable_fast_path()
    assert path.mode == "eager" and pipeline.unet_runner is None
    assert not is_channels_last(pipeline.unet) and not is_channels_last(pipeline.vae)
    np.testing.assert_array_equal(run(pipeline, inputs), default)


def test_enable_low_vram_gives_the_same_pictures(pipeline, inputs):
    """The project's own `enable_low_vram`: one image at a time through the VAE decoder (and model offload
    on a GPU, not here): tolerance 1e-4 (batch-size dependent convolution kernels)."""
    default = run(pipeline, inputs, num_images=2)
    decoded_batches = []
    pipeline.enable_low_vram()
    handle = pipeline.vae.decoder.register_forward_pre_hook(lambda _m, args: decoded_batches.append(args[0].shape[0]))
    try:
        sliced = run(pipeline, inputs, num_images=2)
        assert decoded_batches == [1, 1]  # sliced: the option did something
    finally:
        handle.remove()
        pipeline.vae.disable_slicing()
    np.testing.assert_allclose(sliced, default, atol=1e-4, rtol=0)


def test_precomputed_garment_tokens_give_the_same_picture(pipeline, inputs):
    """The token cache's path: tokens computed once, passed in later. Bit-identical."""
    _, _, _, garment = inputs
    tokens = pipeline.encode_garments([garment])
    np.testing.assert_array_equal(
        run(pipeline, inputs, garment_images=None, garment_tokens=tokens), run(pipeline, inputs)
    )


@pytest.mark.slow  # inductor compiles the UNet for minutes on 2 cores: run by `make test-slow`
def test_compiled_unet_gives_the_same_picture(pipeline, inputs):
    """`enable_fast_path(compile_unet=True)` and its warm-up: torch.compile (inductor on the CPU here; CUDA graphs on a GPU):
    tolerance 1e-3, fused kernels reorder maths."""
    default = run(pipeline, inputs)
    eager = pipeline.unet
    pipeline.enable_fast_path(compile_unet=True)
    try:
        assert pipeline.unet is not eager  # the compiled module
        assert pipeline.warm_up().warmup_s is not None
        compiled = run(pipeline, inputs)
    finally:
        pipeline.unet = eager
    np.testing.assert_allclose(compiled, default, atol=1e-3, rtol=0)


def test_dpm_solver_is_a_different_sampler_with_the_same_contract(pipeline, inputs):
    """DPM-Solver++ is not meant to give DDIM's picture (tests/test_recipe_reference.py checks which picture
    it gives); it must be deterministic and well-formed, and differ from DDIM's."""
    ddim = run(pipeline, inputs)
    pipeline.use_scheduler("dpm++")
    try:
        first = run(pipeline, inputs)
        second = run(pipeline, inputs)
    finally:
        pipeline.use_scheduler("ddim")
    np.testing.assert_array_equal(first, second)
    assert first.shape == (1, 512, 384, 3) and np.isfinite(first).all()
    assert np.abs(first - ddim).max() > 1e-2, "the dpm++ option changed nothing"


def test_low_vram_offloads_to_the_device_asked_for(pipeline, monkeypatch):
    """`--low-vram` honours `--device`: model offload to that GPU (cuda:1 here, recorded, not run), none for cpu."""
    offloaded = []
    monkeypatch.setattr(type(pipeline), "enable_model_cpu_offload", lambda self, device=None: offloaded.append(device))
    try:
        pipeline.enable_low_vram("cpu")
        assert offloaded == [] and pipeline.speed_path.mode == "eager"
        pipeline.enable_low_vram(torch.device("cuda:1"))
        assert offloaded == [torch.device("cuda:1")] and "cuda:1" in pipeline.speed_path.describe()
    finally:
        pipeline.vae.disable_slicing()
