"""Full-size model bundles with random weights, built from the committed real configs (weights/configs/).

A model built from the real config costs the same compute and memory as the real one, so speed,
memory and start-up figures measured on it hold for the published weights. The bundle has the
real on-disk layout (a plain `.pth` UNet state dict included), so loading it runs the real loaders.
Used by the benchmarks only.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fashion_rag.generation.adapter import InversionAdapter  # noqa: E402
from fashion_rag.tiny_bundle import seeded_init, write_clip_tokenizer  # noqa: E402
from fashion_rag.weights import BUNDLE_FILE_NAME  # noqa: E402

CONFIGS = REPO / "weights" / "configs"


def _save(model: torch.nn.Module, directory: Path, dtype: torch.dtype) -> None:
    model.to(dtype).save_pretrained(directory)


def full_size_unet(in_channels: int, device: str | torch.device = "cpu", seed: int = 0):
    from diffusers import UNet2DConditionModel

    config = UNet2DConditionModel.load_config(str(CONFIGS / "sd2-inpainting" / "unet"))
    config["in_channels"] = in_channels
    with seeded_init(seed), torch.device(device):
        return UNet2DConditionModel.from_config(config)


def build_full_size_bundle(directory: Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Path:
    """Write sd2-inpainting, fashion-rag and garment-encoder parts at full size; return the bundle path.

    `dtype` is the on-disk precision of the safetensors parts; the `.pth` UNet and adapter are
    written in fp32 like the published checkpoints.
    """
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    directory = Path(directory)
    shutil.rmtree(directory, ignore_errors=True)
    sd2 = directory / "sd2-inpainting"
    (sd2 / "scheduler").mkdir(parents=True)
    shutil.copyfile(CONFIGS / "sd2-inpainting/scheduler/scheduler_config.json", sd2 / "scheduler/scheduler_config.json")
    (sd2 / "unet").mkdir()
    shutil.copyfile(CONFIGS / "sd2-inpainting/unet/config.json", sd2 / "unet/config.json")
    write_clip_tokenizer(sd2 / "tokenizer")
    with seeded_init(1), torch.device(device):
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(CONFIGS / "sd2-inpainting/text_encoder")))
    _save(text, sd2 / "text_encoder", dtype)
    del text
    with seeded_init(2), torch.device(device):
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(CONFIGS / "sd2-inpainting/vae")))
    _save(vae, sd2 / "vae", dtype)
    del vae

    encoder_dir = directory / "garment-encoder"
    vision_config = CLIPVisionConfig.from_pretrained(str(CONFIGS / "garment-encoder"))
    with seeded_init(3), torch.device(device):
        encoder = CLIPVisionModelWithProjection(vision_config)
    _save(encoder, encoder_dir, dtype)
    del encoder
    shutil.copyfile(CONFIGS / "garment-encoder/preprocessor_config.json", encoder_dir / "preprocessor_config.json")

    fashion = directory / "fashion-rag"
    fashion.mkdir()
    unet = full_size_unet(27, device, seed=4)
    torch.save({k: v.float().cpu() for k, v in unet.state_dict().items()}, fashion / "unet_120000.pth")
    del unet
    with seeded_init(5), torch.device(device):
        adapter = InversionAdapter(vision_config, hidden_dim=5120, token_dim=1024)
    torch.save({k: v.float().cpu() for k, v in adapter.state_dict().items()}, fashion / "inversion_adapter_120000.pth")
    del adapter

    info = {"name": "full-size-random", "parts": ["sd2-inpainting", "fashion-rag", "garment-encoder"]}
    (directory / BUNDLE_FILE_NAME).write_text(json.dumps(info, indent=2) + "\n")
    return directory


def machine_description() -> str:
    import platform

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
