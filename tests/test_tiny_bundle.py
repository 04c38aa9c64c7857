"""The tiny bundle: deterministic, complete, and loaded through the code that loads the real weights."""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from fashion_rag.generation.loading import FASHION_RAG_IN_CHANNELS, load_generation_components, load_tokenizer
from fashion_rag.tiny_bundle import make_tiny_bundle
from fashion_rag.weights import REGISTRY


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tiny_bundle: Path, tmp_path: Path):
    again = make_tiny_bundle(tmp_path / "again", seed=0)
    other = make_tiny_bundle(tmp_path / "other", seed=1)
    files = [p.relative_to(again) for p in sorted(again.rglob("*")) if p.is_file()]
    assert len(files) >= 20
    for relative in files:
        assert (again / relative).read_bytes() == (tiny_bundle / relative).read_bytes(), relative
    assert (other / "fashion-rag/unet_120000.pth").read_bytes() != (again / "fashion-rag/unet_120000.pth").read_bytes()


def test_bundle_has_every_registry_file(tiny_bundle: Path):
    for part in REGISTRY.values():
        for name in part.files:
            assert (tiny_bundle / part.name / name).is_file(), f"{part.name}/{name}"


def test_bundle_loads_through_the_real_loading_path(tiny_sources):
    components = load_generation_components(tiny_sources, torch.device("cpu"), torch.float32)
    assert components.unet.config.in_channels == FASHION_RAG_IN_CHANNELS
    assert components.unet.conv_in.weight.shape[1] == 27
    assert not any(p.is_meta for p in components.unet.parameters())
    # The UNet's weights are exactly the published-style .pth state dict.
    published = torch.load(tiny_sources.require("fashion-rag") / "unet_120000.pth", weights_only=True)
    assert torch.equal(components.unet.conv_in.weight, published["conv_in.weight"])
    assert type(components.scheduler).__name__ == "DDIMScheduler"
    components.scheduler.set_timesteps(50)
    assert components.scheduler.timesteps[0] == 981 and components.scheduler.timesteps[-1] == 1
    assert components.vae.config.scaling_factor == 0.18215
    assert components.adapter.token_dim == components.text_encoder.config.hidden_size


def test_tokenizer_matches_open_clip_with_sd2_padding(tiny_sources):
    tokenizer = load_tokenizer(tiny_sources.require("sd2-inpainting"))
    prompt = "a photo of a model wearing an upper body garment made of" + " $ " * 16
    ours = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length).input_ids
    reference = open_clip.tokenize([prompt])[0].tolist()
    end = reference.index(49407) + 1
    assert ours[:end] == reference[:end]
    assert len(ours) == 77 and tokenizer.model_max_length == 77
    assert ours.count(259) == 16
    assert tokenizer.convert_tokens_to_ids("$</w>") == 259
    assert tokenizer.pad_token_id == 0 and set(ours[end:]) == {0}
