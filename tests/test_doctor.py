"""`doctor`: passes on the tiny bundle (semantic checks skipped, and says why), names every missing part on an
empty weights dir, names a damaged file, and does not take random weights for the published ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fashion_rag.cli import main as cli_main
from fashion_rag.files import sha256_file
from fashion_rag.weights import REGISTRY, write_lock

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def doctor(capsys, *args: str) -> tuple[int, dict]:
    status = cli_main(["doctor", "--json", "--device", "cpu", "--steps", "2", *args])
    return status, json.loads(capsys.readouterr().out)


def by_name(report: dict, section: str) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"] if check["section"] == section}


def test_doctor_passes_on_the_tiny_bundle_and_says_the_semantic_checks_were_skipped(tiny_bundle, capsys):
    from diffusers import UNet2DConditionModel

    from fashion_rag.tiny_bundle import tiny_unet_config

    status, report = doctor(capsys, "--models", str(tiny_bundle))
    assert status == 0, report["problems"]
    assert report["ok"] and report["problems"] == []
    files = by_name(report, "files")
    for part in REGISTRY.values():
        for name in part.file_names:
            assert "matches bundle.json" in files[f"{part.name}/{name}"]["detail"]
    # The UNet's tensor count is the bundle's own config's (686 is the published checkpoint's).
    expected = len(UNet2DConditionModel.from_config(tiny_unet_config(27)).state_dict())
    assert f"strict load: {expected} tensors" in by_name(report, "load")["fashion-rag/unet_120000.pth"]["detail"]
    smoke = by_name(report, "smoke edit")
    for name in ("output finite", "output not constant", "pixels outside the mask unchanged"):
        assert smoke[name]["status"] == "ok", smoke[name]
    assert smoke["pixels outside the mask unchanged"]["detail"].startswith("0 of ")
    semantic = by_name(report, "semantic")["semantic checks"]
    assert semantic["status"] == "skip" and "random weights" in semantic["detail"]
    versions = report["environment"]["versions"]
    assert set(versions) >= {"torch", "diffusers", "transformers", "open_clip_torch", "gradio"}
    assert all(versions.values()) and report["environment"]["device"] == "cpu"


def test_doctor_on_an_empty_weights_dir_names_every_part_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))  # read at import time
    status, report = doctor(capsys, "--models", "default", "--weights-dir", str(tmp_path / "weights"))
    assert status == 1 and not report["ok"]
    assert len(report["problems"]) == len(REGISTRY)
    for name, problem in zip(REGISTRY, report["problems"], strict=True):
        assert problem.startswith(f"{name}: missing ({REGISTRY[name].repo_id}@")
        assert f"fix: `python -m fashion_rag weights download {name}`" in problem
    assert by_name(report, "smoke edit")["smoke edit"]["status"] == "skip"


def test_doctor_names_the_one_damaged_file_of_a_bundle(tiny_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    vae = bundle / "sd2-inpainting/vae/diffusion_pytorch_model.safetensors"
    data = bytearray(vae.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data: it still loads
    vae.write_bytes(bytes(data))
    status, report = doctor(capsys, "--models", str(bundle))
    assert status == 1
    assert report["problems"] == [
        f"sd2-inpainting/vae/diffusion_pytorch_model.safetensors: {len(data):,} bytes, sha256 {sha256_file(vae)[:16]}…, "
        f"differs from bundle.json; fix: rebuild the bundle: `python -m fashion_rag weights make-tiny {bundle}`"
    ]


def test_doctor_names_a_truncated_checkpoint_in_the_strict_load(tiny_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    unet = bundle / "fashion-rag/unet_120000.pth"
    unet.write_bytes(unet.read_bytes()[: unet.stat().st_size // 2])
    status, report = doctor(capsys, "--models", str(bundle))
    assert status == 1
    checks = [c for c in report["checks"] if c["status"] == "FAIL"]
    assert [(c["section"], c["name"]) for c in checks] == [
        ("files", "fashion-rag/unet_120000.pth"),
        ("load", "fashion-rag/unet_120000.pth"),
    ]
    assert "unet_120000.pth: not a readable torch checkpoint" in checks[1]["detail"]
    assert by_name(report, "smoke edit")["smoke edit"]["status"] == "skip"


def test_random_weights_placed_as_the_real_ones_fail_the_published_checks(tiny_bundle, tmp_path, capsys, monkeypatch):
    """The tiny parts copied into weights/ with a lock: every file matches its lock, but the published hash,
    the published architecture and the semantic checks tell them from the published weights."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    weights = tmp_path / "weights"
    lock = {}
    for part in REGISTRY.values():
        shutil.copytree(tiny_bundle / part.name, weights / part.name)
        for name in part.file_names:
            lock[f"{part.name}/{name}"] = {"sha256": sha256_file(weights / part.name / name)}
    write_lock(weights, lock)
    status, report = doctor(capsys, "--models", "default", "--weights-dir", str(weights))
    assert status == 1
    files, load, semantic = (by_name(report, section) for section in ("files", "load", "semantic"))
    known = files["retrieval-encoder/open_clip_pytorch_model.safetensors"]
    assert known["status"] == "FAIL" and "differs from weights/sources.json" in known["detail"]
    assert "matches weights.lock.json" in files["fashion-rag/unet_120000.pth"]["detail"]
    assert load["sd2-inpainting"]["status"] == "FAIL" and "text encoder width 32" in load["sd2-inpainting"]["detail"]
    assert load["garment-encoder"]["status"] == "FAIL" and "hidden 32" in load["garment-encoder"]["detail"]
    assert semantic["retrieval ranks colours"]["status"] == "FAIL"
    assert semantic["parser labels the face"]["status"] == "FAIL"
    assert Path(report["parts"]["fashion-rag"]["path"]) == weights / "fashion-rag"


def test_the_published_unet_architecture_has_the_tensor_count_doctor_expects():
    """doctor's 686 / 865,976,964 (recipe sources rule 2) against the loader's model from the real SD2 UNet config."""
    import torch
    from diffusers import UNet2DConditionModel

    from fashion_rag.commands.doctor_loading import PUBLISHED_UNET_PARAMETERS, PUBLISHED_UNET_TENSORS
    from fashion_rag.config import REPO_ROOT

    config = UNet2DConditionModel.load_config(str(REPO_ROOT / "weights/configs/sd2-inpainting/unet"))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config({**config, "in_channels": 27})
    assert (PUBLISHED_UNET_TENSORS, PUBLISHED_UNET_PARAMETERS) == (686, 865_976_964)
    assert len(unet.state_dict()) == PUBLISHED_UNET_TENSORS
    assert sum(p.numel() for p in unet.parameters()) == PUBLISHED_UNET_PARAMETERS
