"""The Fashion-RAG inpainting pipeline (docs/recipe.md), a diffusers `DiffusionPipeline`.

One call, with B = number of images:

    frame (512x384 RGB) -> [-1, 1] -> masked where mask >= 0.5 -> VAE posterior sample * 0.18215 (1, 4, 64, 48)
    mask (512x384) -> binarised at 0.5 -> nearest resize                                          (1, 1, 64, 48)
    pose map (18, 512, 384) -> bilinear resize, align_corners False                               (1, 18, 64, 48)
    garments -> CLIP ViT-H/14 -> inversion adapter -> 16 tokens each -> prompt embedding            (1, 77, 1024)
    for t in DDIM(50, leading): UNet([latents | mask | masked latents | pose]) on the batch
        [unconditional x B; conditional x B] (zero pose map for the unconditional half), then
        eps = eps_u + g * (eps_c - eps_u)
    VAE decode -> (B, 512, 384, 3) in [0, 1]

The random draws come in the order of diffusers' StableDiffusionInpaintPipeline (initial noise, then
the VAE posterior sample), so with a 9-channel UNet and a text prompt the two give the same result;
tests/test_generation_reference.py checks that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from fashion_rag.devices import default_dtype, pick_device
from fashion_rag.errors import InputError, check_category
from fashion_rag.generation.garments import encode_garments
from fashion_rag.generation.graphs import CFG_BATCHES, SpeedPath, UNetGraphRunner, configure_compile_cache
from fashion_rag.generation.limits import MAX_GARMENTS, check_options
from fashion_rag.generation.loading import (
    SCHEDULER_CLASSES,
    GenerationComponents,
    load_generation_components,
    make_scheduler,
)
from fashion_rag.generation.prompt import encode_garment_prompt, encode_unconditional
from fashion_rag.images import FRAME_HEIGHT, FRAME_WIDTH, to_rgb

logger = logging.getLogger(__name__)

POSE_CHANNELS = 18

ProgressCallback = Callable[[int, int], None]  # (steps done, steps in all)


class FashionRAGPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->adapter->text_encoder->unet->vae"

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, image_encoder, image_processor, adapter) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            image_encoder=image_encoder,
            image_processor=image_processor,
            adapter=adapter,
        )
        self._scheduler_configs = {"ddim": scheduler.config}
        self._lock = threading.Lock()  # one generation at a time per pipeline
        self.unet_runner: UNetGraphRunner | None = None  # CUDA graphs of the UNet step (enable_fast_path)
        self.speed_path = SpeedPath("eager")

    @classmethod
    def from_components(cls, components: GenerationComponents) -> FashionRAGPipeline:
        return cls(
            vae=components.vae,
            text_encoder=components.text_encoder,
            tokenizer=components.tokenizer,
            unet=components.unet,
            scheduler=components.scheduler,
            image_encoder=components.garment_encoder,
            image_processor=components.image_processor,
            adapter=components.adapter,
        )

    @classmethod
    def from_sources(cls, sources, device: str | torch.device = "auto", dtype: torch.dtype | None = None):
        """Load every component from a weights.ModelSources onto `device` (fp16 on GPU, fp32 on CPU)."""
        device = pick_device(device) if isinstance(device, str) else device
        dtype = dtype or default_dtype(device)
        return cls.from_components(load_generation_components(sources, device, dtype))

    # ----------------------------------------------------------------------------------------------
    # Options

    def use_scheduler(self, name: str) -> None:
        """'ddim' (the published sampler) or 'dpm++' (DPM-Solver++ 2M, good in ~25 steps); InputError otherwise."""
        if type(self.scheduler).__name__ != SCHEDULER_CLASSES.get(name):
            self.scheduler = make_scheduler(self._scheduler_configs["ddim"], name)

    def enable_fast_path(self, compile_unet: bool = False, cuda_graphs: bool = True) -> SpeedPath:
        """Choose how the UNet step runs; `warm_up()` then captures or compiles it (the editor does both at start-up).

        On CUDA: replayed from CUDA graphs of the eager UNet (graphs.py), or with `compile_unet` torch.compile
        in reduce-overhead mode (inductor's kernels in its own CUDA graphs) with a persistent cache under the
        project's cache folder. Elsewhere, or with `cuda_graphs=False` (a ZeroGPU Space, whose main process
        has no CUDA), eager. Channels-last is not set: issue 21 measured it slower for this UNet in eager mode
        (43.3 ms against 30.9 ms a step on an H200).
        """
        on_cuda = self.unet.device.type == "cuda"
        if compile_unet:
            cache = configure_compile_cache()
            mode = "reduce-overhead" if on_cuda else None
            self.unet = torch.compile(self.unet, mode=mode, fullgraph=True, dynamic=False)
            self.speed_path = SpeedPath("compiled", f"torch.compile {mode or 'default'}, cache {cache}")
        elif on_cuda and cuda_graphs:
            self.unet_runner = UNetGraphRunner(self.unet)
            self.speed_path = SpeedPath("cuda-graphs", "not captured yet")
        else:
            why = "CUDA graphs need a CUDA device" if not on_cuda else "no CUDA graphs here (ZeroGPU)"
            self.speed_path = SpeedPath("eager", why)
        return self.speed_path

    @torch.no_grad()
    def warm_up(self, batches: tuple[int, ...] = CFG_BATCHES) -> SpeedPath:
        """Capture the CUDA graphs (one per CFG batch) or run the compiled UNet once at the page's default batch,
        so no user's request pays for it; nothing for the eager path."""
        tokens, hw = self.tokenizer.model_max_length, (FRAME_HEIGHT // 8, FRAME_WIDTH // 8)
        with self._lock:
            start = time.perf_counter()
            if self.unet_runner is not None and not self.unet_runner.graphs:
                self.unet_runner.capture(batches, tokens, hw)
                self.speed_path.note = f"{len(self.unet_runner.graphs)} batch sizes {sorted(self.unet_runner.graphs)}"
            elif self.speed_path.mode == "compiled" and self.speed_path.warmup_s is None:
                # The page's default is one image: CFG batch 2. Other batches compile on their first use.
                config, device, dtype = self.unet.config, self.unet.device, self.unet.dtype
                sample = torch.randn((2, config.in_channels, *hw), device=device, dtype=dtype)
                text = torch.randn((2, tokens, config.cross_attention_dim), device=device, dtype=dtype)
                for _ in range(3):  # reduce-overhead records its graph on the third call
                    self.unet(sample, torch.tensor(500, device=device), encoder_hidden_states=text, return_dict=False)
            else:  # eager, or already warm
                logger.info("UNet step: %s", self.speed_path.describe())
                return self.speed_path
            if self.unet.device.type == "cuda":
                torch.cuda.synchronize()
            self.speed_path.warmup_s = time.perf_counter() - start
        logger.info("UNet step: %s", self.speed_path.describe())
        return self.speed_path

    def enable_low_vram(self, device: torch.device | str | None = None) -> None:
        """One-image-at-a-time VAE, and on a CUDA `device` (default: where the UNet is) model CPU offload: one
        component on that GPU at a time, the rest in CPU memory. Eager: offload moves weights every call."""
        device = torch.device(device) if device is not None else self.unet.device
        self.vae.enable_slicing()
        if device.type == "cuda":
            self.enable_model_cpu_offload(device=device)
        self.speed_path = SpeedPath(
            "eager", f"low VRAM{', model CPU offload to ' + str(device) if device.type == 'cuda' else ''}"
        )

    # ----------------------------------------------------------------------------------------------
    # Inputs

    def frame_tensor(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """(1, 3, 512, 384) in [-1, 1] from a 384x512 RGB image."""
        array = np.asarray(to_rgb(image) if isinstance(image, Image.Image) else image)
        if array.shape != (FRAME_HEIGHT, FRAME_WIDTH, 3):
            raise InputError(
                f"person frame has shape {array.shape}: expected {FRAME_HEIGHT}x{FRAME_WIDTH} RGB (frame the photo first)"
            )
        tensor = torch.from_numpy(array.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        return tensor.to(self.device, self.vae.dtype)

    def mask_tensor(self, mask: Image.Image | np.ndarray) -> torch.Tensor:
        """(1, 1, 512, 384) binary mask, 1 = regenerate."""
        array = np.asarray(mask.convert("L") if isinstance(mask, Image.Image) else mask)
        if array.ndim == 3:
            array = array[..., 0]
        if array.shape != (FRAME_HEIGHT, FRAME_WIDTH):
            raise InputError(f"mask has size {array.shape}: expected {FRAME_HEIGHT}x{FRAME_WIDTH}, the frame's size")
        values = array.astype(np.float32)
        if array.dtype == np.uint8:
            values /= 255.0
        binary = (values >= 0.5).astype(np.float32)
        if not binary.any():
            raise InputError("the mask is empty: paint the region to regenerate")
        return torch.from_numpy(binary)[None, None].to(self.device, self.vae.dtype)

    def pose_tensor(self, pose_map: np.ndarray | torch.Tensor | None) -> torch.Tensor:
        """(1, 18, 512, 384) pose heatmaps (zeros when None)."""
        if pose_map is None:
            return torch.zeros(1, POSE_CHANNELS, FRAME_HEIGHT, FRAME_WIDTH, device=self.device, dtype=self.vae.dtype)
        tensor = torch.as_tensor(np.asarray(pose_map, dtype=np.float32))
        if tuple(tensor.shape[-3:]) != (POSE_CHANNELS, FRAME_HEIGHT, FRAME_WIDTH):
            raise InputError(f"pose map has shape {tuple(tensor.shape)}: expected (18, 512, 384)")
        return tensor.reshape(1, POSE_CHANNELS, FRAME_HEIGHT, FRAME_WIDTH).to(self.device, self.vae.dtype)

    check_options = staticmethod(check_options)  # generation/limits.py (the editor checks without torch)

    # ----------------------------------------------------------------------------------------------
    # Stages

    @torch.no_grad()
    def encode_garments(self, images: list[Image.Image]) -> torch.Tensor:
        """(n, 16, width) garment tokens for 1-3 garment images, in rank order."""
        if not 1 <= len(images) <= MAX_GARMENTS:
            raise InputError(f"{len(images)} garment images given: Fashion-RAG takes 1 to {MAX_GARMENTS}")
        return encode_garments(images, self.image_processor, self.image_encoder, self.adapter)

    @torch.no_grad()
    def encode_prompts(
        self, category: str, garment_tokens: torch.Tensor | None, description: str = ""
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(unconditional, conditional) embeddings, each (1, 77, width)."""
        conditional = encode_garment_prompt(self.tokenizer, self.text_encoder, category, garment_tokens, description)
        unconditional = encode_unconditional(self.tokenizer, self.text_encoder)
        return unconditional, conditional

    @torch.no_grad()
    def __call__(
        self,
        image: Image.Image | np.ndarray,
        mask: Image.Image | np.ndarray,
        category: str,
        garment_images: list[Image.Image] | None = None,
        garment_tokens: torch.Tensor | None = None,
        pose_map: np.ndarray | torch.Tensor | None = None,
        description: str = "",
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        num_images: int = 1,
        generator: torch.Generator | None = None,
        callback: ProgressCallback | None = None,
        prompt_embeds: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> np.ndarray:
        """Edited frames, (num_images, 512, 384, 3) float32 in [0, 1].

        Garments come as images or as precomputed tokens (n, 16, width); with neither, the text-only
        prompt of the category is used. `prompt_embeds` (unconditional, conditional) bypasses prompt
        encoding altogether (the reference test uses it to feed a plain text prompt).
        """
        check_category(category)
        self.check_options(num_inference_steps, guidance_scale, num_images)
        with self._lock:
            frame = self.frame_tensor(image)
            mask_full = self.mask_tensor(mask)
            pose_full = self.pose_tensor(pose_map)
            if prompt_embeds is None:
                if garment_images:
                    garment_tokens = self.encode_garments(list(garment_images))
                elif garment_tokens is not None and not 1 <= garment_tokens.shape[0] <= MAX_GARMENTS:
                    raise InputError(f"{garment_tokens.shape[0]} garments given: Fashion-RAG takes 1 to {MAX_GARMENTS}")
                prompt_embeds = self.encode_prompts(category, garment_tokens, description)
            return self._denoise(
                frame,
                mask_full,
                pose_full,
                prompt_embeds,
                num_inference_steps,
                guidance_scale,
                num_images,
                generator,
                callback,
            )

    @torch.no_grad()
    def alternatives(
        self,
        image: Image.Image | np.ndarray,
        mask: Image.Image | np.ndarray,
        conditionals: torch.Tensor,
        unconditional: torch.Tensor,
        pose_map: np.ndarray | torch.Tensor | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        generator: torch.Generator | None = None,
        callback: ProgressCallback | None = None,
    ) -> np.ndarray:
        """One edited frame per prompt, (n, 512, 384, 3) float32 in [0, 1], in one denoising batch.

        The n images share the person, mask, pose, initial noise and masked-frame latents and differ only in their
        conditional prompt (`conditionals`, (n, 77, width)), so image i is the edit that `__call__` makes with
        prompt i and the same generator seed (the draws come in the same order: noise (1, 4, 64, 48), then the
        posterior sample). With guidance the UNet batch is 2n: n <= 4 replays the CUDA graphs captured for 1-4
        images.
        """
        count = conditionals.shape[0]
        self.check_options(num_inference_steps, guidance_scale, count)
        with self._lock:
            frame, mask_full, pose_full = self.frame_tensor(image), self.mask_tensor(mask), self.pose_tensor(pose_map)
            return self._denoise(
                frame,
                mask_full,
                pose_full,
                (unconditional, conditionals),
                num_inference_steps,
                guidance_scale,
                count,
                generator,
                callback,
                shared_noise=True,
            )

    def _denoise(
        self,
        frame: torch.Tensor,
        mask_full: torch.Tensor,
        pose_full: torch.Tensor,
        prompt_embeds: tuple[torch.Tensor, torch.Tensor],
        steps: int,
        guidance: float,
        batch: int,
        generator: torch.Generator | None,
        callback: ProgressCallback | None,
        shared_noise: bool = False,
    ) -> np.ndarray:
        """`prompt_embeds`' conditional half is (1, 77, width), repeated for the batch, or (batch, 77, width): one
        prompt per image (`alternatives`). `shared_noise`: every image starts from the same initial noise."""
        device, dtype = self._execution_device, self.unet.dtype
        # With model CPU offload the inputs were built on the CPU: move them where the UNet runs.
        frame, mask_full, pose_full = (t.to(device) for t in (frame, mask_full, pose_full))
        unconditional, conditional = (e.to(device, dtype) for e in prompt_embeds)
        # docs/recipe.md sampler rule 2 for every g; at g == 1 it is eps_c exactly: the unconditional half is skipped.
        # (diffusers skips it for every g <= 1, which for g < 1 is not the formula.)
        use_guidance = guidance != 1.0
        latent_h, latent_w = FRAME_HEIGHT // 8, FRAME_WIDTH // 8

        self.scheduler.set_timesteps(steps, device=device)
        # Initial noise first, then the posterior sample: diffusers' order (see module docstring).
        shape = (1 if shared_noise else batch, self.vae.config.latent_channels, latent_h, latent_w)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.repeat(batch // shape[0], 1, 1, 1) * self.scheduler.init_noise_sigma

        masked_frame = frame * (mask_full < 0.5)
        posterior = self.vae.encode(masked_frame.to(self.vae.dtype)).latent_dist
        masked_latents = posterior.sample(generator) * self.vae.config.scaling_factor  # (1, 4, 64, 48)
        mask_latent = F.interpolate(mask_full, size=(latent_h, latent_w))  # nearest, (1, 1, 64, 48)
        pose_channels = self.unet.config.in_channels - 9  # 18 for Fashion-RAG, 0 for stock SD2 inpainting
        pose_latent = F.interpolate(pose_full, size=(latent_h, latent_w), mode="bilinear", align_corners=False)

        condition = [mask_latent.repeat(batch, 1, 1, 1), masked_latents.repeat(batch, 1, 1, 1)]
        if pose_channels:
            condition.append(pose_latent.repeat(batch, 1, 1, 1))
        condition = torch.cat(condition, dim=1).to(device, dtype)  # (B, 5 + 18, 64, 48)
        text = conditional.repeat(batch // conditional.shape[0], 1, 1)  # (batch, 77, width)
        if use_guidance:
            unconditional_condition = condition.clone()
            if pose_channels:
                unconditional_condition[:, 5:] = 0  # the unconditional half sees no pose
            condition = torch.cat([unconditional_condition, condition])
            text = torch.cat([unconditional.repeat(batch, 1, 1), text])

        for index, timestep in enumerate(self.scheduler.timesteps):
            model_input = torch.cat([latents] * 2) if use_guidance else latents
            model_input = self.scheduler.scale_model_input(model_input, timestep)
            model_input = torch.cat([model_input, condition], dim=1)  # (2B, 27, 64, 48)
            unet = self.unet_runner or self.unet  # the runner replays a CUDA graph where one fits this batch
            noise = unet(model_input, timestep, encoder_hidden_states=text, return_dict=False)[0]
            if use_guidance:
                noise_unconditional, noise_conditional = noise.chunk(2)
                noise = noise_unconditional + guidance * (noise_conditional - noise_unconditional)
            latents = self.scheduler.step(noise, timestep, latents, generator=generator, return_dict=False)[0]
            if callback is not None:
                callback(index + 1, len(self.scheduler.timesteps))

        decoded = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor, return_dict=False)[0]
        frames = (decoded / 2 + 0.5).clamp(0, 1)
        self.maybe_free_model_hooks()
        return frames.permute(0, 2, 3, 1).float().cpu().numpy()
