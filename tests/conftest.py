"""Shared fixtures. Nothing here downloads: models come from the tiny bundle, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TORCH_THREADS = 1  # intra-op threads of every test process and of the servers and CLIs the tests start


def pytest_configure(config):
    """One torch thread for the whole session, and cap glibc's malloc arenas before any server thread
    starts, as `python app.py` does (issue 14).

    The thread count is set once, before torch is imported, and passed on to subprocesses through
    OMP_NUM_THREADS: a float sum's order depends on it, and torch fixes a thread's count the first time
    that thread computes. Switching it per module left the server's worker threads on different counts,
    so an edit served by the app and the same edit replayed by a CLI subprocess differed by one grey
    level at a few pixels, depending on which tests had run before. The tiny model's ops are
    microseconds of work: on a shared 2-core machine a second thread only waits for a free core.
    """
    os.environ["OMP_NUM_THREADS"] = str(TORCH_THREADS)
    import torch

    torch.set_num_threads(TORCH_THREADS)
    from fashion_rag.studio.memory import limit_malloc_arenas

    limit_malloc_arenas()


@pytest.fixture(autouse=True)
def upload_folder_kept(request):
    """Every test leaves Gradio's upload folder where it found it: `app.main` points it at a folder of its
    own (studio/uploads.py), and a test that ran main without monkeypatch.setenv would move it for every
    later test, whose uploads the session's studios would then refuse as not uploaded."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    yield
    after = os.environ.get("GRADIO_TEMP_DIR")
    if after != before:
        os.environ.pop("GRADIO_TEMP_DIR", None) if before is None else os.environ.update(GRADIO_TEMP_DIR=before)
        pytest.fail(f"{request.node.nodeid} moved GRADIO_TEMP_DIR to {after!r}: monkeypatch.setenv it first")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Modules that time or compare tiny-model runs name this: the session's single torch thread."""
    import torch

    assert torch.get_num_threads() == TORCH_THREADS
    yield


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight bundle (seed 0), written through `make_tiny_bundle`."""
    from fashion_rag.tiny_bundle import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_sources(tiny_bundle: Path):
    from fashion_rag.weights import ModelSources

    return ModelSources(str(tiny_bundle))


REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CATALOG = REPO / "examples" / "catalog"
ASTRONAUT = REPO / "examples" / "people" / "astronaut.png"


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium driven by Playwright (never a browser Playwright downloads itself)."""
    import shutil

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


def as_upload(path: str | Path) -> str:
    """A copy of `path` in Gradio's upload folder, where the page's upload box puts files (studio/uploads.py)."""
    import shutil
    import uuid

    from fashion_rag.studio.uploads import upload_root

    folder = upload_root() / f"test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    return shutil.copy(path, folder / Path(path).name)


def small_catalog(root: Path, per_category: int) -> Path:
    """A catalog folder at `root`: the first `per_category` images of each category of the example catalog,
    with their metadata rows."""
    import json
    import shutil

    rows = [json.loads(line) for line in (EXAMPLE_CATALOG / "metadata.jsonl").read_text().splitlines()]
    kept = []
    for category in ("upper_body", "lower_body", "dresses"):
        for row in [r for r in rows if r["category"] == category][:per_category]:
            (root / category).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(EXAMPLE_CATALOG / row["file"], root / row["file"])
            kept.append(row)
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return root


@pytest.fixture(scope="session")
def tiny_settings(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """App settings over the tiny bundle and the example catalog; index and outputs in a temp folder."""
    from fashion_rag.config import app_from_env, runtime_from_env

    work = tmp_path_factory.mktemp("studio")
    runtime = runtime_from_env(environ={}, models=str(tiny_bundle), device="cpu")
    return app_from_env(
        environ={}, runtime=runtime, catalog_dir=EXAMPLE_CATALOG, index_dir=work / "index", output_dir=work / "outputs"
    )


@pytest.fixture(scope="session")
def tiny_editor(tiny_settings):
    """An Editor over the tiny bundle with the example catalog indexed by the tiny retrieval encoder."""
    from fashion_rag.editor import Editor

    editor = Editor.from_settings(tiny_settings)
    editor.ensure_index()
    editor.load()
    return editor


@pytest.fixture(scope="session")
def studio_url(tiny_editor):
    """The studio running in this process on a free loopback port, with the tiny bundle."""
    from dataclasses import replace

    from app import CSS, build_demo, enable_queue

    demo = build_demo(tiny_editor)
    # Every client of the tests comes from 127.0.0.1: the load test's 20 clients stand for 20 visitors, so the
    # per-address shares are lifted here (tests/test_public_limits.py checks them on a studio of its own).
    limits = replace(tiny_editor.settings.limits, edits_per_address=1000, prepares_per_address=1000)
    enable_queue(demo, limits)
    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        server_port=None,
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        max_file_size="20mb",
        allowed_paths=[str(REPO / "examples"), str(tiny_editor.settings.output_dir)],
    )
    yield url
    demo.close()
