"""The tiny bundle: deterministic, complete, and loaded through the code that loads the real weights."""

from __future__ import annotations

import os
from pathlib import Path

import open_clip
import torch

from fashion_rag.generation.loading import FASHION_RAG_IN_CHANNELS, load_generation_components, load_tokenizer
from fashion_rag.tiny_bundle import make_tiny_bundle
from fashion_rag.weights import REGISTRY, known_files


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tiny_bundle: Path, tmp_path: Path):
    again = make_tiny_bundle(tmp_path / "again", seed=0)
    other = make_tiny_bundle(tmp_path / "other", seed=1)
    files = [p.relative_to(again) for p in sorted(again.rglob("*")) if p.is_file()]
    assert len(files) >= 20
    for relative in files:
        assert (again / relative).read_bytes() == (tiny_bundle / relative).read_bytes(), relative
    assert (other / "fashion-rag/unet_120000.pth").read_bytes() != (again / "fashion-rag/unet_120000.pth").read_bytes()


def test_bundle_has_every_registry_file_under_its_upstream_name(tiny_bundle: Path):
    """The tiny bundle is the layout the real loaders read: the preferred name of every file the registry
    reads, and only names the real repositories have (their manifest: weights/sources.json)."""
    for part in REGISTRY.values():
        for name in part.file_names:
            assert (tiny_bundle / part.name / name).is_file(), f"{part.name}/{name}"
        written = {
            str(p.relative_to(tiny_bundle / part.name)) for p in (tiny_bundle / part.name).rglob("*") if p.is_file()
        }
        assert written <= set(known_files(part.repo_id)), f"{part.name}: {written - set(known_files(part.repo_id))}"
    assert (tiny_bundle / "retrieval-encoder/open_clip_pytorch_model.safetensors").is_file()


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


# --------------------------------------------------------------------------------------------------
# The .pth -> safetensors conversion cache


def test_checkpoint_is_converted_into_the_project_cache_keyed_by_the_source_hash(tiny_bundle: Path, tmp_path: Path):
    import hashlib
    import shutil

    from safetensors import safe_open

    from fashion_rag.generation.loading import load_checkpoint

    part_dir = tmp_path / "fashion-rag"
    shutil.copytree(tiny_bundle / "fashion-rag", part_dir)
    source = part_dir / "unet_120000.pth"
    # Re-saved from cloned tensors, as the changed version below is, so that both have the same size.
    state = {k: v.clone() for k, v in torch.load(source, weights_only=True).items()}
    torch.save(state, source)
    cache_dir = tmp_path / "cache"
    assert torch.equal(load_checkpoint(source, cache_dir=cache_dir)["conv_in.weight"], state["conv_in.weight"])
    assert not list(part_dir.glob("*.safetensors"))  # nothing written beside the weights
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    (copy,) = cache_dir.glob("*.safetensors")
    with safe_open(str(copy), framework="pt") as handle:
        assert handle.metadata()["source_sha256"] == digest
    # A changed source with the same size and mtime is converted again, not served from the stale copy.
    stat = source.stat()
    changed = {k: v.clone() for k, v in state.items()}
    changed["conv_in.weight"] += 1.0
    torch.save(changed, source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size and source.stat().st_mtime_ns == stat.st_mtime_ns
    again = load_checkpoint(source, cache_dir=cache_dir)
    assert torch.equal(again["conv_in.weight"], state["conv_in.weight"] + 1.0)
    assert len(list(cache_dir.glob("unet_120000-*.safetensors"))) == 1  # the old copy was replaced


def test_conversion_is_skipped_when_the_disk_lacks_room(tiny_bundle: Path, tmp_path: Path, monkeypatch, caplog):
    from collections import namedtuple

    import fashion_rag.generation.loading as loading

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(loading.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    source = tiny_bundle / "fashion-rag" / "inversion_adapter_120000.pth"
    with caplog.at_level("WARNING", logger=loading.__name__):
        state = loading.load_checkpoint(source, cache_dir=tmp_path / "cache")
    assert torch.equal(state["layers.0.weight"], torch.load(source, weights_only=True)["layers.0.weight"])
    assert not list((tmp_path / "cache").glob("*.safetensors"))
    assert "not caching a safetensors copy of inversion_adapter_120000.pth" in caplog.text and "GB free" in caplog.text
