"""Model sources: registry, status, offline download, lock-file verification, safe checkpoint loading."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fashion_rag.errors import MissingWeightsError, WeightsIntegrityError
from fashion_rag.files import sha256_file
from fashion_rag.weights import (
    GENERATION_PARTS,
    REGISTRY,
    ModelSources,
    download,
    is_default_source,
    known_files,
    load_torch_state_dict,
    part_with_overrides,
    read_lock,
    verify_all,
    write_lock,
)

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fashion_rag", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
        timeout=120,
    )


def test_registry_names_every_part_of_the_spec():
    assert set(REGISTRY) == {"sd2-inpainting", "fashion-rag", "garment-encoder", "retrieval-encoder", "clothes-parser"}
    assert REGISTRY["fashion-rag"].file_names == ("unet_120000.pth", "inversion_adapter_120000.pth")
    assert "CC BY-NC 4.0" in REGISTRY["fashion-rag"].licence
    # The base UNet's weights are never part of what is fetched: only its config.
    assert not any(
        f.startswith("unet/") and f.endswith((".bin", ".safetensors")) for f in REGISTRY["sd2-inpainting"].file_names
    )


# The published facts (docs/recipe.md, sources rule 1), written out here independently of weights/sources.json.
PUBLISHED_SOURCES = {
    "sd2-inpainting": ("sd2-community/stable-diffusion-2-inpainting", "5f74973cbb64c8568780732c17f43eb269d63a0d"),
    "fashion-rag": ("furio19/fashion-rag", None),
    "garment-encoder": ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", None),
    "retrieval-encoder": ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "1627032197142fbe2a7cfec626f4ced3ae60d07a"),
    "clothes-parser": ("mattmdjaga/segformer_b2_clothes", None),
}
PUBLISHED_SHA256 = {
    ("sd2-inpainting", "text_encoder/model.safetensors"): "cce6febb0b6d876ee5eb24af35e27e764eb4f9b1d0b7c026c8c3333d4cfc916c",
    ("sd2-inpainting", "vae/diffusion_pytorch_model.safetensors"):
        "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",
    ("retrieval-encoder", "open_clip_pytorch_model.safetensors"):
        "7d129ed747e0ed53e82dfcc140382b51be66b56e6a9bdc3258afd2846e3bb019",
}  # fmt: skip


def test_registry_points_at_the_sources_of_the_spec():
    for name, (repo_id, commit) in PUBLISHED_SOURCES.items():
        part = REGISTRY[name]
        assert part.repo_id == repo_id
        assert part.revision == (commit or "main"), name  # pinned where a commit is published
    assert "removed" in REGISTRY["sd2-inpainting"].note and "community" in REGISTRY["sd2-inpainting"].note


def test_every_file_the_registry_reads_is_in_the_manifest_of_the_real_repository():
    """A renamed upstream file shows up here, not as a user's 404 (manifest: weights/sources.json)."""
    for part in REGISTRY.values():
        upstream = known_files(part.repo_id)
        assert upstream, f"no manifest for {part.repo_id}"
        for choices in part.files:
            for name in choices:
                assert name in upstream, f"{part.name}: {name} is not a file of {part.repo_id}"
    # Sources rule 1: the ViT-L-14 repository has no open_clip_model.safetensors; safetensors first, then the .bin twin.
    assert "open_clip_model.safetensors" not in known_files(REGISTRY["retrieval-encoder"].repo_id)
    assert REGISTRY["retrieval-encoder"].files[1] == (
        "open_clip_pytorch_model.safetensors",
        "open_clip_pytorch_model.bin",
    )
    for (name, file_name), sha in PUBLISHED_SHA256.items():
        assert known_files(REGISTRY[name].repo_id)[file_name]["sha256"] == sha
    assert (
        known_files(REGISTRY["retrieval-encoder"].repo_id)["open_clip_pytorch_model.safetensors"]["size"]
        == 1_710_517_748
    )


def test_repo_override_replaces_repository_and_a_pinned_commit_stays_with_its_repository():
    part = REGISTRY["sd2-inpainting"]
    moved = part_with_overrides(part, {"sd2-inpainting": "someone/sd2-copy"})
    assert (moved.repo_id, moved.revision) == ("someone/sd2-copy", "main")  # not the mirror's commit
    assert not is_default_source(moved) and is_default_source(part)
    pinned = part_with_overrides(part, {"sd2-inpainting": "someone/sd2-copy@abc123"})
    assert (pinned.repo_id, pinned.revision) == ("someone/sd2-copy", "abc123")
    assert part_with_overrides(part, {"fashion-rag": "x/y"}) is part
    assert part.env_var == "FASHION_RAG_REPO_SD2_INPAINTING"


def test_alternative_file_name_is_found_in_the_weights_dir(tmp_path: Path):
    part_dir = tmp_path / "retrieval-encoder"
    part_dir.mkdir()
    (part_dir / "open_clip_config.json").write_text("{}")
    sources = ModelSources("default", tmp_path)
    assert not sources.locate("retrieval-encoder").found
    (part_dir / "open_clip_pytorch_model.bin").write_bytes(b"x")
    location = sources.locate("retrieval-encoder")
    assert location.where == "weights/"
    assert location.file("open_clip_pytorch_model.safetensors") == part_dir / "open_clip_pytorch_model.bin"
    (part_dir / "open_clip_pytorch_model.safetensors").write_bytes(b"y")  # the preferred name wins when both exist
    assert sources.locate("retrieval-encoder").file("open_clip_pytorch_model.safetensors").suffix == ".safetensors"


def test_status_on_empty_weights_dir_lists_every_part_missing(tmp_path: Path):
    result = run_cli(
        "weights", "status", "--weights-dir", str(tmp_path), "--json", env={"HF_HUB_CACHE": str(tmp_path / "hf")}
    )
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["missing"] == list(REGISTRY)
    assert all(part["where"] == "missing" for part in payload["parts"].values())


def test_status_finds_the_tiny_bundle(tiny_bundle: Path):
    result = run_cli("weights", "status", "--models", str(tiny_bundle))
    assert result.returncode == 0, result.stderr
    for name in REGISTRY:
        assert f"{name}" in result.stdout
    assert "missing" not in result.stdout
    assert "(tiny)" in result.stdout


def test_weights_dir_part_is_found_when_complete(tmp_path: Path):
    part = REGISTRY["clothes-parser"]
    for name in part.file_names[:-1]:
        (tmp_path / part.name / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / part.name / name).write_text("{}")
    sources = ModelSources("default", tmp_path)
    assert not sources.locate(part.name).found  # one file still absent
    (tmp_path / part.name / part.file_names[-1]).write_bytes(b"x")
    location = sources.locate(part.name)
    assert location.where == "weights/" and location.path == tmp_path / part.name


def test_download_unknown_part_is_refused(tmp_path: Path):
    with pytest.raises(MissingWeightsError, match="unknown model part.*nope"):
        download(["nope"], ModelSources("default", tmp_path))


def test_sha256_mismatch_is_reported_by_name(tmp_path: Path):
    part_dir = tmp_path / "fashion-rag"
    part_dir.mkdir()
    checkpoint = part_dir / "unet_120000.pth"
    checkpoint.write_bytes(b"original bytes")
    write_lock(tmp_path, {"fashion-rag/unet_120000.pth": {"sha256": sha256_file(checkpoint), "size": 14}})
    assert verify_all(tmp_path) == []
    checkpoint.write_bytes(b"tampered bytes")
    problems = verify_all(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("fashion-rag/unet_120000.pth: sha256")
    # The same check guards loading: a located part is verified before use.
    (part_dir / "inversion_adapter_120000.pth").write_bytes(b"adapter")
    with pytest.raises(WeightsIntegrityError, match="unet_120000.pth"):
        ModelSources("default", tmp_path).require("fashion-rag")
    assert read_lock(tmp_path)["fashion-rag/unet_120000.pth"]["size"] == 14


class Payload:
    """A class a malicious checkpoint could ask the unpickler to build."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_a_custom_object_is_refused(tmp_path: Path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, path)
    with pytest.raises(WeightsIntegrityError, match="refused to load"):
        load_torch_state_dict(path)


def test_plain_state_dict_loads(tmp_path: Path):
    path = tmp_path / "ok.pth"
    torch.save({"weight": torch.arange(4.0)}, path)
    assert torch.equal(load_torch_state_dict(path)["weight"], torch.arange(4.0))
    # Not a torch file at all.
    (tmp_path / "junk.pth").write_bytes(pickle.dumps([1, 2]) + b"junk")
    with pytest.raises(WeightsIntegrityError):
        load_torch_state_dict(tmp_path / "junk.pth")


def test_missing_generation_parts_message_names_them_and_the_command(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    from fashion_rag.generation.loading import load_generation_components

    with pytest.raises(MissingWeightsError) as info:
        load_generation_components(ModelSources("default", tmp_path), torch.device("cpu"), torch.float32)
    message = str(info.value)
    assert all(name in message for name in GENERATION_PARTS)
    assert "python -m fashion_rag weights download" in message


def test_models_setting_that_is_not_a_bundle_is_refused(tmp_path: Path):
    with pytest.raises(MissingWeightsError, match="neither 'default' nor a model bundle"):
        ModelSources(str(tmp_path))


def test_models_environment_variable_selects_the_bundle(tiny_bundle: Path):
    result = run_cli("weights", "status", "--json", env={"FASHION_RAG_MODELS": str(tiny_bundle)})
    assert result.returncode == 0
    assert json.loads(result.stdout)["kind"] == "tiny"


def test_a_transfer_given_up_by_xet_reads_as_a_cut_transfer():
    """The real Hub serves large files through Xet (the fake Hub cannot): its give-up error means run again."""
    from huggingface_hub.errors import XetDownloadError

    from fashion_rag.weights import explain_hub_error

    line = explain_hub_error(
        XetDownloadError("connection reset by peer"), REGISTRY["fashion-rag"], "unet_120000.pth", "a" * 40
    )
    assert line == (
        "download of fashion-rag/unet_120000.pth from furio19/fashion-rag@aaaaaaaaaaaa was cut off (XetDownloadError: "
        "connection reset by peer); the files already complete are kept: run `python -m fashion_rag weights download "
        "fashion-rag` again to resume"
    )


def test_one_explainer_words_each_failure_for_a_part_and_for_a_dataset():
    """explain_hub_error classifies an error once (failure_kind) and words it for what was asked: a model
    part names its environment variable and the download command, a dataset names --revision and --dataset."""
    import httpx2
    from huggingface_hub.errors import XetDownloadError

    from fashion_rag.weights import explain_hub_error, failure_kind

    part = REGISTRY["fashion-rag"]
    cut, offline = XetDownloadError("reset"), httpx2.ConnectError("refused")
    assert failure_kind(cut) == "cut" and failure_kind(offline) == "unreachable"
    assert failure_kind(ValueError("odd")) == "other"
    assert explain_hub_error(cut, "shop/garments", revision="main") == (
        "download of dataset shop/garments@main was cut off (XetDownloadError); run the same command again to resume"
    )
    assert "pass their folder to --dataset instead" in explain_hub_error(offline, "shop/garments", revision="main")
    assert "still missing: fashion-rag" in explain_hub_error(offline, part)
    assert explain_hub_error(ValueError("odd"), "shop/garments", revision="v1") == (
        "the Hub could not give dataset shop/garments@v1: ValueError: odd"
    )
    assert explain_hub_error(ValueError("odd"), part) == (
        f"the Hub could not give {part.repo_id} (part fashion-rag): ValueError: odd"
    )


def test_checkpoint_names_come_from_sources_json():
    from fashion_rag.weights import ADAPTER_CHECKPOINT, RETRIEVAL_WEIGHTS, UNET_CHECKPOINT, load_sources_file

    facts = load_sources_file()["parts"]
    assert UNET_CHECKPOINT == facts["fashion-rag"]["files_read"]["unet"][0] == "unet_120000.pth"
    assert facts["fashion-rag"]["files_read"]["inversion_adapter"][0] == ADAPTER_CHECKPOINT
    assert RETRIEVAL_WEIGHTS == ("open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")
    with pytest.raises(KeyError, match="part fashion-rag has no file 'vae': it has unet, inversion_adapter"):
        REGISTRY["fashion-rag"].file("vae")
