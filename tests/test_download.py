"""`weights download` against a local fake Hub (tests/fake_hub.py), through the real huggingface_hub client.

Each test runs the command line in a subprocess with HF_ENDPOINT pointing at the fake Hub (huggingface_hub
reads it at import time), a private HF cache and home (no token of the machine leaks in), and checks the
exact line the user sees, the exit status, the files left on disk and the requests the client made.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fashion_rag.weights import REGISTRY, read_lock

from .fake_hub import FakeHub, FakeRepo

REPO = Path(__file__).resolve().parent.parent
FASHION = REGISTRY["fashion-rag"]
UNET, ADAPTER = FASHION.file_names
# Larger than huggingface_hub's 10 MB read chunk, so a cut after the first chunk leaves bytes to resume from.
UNET_BYTES = np.random.default_rng(0).bytes(12 * 1024 * 1024)
ADAPTER_BYTES = np.random.default_rng(1).bytes(300_000)


def fashion_repo(**changes) -> FakeRepo:
    return FakeRepo(files={UNET: UNET_BYTES, ADAPTER: ADAPTER_BYTES, "README.md": b"# card\n"}, **changes)


def run_download(hub: FakeHub, tmp_path: Path, *names: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FASHION_RAG_"))},
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "fashion_rag", "weights", "download", *names, "--weights-dir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


def test_download_fetches_verifies_and_locks_the_commit(hub, tmp_path):
    hub.repos[FASHION.repo_id] = fashion_repo()
    result = run_download(hub, tmp_path, "fashion-rag")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"2 files present and verified in {tmp_path / 'w'}"
    part_dir = tmp_path / "w" / "fashion-rag"
    assert (part_dir / UNET).read_bytes() == UNET_BYTES and (part_dir / ADAPTER).read_bytes() == ADAPTER_BYTES
    lock = read_lock(tmp_path / "w")
    commit = hub.repos[FASHION.repo_id].commit
    assert lock[f"fashion-rag/{UNET}"] == {
        "sha256": hashlib.sha256(UNET_BYTES).hexdigest(),
        "size": len(UNET_BYTES),
        "repo_id": FASHION.repo_id,
        "revision": commit,
    }
    # Everything was checked before the first transfer: model info, then one HEAD per file, then the GETs.
    methods = [(method, path) for method, _, path, _ in hub.requests]
    first_get = next(i for i, (method, path) in enumerate(methods) if method == "GET" and path)
    assert methods[0] == ("GET", "") and {("HEAD", UNET), ("HEAD", ADAPTER)} <= set(methods[:first_get])
    # The files are fetched at the commit the model info named, not at the moving branch.
    assert set(hub.resolved_revisions) == {commit}
    # A second run finds both files present and transfers nothing.
    hub.requests.clear()
    assert run_download(hub, tmp_path, "fashion-rag").returncode == 0 and hub.requests == []


def test_a_cut_connection_is_resumed_with_a_range_request(hub, tmp_path):
    hub.repos[FASHION.repo_id] = fashion_repo()
    hub.cut_once[UNET] = 11 * 1024 * 1024
    result = run_download(hub, tmp_path, "fashion-rag")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "w" / "fashion-rag" / UNET).read_bytes() == UNET_BYTES
    unet_gets = [rng for path, rng in hub.gets() if path == UNET]
    assert unet_gets == [None, f"bytes={10 * 1024 * 1024}-"]  # the first 10 MB chunk was kept, not fetched again


def test_a_transfer_that_stays_cut_says_run_again_and_the_rerun_keeps_finished_files(hub, tmp_path):
    hub.repos[FASHION.repo_id] = fashion_repo()
    hub.cut_always[ADAPTER] = 1000
    line = one_error_line(run_download(hub, tmp_path, "fashion-rag"))
    commit = hub.repos[FASHION.repo_id].commit
    assert line.startswith(
        f"error: download of fashion-rag/{ADAPTER} from {FASHION.repo_id}@{commit[:12]} was cut off ("
    )
    assert line.endswith(
        "the files already complete are kept: run `python -m fashion_rag weights download fashion-rag` again to resume"
    )
    part_dir = tmp_path / "w" / "fashion-rag"
    assert not (part_dir / ADAPTER).exists()  # nothing truncated where it would be loaded
    assert set(read_lock(tmp_path / "w")) == {f"fashion-rag/{UNET}"}  # the finished file is locked
    hub.cut_always.clear()
    hub.requests.clear()
    assert run_download(hub, tmp_path, "fashion-rag").returncode == 0
    assert [path for path, _ in hub.gets()] == [ADAPTER]  # the finished file was not fetched again
    assert (part_dir / ADAPTER).read_bytes() == ADAPTER_BYTES


def test_removed_repository_is_named_in_seconds_with_how_to_point_elsewhere(hub, tmp_path):
    # The Hub has no sd2-community mirror (as for stabilityai/stable-diffusion-2-inpainting since Nov 2025).
    started = time.monotonic()
    line = one_error_line(run_download(hub, tmp_path, "sd2-inpainting"))
    elapsed = time.monotonic() - started
    repo = REGISTRY["sd2-inpainting"].repo_id
    assert line == (
        f"error: the Hub has no repository {repo} (part sd2-inpainting): it was removed, renamed or made private, "
        f"so the part may have moved; point it at another copy with FASHION_RAG_REPO_SD2_INPAINTING=org/repo[@revision] "
        f"(see weights/README.md)"
    )
    assert hub.gets() == [] and elapsed < 10  # refused from the model info alone


def test_override_points_a_part_at_another_repository(hub, tmp_path):
    hub.repos["someone/sd2-inpainting-copy"] = FakeRepo(
        files={name: b"{}" for name in REGISTRY["sd2-inpainting"].file_names}
    )
    env = {"FASHION_RAG_REPO_SD2_INPAINTING": "someone/sd2-inpainting-copy"}
    result = run_download(hub, tmp_path, "sd2-inpainting", env=env)
    assert result.returncode == 0, result.stderr
    # Another repository without @revision means its main branch, not the default's pinned commit.
    assert hub.requests[0] == ("GET", "someone/sd2-inpainting-copy", "", None) and hub.info_revisions == ["main"]
    assert read_lock(tmp_path / "w")["sd2-inpainting/unet/config.json"]["repo_id"] == "someone/sd2-inpainting-copy"


def test_gated_repository_asks_for_access_and_a_token(hub, tmp_path):
    hub.repos[FASHION.repo_id] = fashion_repo(gated=True)
    hub.tokens.add("hf_granted")
    line = one_error_line(run_download(hub, tmp_path, "fashion-rag"))
    assert line == (
        f"error: repository {FASHION.repo_id} (part fashion-rag) is gated: request access at {hub.url}/"
        f"{FASHION.repo_id} with your Hugging Face account, then give a token of that account with HF_TOKEN=hf_... "
        f"or `hf auth login`"
    )
    assert hub.gets() == []
    assert run_download(hub, tmp_path, "fashion-rag", env={"HF_TOKEN": "hf_granted"}).returncode == 0


def test_missing_file_names_file_and_revision_before_any_transfer(hub, tmp_path):
    hub.repos[FASHION.repo_id] = FakeRepo(files={UNET: UNET_BYTES})  # no adapter upstream
    line = one_error_line(run_download(hub, tmp_path, "fashion-rag"))
    assert line == (
        f"error: repository {FASHION.repo_id} at revision main has no file {ADAPTER} (part fashion-rag): the upstream "
        f"file was renamed or removed; point the part at a repository that has it with "
        f"FASHION_RAG_REPO_FASHION_RAG=org/repo[@revision]"
    )
    assert hub.gets() == []  # not even the UNet's 12 MB were fetched


def test_missing_pinned_revision_is_named(hub, tmp_path):
    part = REGISTRY["retrieval-encoder"]
    hub.repos[part.repo_id] = FakeRepo(files={"open_clip_config.json": b"{}"})  # another commit only
    line = one_error_line(run_download(hub, tmp_path, "retrieval-encoder"))
    assert line == (
        f"error: repository {part.repo_id} has no revision {part.revision} (part retrieval-encoder): the pinned "
        f"commit or branch is gone; choose another with FASHION_RAG_REPO_RETRIEVAL_ENCODER={part.repo_id}@main "
        f"(or another commit)"
    )


def test_unreachable_hub_is_named_as_such(tmp_path):
    class Nowhere:
        url = "http://127.0.0.1:9"  # loopback port 9 refuses connections: a machine without internet

    line = one_error_line(run_download(Nowhere(), tmp_path, "fashion-rag"))  # type: ignore[arg-type]
    assert line.startswith(
        "error: cannot reach the Hugging Face Hub at http://127.0.0.1:9 (no network?); still missing: fashion-rag."
    )


def test_retrieval_encoder_takes_the_bin_twin_when_the_repository_has_no_safetensors(hub, tmp_path, tiny_bundle):
    import torch
    from safetensors.torch import load_file

    from fashion_rag.catalog.encoder import RetrievalEncoder

    tiny = tiny_bundle / "retrieval-encoder"
    state = load_file(str(tiny / "open_clip_pytorch_model.safetensors"))
    torch.save(state, tmp_path / "twin.bin")
    files = {
        "open_clip_config.json": (tiny / "open_clip_config.json").read_bytes(),
        "open_clip_pytorch_model.bin": (tmp_path / "twin.bin").read_bytes(),
    }
    hub.repos["someone/clip"] = FakeRepo(files=files)
    result = run_download(
        hub, tmp_path, "retrieval-encoder", env={"FASHION_RAG_REPO_RETRIEVAL_ENCODER": "someone/clip"}
    )
    assert result.returncode == 0, result.stderr
    part_dir = tmp_path / "w" / "retrieval-encoder"
    assert sorted(p.name for p in part_dir.iterdir() if p.is_file()) == [
        "open_clip_config.json",
        "open_clip_pytorch_model.bin",
    ]
    encoder = RetrievalEncoder.from_dir(part_dir)  # open_clip reads the .bin with weights_only=True
    assert torch.equal(encoder.model.logit_scale.detach(), state["logit_scale"])


def test_upstream_file_that_changed_since_the_lock_is_refused(hub, tmp_path):
    hub.repos[FASHION.repo_id] = fashion_repo()
    assert run_download(hub, tmp_path, "fashion-rag").returncode == 0
    part_dir = tmp_path / "w" / "fashion-rag"
    locked = read_lock(tmp_path / "w")
    (part_dir / UNET).unlink()
    (part_dir / ADAPTER).unlink()
    changed = np.random.default_rng(2).bytes(len(UNET_BYTES))
    hub.repos[FASHION.repo_id].files[UNET] = changed
    hub.requests.clear()
    line = one_error_line(run_download(hub, tmp_path, "fashion-rag"))
    assert line == (
        f"error: fashion-rag/{UNET}: refused before downloading: the Hub lists sha256 "
        f"{hashlib.sha256(changed).hexdigest()[:12]}… differs from weights.lock.json "
        f"{locked[f'fashion-rag/{UNET}']['sha256'][:12]}…; if the upstream file changed on purpose, remove its "
        f"entry from weights.lock.json"
    )
    assert hub.gets() == [] and not (part_dir / UNET).exists()


def test_small_file_that_changed_is_moved_aside_after_download(hub, tmp_path):
    files = {name: json.dumps({"name": name}).encode() for name in REGISTRY["clothes-parser"].file_names}
    hub.repos[REGISTRY["clothes-parser"].repo_id] = FakeRepo(files=files)  # small files: no LFS hash listed
    assert run_download(hub, tmp_path, "clothes-parser").returncode == 0
    config = tmp_path / "w" / "clothes-parser" / "config.json"
    config.unlink()
    hub.repos[REGISTRY["clothes-parser"].repo_id].files["config.json"] = b'{"changed": true}'
    line = one_error_line(run_download(hub, tmp_path, "clothes-parser"))
    assert line.startswith(
        "error: clothes-parser/config.json: moved to config.json.rejected, never loaded: its sha256 "
    )
    assert "differs from weights.lock.json" in line
    assert not config.exists() and config.with_name("config.json.rejected").read_bytes() == b'{"changed": true}'


def test_file_that_differs_from_the_spec_known_hash_is_refused_before_downloading(hub, tmp_path):
    part = REGISTRY["retrieval-encoder"]
    weights = np.random.default_rng(3).bytes(5000)  # not the ViT-L-14 file docs/recipe.md names
    files = {"open_clip_config.json": b"{}", "open_clip_pytorch_model.safetensors": weights}
    hub.repos[part.repo_id] = FakeRepo(files=files, commit=part.revision)
    line = one_error_line(run_download(hub, tmp_path, "retrieval-encoder"))
    assert line == (
        f"error: retrieval-encoder/open_clip_pytorch_model.safetensors: refused before downloading: the Hub lists "
        f"sha256 {hashlib.sha256(weights).hexdigest()[:12]}… differs from weights/sources.json 7d129ed747e0…; "
        f"the repository no longer holds the file the project was checked with; check it, then update "
        f"weights/sources.json"
    )
    assert hub.gets() == []
