"""The whole Fashion-RAG recipe recomputed from docs/recipe.md, against what the project's library API produces.

`Reference` below is written from docs/recipe.md alone, on torch, diffusers model classes, transformers layers
and Pillow, and calls no project code: it reads the tiny bundle's files straight from its on-disk layout
(`torch.load(weights_only=True)` for the two `.pth`, `from_pretrained` for the stock parts), preprocesses
the garments by hand (composite on white, `img.resize((384, 512))`, shortest side 224 bicubic, centre
crop, CLIP mean/std), runs the inversion adapter from its state dict with `F.linear`, injects the garment
tokens into an explicitly run CLIP text transformer, draws the pose map by brute force, builds the
27-channel UNet input by hand, and runs DDIM (sampler rules 1-2) and classifier-free guidance itself.

The project is driven through `Editor.edit` (photo -> prepare -> user mask -> edit) and
`FashionRAGPipeline.__call__`; forward hooks capture what its UNet and VAE decoder receive.

Tolerances, all in fp32 on the CPU, where the two sides run the same weights through the same kernels
in nearly the same order (measured differences are ~1e-6):
- garment tokens, text embeddings, every UNet input and the VAE decoder input: 1e-4 absolute (values are
  O(1); a planted deviation moves them by 1e-2 or more);
- decoded frames: 1 grey level (the project returns uint8 frames; rounding may flip a level);
- fp16 (the GPU path's precision, run on the CPU) against the fp32 reference: decoded frames within
  0.02 per pixel and 0.002 on average (`test_half_precision_matches_the_fp32_reference`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from .conftest import ASTRONAUT

TOL = 1e-4
STEPS = 2  # two DDIM steps: the second one's input checks the first update

# docs/recipe.md, facts the reference is written from.
FRAME_H, FRAME_W = 512, 384
LATENT_H, LATENT_W = 64, 48
VAE_SCALE = 0.18215
SIGMA = 9.0  # pose map: exp(-d^2 / 9^2)
TOKENS = 16
PLACEHOLDER = 259  # "$"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP normalisation (the CLIP image processor's)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WHAT = {"dresses": "a dress", "upper_body": "an upper body garment", "lower_body": "a lower body garment"}


# --------------------------------------------------------------------------------------------------
# The reference


def _state_dict(directory: Path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(directory / name, weights_only=True, map_location="cpu")


class Reference:
    """docs/recipe.md's recipe over the tiny bundle's files, with no project code."""

    def __init__(self, bundle: Path) -> None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPConfig, CLIPModel, CLIPTextModel, CLIPTokenizer

        sd2, fashion, encoder = bundle / "sd2-inpainting", bundle / "fashion-rag", bundle / "garment-encoder"
        self.tokenizer = CLIPTokenizer.from_pretrained(str(sd2 / "tokenizer"))
        self.text = CLIPTextModel.from_pretrained(str(sd2 / "text_encoder")).eval()
        self.vae = AutoencoderKL.from_pretrained(str(sd2 / "vae")).eval()
        config = UNet2DConditionModel.load_config(str(sd2 / "unet"))
        config["in_channels"] = 27
        self.unet = UNet2DConditionModel.from_config(config).eval()
        self.unet.load_state_dict(_state_dict(fashion, "unet_120000.pth"), strict=True)
        # The laion repo holds a whole CLIPModel; its vision tower is the garment encoder.
        self.vision = CLIPModel.from_pretrained(str(encoder)).vision_model.eval()
        self.vision_config = CLIPConfig.from_pretrained(str(encoder)).vision_config
        self.adapter = _state_dict(fashion, "inversion_adapter_120000.pth")
        # DDIM schedule: scaled_linear betas 0.00085 to 0.012 over 1000 steps (computed as diffusers does, fp32).
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    # ---- garment tokens (docs/recipe.md, garment tokens rules 1-4)

    @staticmethod
    def garment_pixels(image: Image.Image) -> torch.Tensor:
        """(3, 224, 224): on white, stretched with Pillow's default filter, CLIP-preprocessed by hand."""
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image.convert("RGBA"))
        image = image.convert("RGB").resize((384, 512))  # the official loader's call: BICUBIC by default
        # Shortest side to 224 bicubic (224 x int(224 * 512 / 384) = 224 x 298), centre crop 224.
        image = image.resize((224, 298), Image.Resampling.BICUBIC)
        top = (298 - 224) // 2
        array = np.asarray(image, dtype=np.float32)[top : top + 224] / 255.0
        array = (array - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
        return torch.from_numpy(array).permute(2, 0, 1)

    @torch.no_grad()
    def vision_hidden(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 257, width) `last_hidden_state`: embeddings, pre-layernorm, encoder; no post layernorm."""
        hidden = self.vision.pre_layrnorm(self.vision.embeddings(pixels))
        for layer in self.vision.encoder.layers:
            hidden = layer(hidden, None)
        return hidden

    @torch.no_grad()
    def adapter_tokens(self, hidden: torch.Tensor, config=None, eps: float | None = None) -> torch.Tensor:
        """(N, 16, token_width): CLIPEncoderLayer(vision config), token 0, LayerNorm with the config's eps,
        Linear, GELU, Linear, GELU, Linear (Dropout is the identity in eval)."""
        from transformers.models.clip.modeling_clip import CLIPEncoderLayer

        config = config or self.vision_config
        state = self.adapter
        prefix = "encoder_layers.0."
        layer = CLIPEncoderLayer(config).eval()
        layer.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        x = layer(hidden, None)[:, 0]
        eps = config.layer_norm_eps if eps is None else eps
        x = F.layer_norm(x, (x.shape[-1],), state["post_layernorm.weight"], state["post_layernorm.bias"], eps)
        x = F.gelu(F.linear(x, state["layers.0.weight"], state["layers.0.bias"]))
        x = F.gelu(F.linear(x, state["layers.3.weight"], state["layers.3.bias"]))
        x = F.linear(x, state["layers.6.weight"], state["layers.6.bias"])
        return x.reshape(x.shape[0], TOKENS, -1)

    def garment_tokens(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.garment_pixels(image) for image in images])
        return self.adapter_tokens(self.vision_hidden(pixels))

    # ---- text (docs/recipe.md, garment tokens rules 5-8)

    @torch.no_grad()
    def encode(self, prompt: str, injected: torch.Tensor | None = None) -> torch.Tensor:
        """(1, 77, width): token embedding, garment tokens over the `$`s, positions, causal encoder, final norm."""
        ids = self.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        ids = ids.input_ids
        model = self.text
        hidden = model.embeddings.token_embedding(ids)
        if injected is not None:
            start = int((ids[0] == PLACEHOLDER).nonzero()[0])
            hidden[0, start : start + len(injected)] = injected
        hidden = hidden + model.embeddings.position_embedding(torch.arange(77))[None]
        causal = torch.full((77, 77), float("-inf")).triu(1)[None, None]  # no padding mask
        for layer in model.encoder.layers:
            hidden = layer(hidden, causal)
        return model.final_layer_norm(hidden)

    def conditional(self, category: str, tokens: torch.Tensor | None, description: str = "") -> torch.Tensor:
        if tokens is None:
            return self.encode(f"a photo of a model wearing {WHAT[category]}. {description}")
        n = tokens.shape[0]
        prompt = f"a photo of a model wearing {WHAT[category]} made of " + " $ " * (TOKENS * n)
        return self.encode(prompt, tokens.reshape(TOKENS * n, -1))

    # ---- person inputs (docs/recipe.md, UNet input rules 1-5)

    @staticmethod
    def pose_map(keypoints: np.ndarray) -> np.ndarray:
        """(18, 512, 384) by brute force: exp(-d^2 / 9^2) at every pixel, over its maximum; NaN -> zeros."""
        ys, xs = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float64)
        maps = np.zeros((18, FRAME_H, FRAME_W), np.float64)
        for k, (x, y) in enumerate(keypoints):
            if np.isfinite(x) and np.isfinite(y):
                channel = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / SIGMA**2)
                maps[k] = channel / channel.max()
        return maps.astype(np.float32)

    @torch.no_grad()
    def condition(
        self, frame: np.ndarray, mask: np.ndarray, pose: np.ndarray, generator: torch.Generator, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(initial noise (B, 4, 64, 48), condition channels 4-26 of the conditional half (1, 23, 64, 48)).

        Random draws in stock SD2-inpainting order: the initial noise, then the VAE posterior sample.
        """
        noise = torch.randn((batch, 4, LATENT_H, LATENT_W), generator=generator)  # DDIM's init sigma is 1
        image = torch.from_numpy(frame.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        binary = torch.from_numpy((mask >= 0.5).astype(np.float32))[None, None]
        masked = image * (binary < 0.5)
        moments = self.vae.quant_conv(self.vae.encoder(masked))
        mean, logvar = moments.chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        masked_latents = (mean + std * torch.randn(mean.shape, generator=generator)) * VAE_SCALE
        mask_latent = binary[:, :, ::8, ::8]  # nearest: output pixel i samples input pixel 8 i
        # Bilinear 8x down, align_corners False: output i sits at input 8 i + 3.5, the mean of rows 8i+3, 8i+4.
        p = torch.from_numpy(pose)[None]
        pose_latent = (p[:, :, 3::8, 3::8] + p[:, :, 4::8, 3::8] + p[:, :, 3::8, 4::8] + p[:, :, 4::8, 4::8]) / 4
        return noise, torch.cat([mask_latent, masked_latents, pose_latent], dim=1)

    # ---- sampling (docs/recipe.md, sampler rules 1-2)

    @staticmethod
    def ddim_timesteps(steps: int) -> list[int]:
        ratio = 1000 // steps  # "leading" spacing with steps_offset 1
        return [(steps - 1 - i) * ratio + 1 for i in range(steps)]

    def ddim_step(self, x: torch.Tensor, eps: torch.Tensor, t: int, steps: int) -> torch.Tensor:
        """Eta 0, no clipping; the step after t = 1 uses alphas_cumprod[0] (set_alpha_to_one False)."""
        prev = t - 1000 // steps
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[prev] if prev >= 0 else self.alphas_cumprod[0]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps

    @torch.no_grad()
    def sample(
        self,
        frame: np.ndarray,
        mask: np.ndarray,
        pose: np.ndarray,
        conditional: torch.Tensor,
        seed: int,
        steps: int = STEPS,
        guidance: float = 7.5,
        batch: int = 1,
        dpm: bool = False,
    ) -> Run:
        generator = torch.Generator().manual_seed(seed)
        latents, condition = self.condition(frame, mask, pose, generator, batch)
        unconditional = self.encode("")
        cond = condition.repeat(batch, 1, 1, 1)
        uncond = cond.clone()
        uncond[:, 5:] = 0  # no pose for the unconditional half
        text = torch.cat([unconditional.repeat(batch, 1, 1), conditional.repeat(batch, 1, 1)])
        run = Run(conditional=conditional, unconditional=unconditional)
        scheduler = None
        if dpm:
            from diffusers import DPMSolverMultistepScheduler

            scheduler = DPMSolverMultistepScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                num_train_timesteps=1000,
                algorithm_type="dpmsolver++",
                solver_order=2,
                timestep_spacing="leading",
                steps_offset=1,
            )
            scheduler.set_timesteps(steps)
            timesteps = [int(t) for t in scheduler.timesteps]
        else:
            timesteps = self.ddim_timesteps(steps)
        for t in timesteps:
            model_input = torch.cat([torch.cat([latents] * 2), torch.cat([uncond, cond])], dim=1)
            run.unet_inputs.append(model_input)
            run.timesteps.append(t)
            eps_u, eps_c = self.unet(model_input, t, encoder_hidden_states=text).sample.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
            if scheduler is not None:
                latents = scheduler.step(eps, t, latents).prev_sample
            else:
                latents = self.ddim_step(latents, eps, t, steps)
        run.decoder_input = latents / VAE_SCALE
        decoded = self.vae.decode(run.decoder_input).sample
        run.frames = (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        return run


@dataclass
class Run:
    """What one sampling run fed its models and produced (the reference's, or the project's via hooks)."""

    conditional: torch.Tensor | None = None
    unconditional: torch.Tensor | None = None
    unet_inputs: list[torch.Tensor] = field(default_factory=list)  # (2B, 27, 64, 48) per step
    timesteps: list[int] = field(default_factory=list)
    texts: list[torch.Tensor] = field(default_factory=list)  # (2B, 77, width) per step
    decoder_input: torch.Tensor | None = None
    frames: np.ndarray | None = None  # (B, 512, 384, 3) in [0, 1]


class Capture:
    """Forward hooks on the project's UNet and VAE decoder, recording a Run."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.run = Run()

    def __enter__(self) -> Run:
        def unet_hook(_module, args, kwargs):
            sample = args[0] if args else kwargs["sample"]
            timestep = args[1] if len(args) > 1 else kwargs["timestep"]
            self.run.unet_inputs.append(sample.detach().float().clone())
            self.run.timesteps.append(int(timestep))
            self.run.texts.append(kwargs["encoder_hidden_states"].detach().float().clone())

        def decoder_hook(_module, args):
            self.run.decoder_input = args[0].detach().float().clone()

        self.handles = [
            self.pipeline.unet.register_forward_pre_hook(unet_hook, with_kwargs=True),
            self.pipeline.vae.post_quant_conv.register_forward_pre_hook(decoder_hook),
        ]
        return self.run

    def __exit__(self, *exc_info) -> None:
        for handle in self.handles:
            handle.remove()


def assert_runs_match(ours: Run, ref: Run, frames: np.ndarray, batch: int = 1, atol: float = TOL) -> None:
    """Every captured stage of the project's run equals the reference's."""
    assert ours.timesteps == ref.timesteps
    assert len(ours.unet_inputs) == len(ref.unet_inputs)
    text = torch.cat([ref.unconditional.repeat(batch, 1, 1), ref.conditional.repeat(batch, 1, 1)])
    for step, (mine, theirs) in enumerate(zip(ours.unet_inputs, ref.unet_inputs, strict=True)):
        assert mine.shape == theirs.shape == (2 * batch, 27, LATENT_H, LATENT_W)
        for name, channels in (
            ("noisy latents", slice(0, 4)),
            ("mask", slice(4, 5)),
            ("masked latents", slice(5, 9)),
            ("pose", slice(9, 27)),
        ):
            torch.testing.assert_close(
                mine[:, channels],
                theirs[:, channels],
                atol=atol,
                rtol=0,
                msg=lambda m, n=name, s=step: f"{n}, step {s}: {m}",
            )
        torch.testing.assert_close(ours.texts[step], text, atol=atol, rtol=0, msg=lambda m: f"text embeddings: {m}")
    # Compared as latents (the decoder sees latents / 0.18215, values ~5x larger).
    torch.testing.assert_close(ours.decoder_input * VAE_SCALE, ref.decoder_input * VAE_SCALE, atol=atol, rtol=0)
    assert frames.shape == ref.frames.shape
    assert np.abs(frames.astype(np.float64) - ref.frames * 255.0).max() <= 1.0 + 1e-3


# --------------------------------------------------------------------------------------------------
# Fixtures: the reference, an editor, a prepared photo with a user mask, and garments


@pytest.fixture(scope="module")
def reference(tiny_bundle) -> Reference:
    return Reference(tiny_bundle)


@pytest.fixture(scope="module")
def editor(tiny_settings):
    """An Editor of its own over the tiny bundle (no catalog needed: garments here are uploads)."""
    from fashion_rag.editor import Editor

    return Editor.from_settings(tiny_settings)


def soft_user_mask() -> Image.Image:
    """A painted 384x512 mask with grey levels on both sides of 0.5: only >= 0.5 counts (UNet input rule 4)."""
    mask = np.zeros((FRAME_H, FRAME_W), np.uint8)
    mask[150:420, 70:320] = 200  # 0.78: regenerate
    mask[150:420, 200:320] = 100  # 0.39: keep
    mask[100:150, 120:260] = 128  # 0.502: regenerate
    return Image.fromarray(mask)


@pytest.fixture(scope="module")
def person(editor):
    from fashion_rag.person.photo import load_photo

    prepared = editor.prepare(load_photo(ASTRONAUT), "upper_body")
    return editor.with_user_mask(prepared, soft_user_mask())


def garment_images() -> list[Image.Image]:
    """A transparent PNG (background RGB black under alpha 0), a 5:4 landscape one, a tall grey one."""
    rng = np.random.default_rng(11)
    rgba = np.zeros((300, 240, 4), np.uint8)
    rgba[40:260, 50:190, :3] = rng.integers(0, 256, (220, 140, 3), dtype=np.uint8)
    rgba[40:260, 50:190, 3] = 255
    rgba[30:40, 50:190, 3] = 120  # a half-transparent rim
    rgba[30:40, 50:190, :3] = (200, 30, 30)
    transparent = Image.fromarray(rgba)  # mode RGBA
    ys, xs = np.mgrid[0:200, 0:250]
    stripes = np.dstack([(xs % 7) * 36, (ys % 5) * 50, 255 - (xs + ys) % 256]).astype(np.uint8)
    landscape = Image.fromarray(stripes)  # 250x200: not 3:4
    tall = Image.fromarray(rng.integers(60, 200, (700, 200), dtype=np.uint8))  # mode L, 2:7
    return [transparent, landscape, tall]


def options(**overrides):
    """The EditRequest fields of these tests: STEPS steps, the rest of the published recipe unless overridden."""
    return {"steps": STEPS, **overrides}


def frames_of(result) -> np.ndarray:
    return np.stack([np.asarray(frame) for frame in result.frames])


def edit_and_capture(editor, person, **kwargs) -> tuple[Run, object]:
    from fashion_rag.request import EditRequest

    pipeline = editor.pipeline
    with Capture(pipeline) as run:
        result = editor.edit(EditRequest.of(person, **kwargs))
    return run, result


# --------------------------------------------------------------------------------------------------
# The recipe through Editor.edit


def test_two_uploaded_garments_match_the_reference_at_every_stage(editor, person, reference, one_torch_thread):
    """Transparent PNG + a non-3:4 garment, a description (not in the garment prompt), a soft user mask."""
    garments = garment_images()[:2]
    description = "red satin blouse with puff sleeves"
    ours, result = edit_and_capture(
        editor, person, garment_images=garments, description=description, seed=1234, **options()
    )
    # Garment tokens: the editor's own (cached or not) equal the reference's, in rank order.
    expected_tokens = reference.garment_tokens(garments)
    torch.testing.assert_close(editor.garment_tokens([], garments), expected_tokens, atol=TOL, rtol=0)
    # The pose map the editor hands over is the brute-force one from the person's keypoints.
    pose = reference.pose_map(person.keypoints)
    np.testing.assert_allclose(person.pose_map, pose, atol=1e-6, rtol=0)
    ref = reference.sample(
        np.asarray(person.frame),
        np.asarray(soft_user_mask()) / 255.0,
        pose,
        reference.conditional("upper_body", expected_tokens),
        seed=1234,
    )
    assert_runs_match(ours, ref, frames_of(result))
    assert ref.timesteps == [501, 1]
    assert result.recipe["prompt"] == "garment-tokens" and result.recipe["uploaded_garments"] == 2
    # Not vacuous: the pose and mask channels hold something, and the garments reach the prompt.
    first = ours.unet_inputs[0]
    assert first[1, 9:].abs().max() > 0.5 and 0.1 < first[1, 4].mean() < 0.9
    assert (ref.conditional - reference.conditional("upper_body", expected_tokens.flip(0))).abs().max() > 1e-3


def test_text_only_prompt_carries_the_description(editor, person, reference, one_torch_thread):
    """No garment: garment tokens rule 8's prompt `a photo of a model wearing {what}. {description}`, no `$`."""
    description = "navy wool blazer with gold buttons"
    ours, result = edit_and_capture(editor, person, description=description, seed=5, **options())
    ref = reference.sample(
        np.asarray(person.frame),
        np.asarray(soft_user_mask()) / 255.0,
        reference.pose_map(person.keypoints),
        reference.conditional("upper_body", None, description),
        seed=5,
    )
    assert_runs_match(ours, ref, frames_of(result))
    assert result.recipe["prompt"] == "text-only"
    other = reference.conditional("upper_body", None, "white linen shirt")
    assert (other - ref.conditional).abs().max() > 1e-3


def test_several_images_each_get_their_own_noise(editor, person, reference, one_torch_thread):
    ours, result = edit_and_capture(
        editor, person, garment_images=garment_images()[1:2], seed=77, **options(num_images=2)
    )
    tokens = reference.garment_tokens(garment_images()[1:2])
    ref = reference.sample(
        np.asarray(person.frame),
        np.asarray(soft_user_mask()) / 255.0,
        reference.pose_map(person.keypoints),
        reference.conditional("upper_body", tokens),
        seed=77,
        batch=2,
    )
    assert_runs_match(ours, ref, frames_of(result), batch=2)
    frames = frames_of(result).astype(int)
    images = [np.asarray(image).astype(int) for image in result.images]
    assert len(images) == 2
    assert np.abs(frames[0] - frames[1]).max() > 10, "the frames are copies"
    assert np.abs(images[0] - images[1]).max() > 10, "the images are copies"


def test_dpm_solver_option_runs_dpm_solver(editor, person, reference, one_torch_thread):
    """DPM-Solver++ 2M (leading spacing) as diffusers defines it, and not DDIM's picture."""
    garments = garment_images()[1:2]
    ours, result = edit_and_capture(
        editor, person, garment_images=garments, seed=9, **options(steps=3, scheduler="dpm++")
    )
    common = dict(
        frame=np.asarray(person.frame),
        mask=np.asarray(soft_user_mask()) / 255.0,
        pose=reference.pose_map(person.keypoints),
        conditional=reference.conditional("upper_body", reference.garment_tokens(garments)),
        seed=9,
        steps=3,
    )
    ref = reference.sample(**common, dpm=True)
    assert_runs_match(ours, ref, frames_of(result))
    ddim = reference.sample(**common)
    assert np.abs(ddim.frames - ref.frames).max() > 1e-2
    assert type(editor.pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler"
    editor.pipeline.use_scheduler("ddim")


# --------------------------------------------------------------------------------------------------
# The recipe through FashionRAGPipeline


@pytest.fixture(scope="module")
def pipeline(editor):
    return editor.pipeline


def random_frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)


def soft_mask_array() -> np.ndarray:
    """Float mask in 0..1 with values on both sides of 0.5."""
    mask = np.zeros((FRAME_H, FRAME_W), np.float32)
    mask[100:400, 60:330] = 0.7
    mask[100:400, 200:330] = 0.3
    mask[60:100, 60:330] = 0.5
    return mask


def test_three_garments_in_rank_order_and_guidance_below_one(pipeline, reference, one_torch_thread):
    """3 garments (their 48 tokens in rank order), a float mask, a pose map, and guidance 0.5 (sampler rule 2)."""
    garments = garment_images()
    frame, mask = random_frame(1), soft_mask_array()
    keypoints = np.full((18, 2), np.nan)
    keypoints[[0, 2, 5, 8, 11]] = [(190.3, 90.7), (140.2, 160.9), (250.6, 158.1), (150.5, 330.2), (240.4, 331.8)]
    pose = reference.pose_map(keypoints)
    for guidance in (7.5, 0.5):
        with Capture(pipeline) as ours:
            frames = pipeline(
                frame,
                mask,
                "dresses",
                garment_images=garments,
                pose_map=pose,
                num_inference_steps=STEPS,
                guidance_scale=guidance,
                generator=torch.Generator().manual_seed(3),
            )
        ref = reference.sample(
            frame,
            mask,
            pose,
            reference.conditional("dresses", reference.garment_tokens(garments)),
            seed=3,
            guidance=guidance,
        )
        assert_runs_match(ours, ref, np.rint(frames * 255))


def test_guidance_one_is_the_conditional_prediction_alone(pipeline, reference, one_torch_thread):
    """At g = 1 sampler rule 2's formula is eps_c: one half-batch, and the same picture."""
    garments = garment_images()[:1]
    frame, mask = random_frame(2), soft_mask_array()
    with Capture(pipeline) as ours:
        frames = pipeline(
            frame,
            mask,
            "lower_body",
            garment_images=garments,
            num_inference_steps=STEPS,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(4),
        )
    ref = reference.sample(
        frame,
        mask,
        np.zeros((18, FRAME_H, FRAME_W), np.float32),
        reference.conditional("lower_body", reference.garment_tokens(garments)),
        seed=4,
        guidance=1.0,
    )
    assert all(x.shape[0] == 1 for x in ours.unet_inputs)
    for mine, theirs in zip(ours.unet_inputs, ref.unet_inputs, strict=True):
        torch.testing.assert_close(mine[0], theirs[1], atol=TOL, rtol=0)  # the conditional half
    np.testing.assert_allclose(frames, ref.frames, atol=TOL, rtol=0)


def test_fifty_step_schedule_is_981_to_1(pipeline, reference):
    """Sampler rule 1: 50 DDIM steps with leading spacing give 981, 961, ..., 1."""
    assert reference.ddim_timesteps(50) == list(range(981, 0, -20))
    pipeline.use_scheduler("ddim")
    pipeline.scheduler.set_timesteps(50)
    assert [int(t) for t in pipeline.scheduler.timesteps] == list(range(981, 0, -20))


def test_defaults_are_the_published_recipe(pipeline):
    import inspect

    from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH
    from fashion_rag.request import EditRequest

    settings = EditRequest("upper_body", photo=Image.new("RGB", (8, 8)))  # every field left at its default
    assert (settings.steps, settings.guidance, settings.scheduler) == (50, 7.5, "ddim")
    assert (FRAME_HEIGHT, FRAME_WIDTH) == (512, 384)  # the frame every stage uses (not a setting: it never varied)
    parameters = inspect.signature(type(pipeline).__call__).parameters
    assert parameters["num_inference_steps"].default == 50 and parameters["guidance_scale"].default == 7.5


def test_half_precision_matches_the_fp32_reference(tiny_sources, reference, one_torch_thread):
    """The GPU path's fp16, run on the CPU: UNet, text encoder, garment encoder and adapter in fp16.

    The VAE stays fp32: CPU fp16 convolutions at 512x384 have no fast kernel (~10 s here), and a VAE of
    another dtype also checks every cast between the two. Tolerance: decoded frames within 0.02 (5 grey
    levels) at every pixel and 0.002 (half a level) on average; measured 0.008 / 0.0006 at 2 steps.
    Another seed moves the frames by ~0.15 on average.
    """
    from fashion_rag.generation.pipeline import FashionRAGPipeline

    half = FashionRAGPipeline.from_sources(tiny_sources, "cpu", dtype=torch.float16)
    half.vae.to(torch.float32)
    garments = garment_images()[:2]
    frame, mask = random_frame(5), soft_mask_array()
    keypoints = np.full((18, 2), np.nan)
    keypoints[[2, 5]] = [(140.2, 160.9), (250.6, 158.1)]
    pose = reference.pose_map(keypoints)
    with Capture(half) as ours:
        frames = half(
            frame,
            mask,
            "upper_body",
            garment_images=garments,
            pose_map=pose,
            num_inference_steps=1,
            generator=torch.Generator().manual_seed(6),
        )
    assert half.unet.dtype == half.text_encoder.dtype == half.adapter.dtype == torch.float16
    conditional = reference.conditional("upper_body", reference.garment_tokens(garments))
    ref = reference.sample(frame, mask, pose, conditional, seed=6, steps=1)
    difference = np.abs(frames - ref.frames)
    assert difference.max() <= 0.02 and difference.mean() <= 0.002, (difference.max(), difference.mean())
    assert ours.timesteps == ref.timesteps == [1]
    other = reference.sample(frame, mask, pose, conditional, seed=7, steps=1)
    assert np.abs(other.frames - ref.frames).mean() > 10 * 0.002


# --------------------------------------------------------------------------------------------------
# Parts the tiny bundle cannot reach


def test_adapter_layernorm_eps_comes_from_the_vision_config(tiny_bundle, reference, tmp_path):
    """The tiny bundle's eps (1e-5) equals LayerNorm's default; a config with eps 0.5 tells them apart."""
    from fashion_rag.generation.loading import load_adapter

    config = reference.vision_config.__class__.from_dict(reference.vision_config.to_dict())
    config.layer_norm_eps = 0.5
    adapter = load_adapter(tiny_bundle / "fashion-rag", config, torch.device("cpu"), torch.float32)
    hidden = torch.randn(2, 50, config.hidden_size, generator=torch.Generator().manual_seed(0)) * 0.05
    with torch.no_grad():
        ours = adapter(hidden)
    torch.testing.assert_close(ours, reference.adapter_tokens(hidden, config), atol=TOL, rtol=0)
    # Not vacuous: the same layer with LayerNorm's default eps after token 0 gives other tokens.
    assert (reference.adapter_tokens(hidden, config, eps=1e-5) - ours).abs().max() > 1e-3


def test_reference_reads_the_bundle_layout(tiny_bundle):
    """The files the reference reads are where docs/recipe.md (sources rule 1) says the published parts keep them."""
    assert json.loads((tiny_bundle / "sd2-inpainting" / "unet" / "config.json").read_text())["in_channels"] == 9
    for name in ("unet_120000.pth", "inversion_adapter_120000.pth"):
        assert (tiny_bundle / "fashion-rag" / name).is_file()
    assert (tiny_bundle / "garment-encoder" / "model.safetensors").is_file()
