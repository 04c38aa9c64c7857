"""The tiny bundle: every model part with seeded random weights, in the real on-disk layout.

It lets the tests (and anyone offline) run the code path that loads the real weights: the same file
names, the same config formats, the same `.pth` state dicts. Its pictures are noise. It is separate
from weights.py because building models needs torch, diffusers, transformers and open_clip, which
the registry does not.

Same seed, same bytes: every component is initialised inside a forked RNG seeded from `seed`, and
every file is written by a deterministic writer.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from fashion_rag.config import REPO_ROOT
from fashion_rag.files import sha256_file, staged_folder
from fashion_rag.weights import (
    ADAPTER_CHECKPOINT,
    BUNDLE_FILE_NAME,
    REGISTRY,
    RETRIEVAL_CONFIG,
    RETRIEVAL_WEIGHTS,
    UNET_CHECKPOINT,
)

# The committed configs of the real parts (weights/configs/), for what the tiny bundle shares with them.
REAL_CONFIGS = REPO_ROOT / "weights" / "configs"

# SD2's tokenizer settings (tokenizer/tokenizer_config.json of stable-diffusion-2-inpainting).
TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": "<|startoftext|>",
    "do_lower_case": True,
    "eos_token": "<|endoftext|>",
    "errors": "replace",
    "model_max_length": 77,  # diffusers pads to this; without it padding to "max_length" fails
    "pad_token": "!",  # id 0, as in SD2
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": "<|endoftext|>",
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
ATR_LABELS = [
    "Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt",
    "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag", "Scarf",
]  # fmt: skip

TEXT_WIDTH = 32  # text hidden size = UNet cross-attention width = garment token width
VISION_WIDTH = 32


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """A forked global RNG seeded with `seed`: library constructors initialise from the global RNG,
    and the fork restores the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _save_safetensors(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_model

    save_model(model, str(path), metadata={"format": "pt"})


def write_clip_tokenizer(directory: Path) -> None:
    """CLIP BPE tokenizer files (vocab.json, merges.txt) built from the vocabulary open_clip ships.

    The order follows open_clip's SimpleTokenizer: 256 byte characters, the same with `</w>`, the
    merges, then the two special tokens, 49408 ids in all. `!` is id 0 and `$</w>` is id 259.
    """
    import open_clip.tokenizer as oct

    with gzip.open(oct.default_bpe()) as handle:
        merges = handle.read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(oct.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2, sort_keys=True))
    special = {k: TOKENIZER_CONFIG[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True))


def tiny_unet_config(in_channels: int) -> dict:
    """A two-level UNet with the SD2 block types and linear projections: runs in milliseconds."""
    return dict(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        norm_num_groups=32,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def _write_sd2_part(root: Path, seed: int) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    # The real scheduler config, byte for byte: the pipeline builds DDIM from it (docs/recipe.md, sampler rule 1).
    (root / "scheduler").mkdir(parents=True)
    shutil.copyfile(
        REAL_CONFIGS / "sd2-inpainting/scheduler/scheduler_config.json", root / "scheduler/scheduler_config.json"
    )
    write_clip_tokenizer(root / "tokenizer")

    with seeded_init(seed + 1):
        text_config = CLIPTextConfig(
            vocab_size=49408,
            hidden_size=TEXT_WIDTH,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            projection_dim=32,
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
        )
        CLIPTextModel(text_config).save_pretrained(root / "text_encoder")
    with seeded_init(seed + 2):
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=1,
            block_out_channels=(8, 8, 16, 16),
            norm_num_groups=8,
            sample_size=64,
            scaling_factor=0.18215,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        )
        vae.save_pretrained(root / "vae")
    # Only the config of the base UNet, as for the real part: its weights are never read.
    UNet2DConditionModel.from_config(tiny_unet_config(9)).save_config(root / "unet")
    (root / "model_index.json").unlink(missing_ok=True)


def _write_fashion_rag_part(root: Path, seed: int, vision_config) -> None:
    from diffusers import UNet2DConditionModel

    from fashion_rag.generation.adapter import InversionAdapter

    root.mkdir(parents=True, exist_ok=True)
    with seeded_init(seed + 3):
        unet = UNet2DConditionModel.from_config(tiny_unet_config(27))
    torch.save(unet.state_dict(), root / UNET_CHECKPOINT)
    with seeded_init(seed + 4):
        adapter = InversionAdapter(vision_config, hidden_dim=4 * VISION_WIDTH, token_dim=TEXT_WIDTH)
    torch.save(adapter.state_dict(), root / ADAPTER_CHECKPOINT)


def _write_garment_encoder_part(root: Path, seed: int):
    """A full CLIPModel, as the real laion repo holds; the pipeline reads only its vision tower."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    with seeded_init(seed + 5):
        config = CLIPConfig(
            text_config=dict(
                vocab_size=49408,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=77,
            ),
            vision_config=dict(
                hidden_size=VISION_WIDTH,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                image_size=224,
                patch_size=32,
                hidden_act="gelu",
                layer_norm_eps=1e-5,
            ),
            projection_dim=16,
        )
        CLIPModel(config).save_pretrained(root)
    CLIPImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        resample=3,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    ).save_pretrained(root)
    return config.vision_config


def _write_retrieval_encoder_part(root: Path, seed: int) -> None:
    import open_clip

    model_cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    preprocess_cfg = {"mean": CLIP_MEAN, "std": CLIP_STD, "interpolation": "bicubic", "resize_mode": "shortest"}
    root.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (root / RETRIEVAL_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    with seeded_init(seed + 6):
        model = open_clip.create_model(f"local-dir:{root}", pretrained=None, load_weights=False)
    # The upstream name (weights/sources.json): the ViT-L-14 repository has no open_clip_model.safetensors.
    _save_safetensors(model, root / RETRIEVAL_WEIGHTS[0])


def _write_clothes_parser_part(root: Path, seed: int) -> None:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    with seeded_init(seed + 7):
        config = SegformerConfig(
            num_channels=3,
            num_encoder_blocks=4,
            depths=[1, 1, 1, 1],
            sr_ratios=[8, 4, 2, 1],
            hidden_sizes=[8, 16, 24, 32],
            patch_sizes=[7, 3, 3, 3],
            strides=[4, 2, 2, 2],
            num_attention_heads=[1, 1, 1, 1],
            mlp_ratios=[2, 2, 2, 2],
            decoder_hidden_size=32,
            num_labels=len(ATR_LABELS),
            id2label=dict(enumerate(ATR_LABELS)),
            label2id={name: i for i, name in enumerate(ATR_LABELS)},
        )
        SegformerForSemanticSegmentation(config).save_pretrained(root)
    SegformerImageProcessor(size={"height": 512, "width": 512}).save_pretrained(root)


def make_tiny_bundle(directory: Path | str, seed: int = 0) -> Path:
    """Write the tiny bundle into `directory` (replacing a previous one) and return its path."""
    directory = Path(directory)
    if directory.exists() and not (directory / BUNDLE_FILE_NAME).is_file() and any(directory.iterdir()):
        raise ValueError(f"{directory} exists, is not empty and is not a bundle: choose another folder")
    # Built beside the target and swapped in at the end, so an interrupted build never looks complete.
    with staged_folder(directory) as staged:
        _write_sd2_part(staged / "sd2-inpainting", seed)
        vision_config = _write_garment_encoder_part(staged / "garment-encoder", seed)
        _write_fashion_rag_part(staged / "fashion-rag", seed, vision_config)
        _write_retrieval_encoder_part(staged / "retrieval-encoder", seed)
        _write_clothes_parser_part(staged / "clothes-parser", seed)
        # The bundle's own lock: `doctor` names a file whose bytes changed since it was written.
        files = {str(p.relative_to(staged)): sha256_file(p) for p in sorted(staged.rglob("*")) if p.is_file()}
        info = {"name": "tiny", "seed": seed, "parts": sorted(REGISTRY), "sha256": files}
        (staged / BUNDLE_FILE_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return directory
