"""Model sources: registry, status, offline download, lock-file verification, safe checkpoint loading."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fashion_rag.errors import MissingWeightsError, WeightsIntegrityError
from fashion_rag.weights import (
    GENERATION_PARTS,
    REGISTRY,
    ModelSources,
    download,
    load_torch_state_dict,
    read_lock,
    sha256_of,
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
    assert REGISTRY["fashion-rag"].files == ("unet_120000.pth", "inversion_adapter_120000.pth")
    assert "CC BY-NC 4.0" in REGISTRY["fashion-rag"].licence
    # The base UNet's weights are never part of what is fetched: only its config.
    assert not any(
        f.startswith("unet/") and f.endswith((".bin", ".safetensors")) for f in REGISTRY["sd2-inpainting"].files
    )


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
    for name in part.files[:-1]:
        (tmp_path / part.name / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / part.name / name).write_text("{}")
    sources = ModelSources("default", tmp_path)
    assert not sources.locate(part.name).found  # one file still absent
    (tmp_path / part.name / part.files[-1]).write_bytes(b"x")
    location = sources.locate(part.name)
    assert location.where == "weights/" and location.path == tmp_path / part.name


def test_download_without_network_fails_fast_with_one_clear_line(tmp_path: Path):
    # Port 9 on loopback refuses connections: the same as a machine without internet.
    started = time.monotonic()
    result = run_cli(
        "weights", "download", "fashion-rag", "--weights-dir", str(tmp_path),
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "hf")},
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Hugging Face Hub")
    assert "fashion-rag" in lines[0]


def test_download_unknown_part_is_refused(tmp_path: Path):
    with pytest.raises(MissingWeightsError, match="unknown model part.*nope"):
        download(["nope"], ModelSources("default", tmp_path))


def test_sha256_mismatch_is_reported_by_name(tmp_path: Path):
    part_dir = tmp_path / "fashion-rag"
    part_dir.mkdir()
    checkpoint = part_dir / "unet_120000.pth"
    checkpoint.write_bytes(b"original bytes")
    write_lock(tmp_path, {"fashion-rag/unet_120000.pth": {"sha256": sha256_of(checkpoint), "size": 14}})
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
