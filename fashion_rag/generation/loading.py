"""Loading the generation components from located part directories (see weights.ModelSources).

The same functions load the real parts and the tiny bundle. The fine-tuned UNet is built from the
SD2-inpainting UNet *config* with 27 input channels, on the meta device (no random initialisation),
and its weights are assigned straight from the published state dict: the base UNet's own weights
are never read. Each `.pth` is converted once to a safetensors copy in the project's cache, keyed by
the source's sha256, which later starts read without unpickling.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from fashion_rag.errors import InputError, WeightsIntegrityError
from fashion_rag.files import atomic_path, sha256_file
from fashion_rag.generation.limits import SCHEDULERS
from fashion_rag.weights import ADAPTER_CHECKPOINT, UNET_CHECKPOINT, load_torch_state_dict

logger = logging.getLogger(__name__)

FASHION_RAG_IN_CHANNELS = 27  # 4 noisy latents + 1 mask + 4 masked-image latents + 18 pose channels
# The project's own cache for converted checkpoints (never beside the weights, never in the HF cache).
CACHE_DIR = Path.home() / ".cache" / "fashion_rag" / "converted"


# --------------------------------------------------------------------------------------------------
# Published .pth checkpoints


def _converted_path(path: Path, source_sha256: str, cache_dir: Path) -> Path:
    return cache_dir / f"{path.stem}-{source_sha256[:16]}.safetensors"


def _read_converted(cache: Path, source_sha256: str) -> dict[str, torch.Tensor] | None:
    """The converted copy at `cache` if it was made from the source with this sha256, else None."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not cache.is_file():
        return None
    try:
        with safe_open(str(cache), framework="pt") as handle:
            if (handle.metadata() or {}).get("source_sha256") != source_sha256:
                return None
        return load_file(str(cache))
    except (SafetensorError, OSError) as error:  # a damaged copy is converted again
        logger.warning("ignoring the damaged converted copy %s (%s)", cache, error)
        return None


def _write_converted(state: dict[str, torch.Tensor], path: Path, source_sha256: str, cache_dir: Path) -> Path | None:
    """Write the safetensors copy of `state` into `cache_dir` when the disk has room; None when it does not."""
    from safetensors.torch import save_file

    need = sum(t.numel() * t.element_size() for t in state.values()) + (64 << 20)  # tensors + header margin
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(cache_dir).free
    except OSError as error:
        logger.warning("not caching a safetensors copy of %s: %s is not writable (%s)", path.name, cache_dir, error)
        return None
    if free < need:
        logger.warning(
            "not caching a safetensors copy of %s: it needs %.1f GB and %s has %.1f GB free; every start reads the .pth",
            path.name,
            need / 1e9,
            cache_dir,
            free / 1e9,
        )
        return None
    cache = _converted_path(path, source_sha256, cache_dir)
    for older in cache_dir.glob(f"{path.stem}-*.safetensors"):  # copies of an earlier version of this file
        older.unlink(missing_ok=True)
    tensors = {k: v.contiguous() for k, v in state.items()}
    with atomic_path(cache) as partial:
        save_file(tensors, str(partial), metadata={"source_sha256": source_sha256})
    logger.info("converted %s to %s", path.name, cache)
    return cache


def load_checkpoint(
    path: Path, source_sha256: str | None = None, cache_dir: Path | None = None
) -> dict[str, torch.Tensor]:
    """A published `.pth` state dict, through a safetensors copy in the project's cache (written on first use).

    The copy is found by the source file's sha256 (given when already known, e.g. from the lock file,
    else computed), so a changed source never reads a stale copy, whatever its size and mtime. The copy
    lives in `cache_dir` (default ~/.cache/fashion_rag/converted), never beside the weights or inside
    the Hugging Face cache; it is skipped, with a warning, when the disk lacks the room.
    """
    path = Path(path)
    cache_dir = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    source_sha256 = source_sha256 or sha256_file(path)
    cached = _read_converted(_converted_path(path, source_sha256, cache_dir), source_sha256)
    if cached is not None:
        return cached
    state = load_torch_state_dict(path)
    _write_converted(state, path, source_sha256, cache_dir)
    return state


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict key and shape check with a message that names what is wrong."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}")
        if wrong_shape:
            k = wrong_shape[0]
            parts.append(f"shape of {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}")
        raise WeightsIntegrityError(f"{what} does not match the model: {'; '.join(parts)}")


def _assign(model: torch.nn.Module, state: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype):
    check_state_dict(model, state, type(model).__name__)
    state = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)


def load_fashion_unet(
    sd2_dir: Path, fashion_dir: Path, device: torch.device, dtype: torch.dtype, source_sha256: str | None = None
):
    """The 27-channel Fashion-RAG UNet: SD2-inpainting UNet config + the published state dict (strict: a
    missing, unexpected or misshapen key is named)."""
    from diffusers import UNet2DConditionModel

    config = UNet2DConditionModel.load_config(str(Path(sd2_dir) / "unet"))
    config["in_channels"] = FASHION_RAG_IN_CHANNELS
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    return _assign(unet, load_checkpoint(Path(fashion_dir) / UNET_CHECKPOINT, source_sha256), device, dtype)


def load_adapter(
    fashion_dir: Path, vision_config, device: torch.device, dtype: torch.dtype, source_sha256: str | None = None
):
    """The inversion adapter from its published state dict (strict, like the official code)."""
    from fashion_rag.generation.adapter import InversionAdapter

    state = load_checkpoint(Path(fashion_dir) / ADAPTER_CHECKPOINT, source_sha256)
    if "layers.0.weight" not in state or "layers.6.weight" not in state:
        raise WeightsIntegrityError(
            f"{ADAPTER_CHECKPOINT} does not match the inversion adapter: missing keys layers.0.weight/layers.6.weight"
        )
    hidden_dim, token_dim = InversionAdapter.dims_from_state_dict(state)
    with torch.device("meta"):
        adapter = InversionAdapter(vision_config, hidden_dim=hidden_dim, token_dim=token_dim)
    return _assign(adapter, state, device, dtype)


# --------------------------------------------------------------------------------------------------
# Stock parts (diffusers / transformers layouts)


SCHEDULER_CLASSES = {"ddim": "DDIMScheduler", "dpm++": "DPMSolverMultistepScheduler"}  # limits.SCHEDULERS


def make_scheduler(config, name: str = "ddim"):
    """The sampler `name` from a scheduler config: DDIM as docs/recipe.md, sampler rule 1 says (leading
    spacing, eta 0), or DPM-Solver++ 2M from the same config. InputError names the accepted ones."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if name == "ddim":
        return DDIMScheduler.from_config(config, timestep_spacing="leading")
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="leading"
        )
    raise InputError(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}")


def load_scheduler(sd2_dir: Path, name: str = "ddim"):
    """make_scheduler over the SD2-inpainting scheduler config."""
    from diffusers import DDIMScheduler

    return make_scheduler(DDIMScheduler.load_config(str(Path(sd2_dir) / "scheduler")), name)


def load_tokenizer(sd2_dir: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(Path(sd2_dir) / "tokenizer"))


def load_text_encoder(sd2_dir: Path, device: torch.device, dtype: torch.dtype):
    from transformers import CLIPTextModel

    model = CLIPTextModel.from_pretrained(str(Path(sd2_dir) / "text_encoder"), dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def load_vae(sd2_dir: Path, device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKL

    model = AutoencoderKL.from_pretrained(str(Path(sd2_dir) / "vae"), torch_dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def load_garment_encoder(encoder_dir: Path, device: torch.device, dtype: torch.dtype):
    """(CLIPVisionModelWithProjection, CLIPImageProcessorPil); reads only the vision tower's weights."""
    from transformers import AutoConfig, CLIPVisionModelWithProjection
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    config = AutoConfig.from_pretrained(str(encoder_dir))
    if config.model_type == "clip":
        # The laion repo holds a whole CLIPModel: keep its vision config and the shared projection width.
        vision_config = config.vision_config
        vision_config.projection_dim = config.projection_dim
        config = vision_config
    model = CLIPVisionModelWithProjection.from_pretrained(str(encoder_dir), config=config, dtype=dtype)
    # Pillow's BICUBIC, as the CLIP processor of the official code's transformers did; transformers 5's
    # default torchvision backend differs by a grey level at ~0.3% of the pixels (tests/test_recipe_reference.py).
    processor = CLIPImageProcessorPil.from_pretrained(str(encoder_dir))
    return model.to(device).eval().requires_grad_(False), processor


@dataclass
class GenerationComponents:
    """Every model the pipeline needs, loaded and on one device."""

    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    scheduler: object
    garment_encoder: torch.nn.Module
    image_processor: object
    adapter: torch.nn.Module


def load_generation_components(sources, device: torch.device, dtype: torch.dtype, scheduler: str = "ddim"):
    """All generation components from a weights.ModelSources; MissingWeightsError names what is absent."""
    from fashion_rag.errors import MissingWeightsError
    from fashion_rag.weights import GENERATION_PARTS, missing_message, read_lock, recorded_sha256

    missing = [name for name in GENERATION_PARTS if not sources.locate(name).found]
    if missing:
        raise MissingWeightsError(missing_message(missing, sources))
    sd2 = sources.require("sd2-inpainting")
    fashion = sources.require("fashion-rag")
    # The checkpoints' sha256 where already known (lock file, HF cache blob), so a start need not re-hash 4 GB.
    fashion_location, lock = sources.locate("fashion-rag"), read_lock(sources.weights_dir)
    unet_sha, adapter_sha = (recorded_sha256(fashion_location, n, lock) for n in (UNET_CHECKPOINT, ADAPTER_CHECKPOINT))
    encoder, processor = load_garment_encoder(sources.require("garment-encoder"), device, dtype)
    return GenerationComponents(
        tokenizer=load_tokenizer(sd2),
        text_encoder=load_text_encoder(sd2, device, dtype),
        vae=load_vae(sd2, device, dtype),
        unet=load_fashion_unet(sd2, fashion, device, dtype, unet_sha),
        scheduler=load_scheduler(sd2, scheduler),
        garment_encoder=encoder,
        image_processor=processor,
        adapter=load_adapter(fashion, encoder.config, device, dtype, adapter_sha),
    )
