"""A short start (issue 21): modules import nothing heavy, and the app serves its page before the models load."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace

import pytest
from gradio_client import Client, handle_file

from fashion_rag.errors import ModelsLoadingError

from .conftest import ASTRONAUT, REPO
from .sequential_client import predict

# What issue 21 names as heavy: none of these may be imported before a model is built.
HEAVY = ("diffusers", "transformers", "open_clip", "mediapipe", "datasets", "torch._dynamo")


MODULES = (
    "fashion_rag.person",
    "fashion_rag.catalog.catalog",
    "fashion_rag.catalog.search",
    "fashion_rag.editor",
    "app",
)


def test_modules_import_nothing_heavy():
    """Each module imported in turn in one fresh interpreter; what each newly brought into sys.modules."""
    code = (
        "import importlib, json, sys\n"
        f"heavy, brought = {HEAVY!r}, {{}}\n"
        f"for name in {MODULES!r}:\n"
        "    before = {m for m in heavy if m in sys.modules}\n"
        "    importlib.import_module(name)\n"
        "    brought[name] = sorted({m for m in heavy if m in sys.modules} - before)\n"
        "print(json.dumps(brought))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=180)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {name: [] for name in MODULES}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_page_answers_before_the_models_load_and_generate_waits_for_them(tiny_settings, tmp_path, monkeypatch):
    """app.launch serves the page with no model loaded; the load runs in the background (held here until the
    page has been checked), Generate refuses with its progress until it is done, then works."""
    import app
    from fashion_rag.editor import Editor

    release = threading.Event()
    real_load = Editor.load

    def held_load(self, progress=None):
        assert release.wait(120), "the test never released the load"
        real_load(self, progress)

    monkeypatch.setattr(Editor, "load", held_load)
    settings = replace(tiny_settings, port=free_port(), output_dir=tmp_path / "outputs", index_dir=tmp_path / "index")
    demo, editor = app.launch(settings)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/", timeout=10) as response:
            assert response.status == 200
        assert editor._preparer is None and editor._search is None and editor._pipeline is None  # nothing loaded
        button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "generate-button")
        assert button.interactive is False
        assert "models still loading (0%" in app.status_markdown(editor)

        editor.load_in_background()
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(Exception, match=r"models still loading \(\d+%\)"):
            predict(
                client,
                handle_file(str(ASTRONAUT)),
                "upper_body",
                "top-001",
                None,
                None,
                "",
                1,
                2,
                7.5,
                "ddim",
                1,
                True,
                api_name="/edit",
            )
        with pytest.raises(ModelsLoadingError, match=r"models still loading \(\d+%\)"):
            editor.check_generation_ready()

        release.set()
        deadline = time.monotonic() + 180
        while editor.progress.loading and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not editor.progress.loading and editor.progress.problem is None
        status = app.status_markdown(editor)
        assert "**Generate:** ready" in status and "<li>UNet: eager" in status
        images, _, _ = predict(
            client,
            handle_file(str(ASTRONAUT)),
            "upper_body",
            "top-001",
            None,
            None,
            "",
            1,
            2,
            7.5,
            "ddim",
            1,
            True,
            api_name="/edit",
        )
        assert images
    finally:
        release.set()
        demo.close()


def test_a_failed_background_load_shows_in_the_status_line(tiny_settings, tmp_path, monkeypatch):
    from app import status_markdown
    from fashion_rag.editor import Editor

    def broken_load(self, progress=None):
        raise OSError("disk went away")

    monkeypatch.setattr(Editor, "load", broken_load)
    editor = Editor.from_settings(replace(tiny_settings, output_dir=tmp_path / "outputs"))
    editor.load_in_background().join(30)
    assert not editor.progress.loading
    assert "**Loading the models failed:** OSError: disk went away" in status_markdown(editor)
