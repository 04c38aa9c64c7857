"""Issue 20 in a real browser: when the studio refuses a Generate (a visitor's fair share of the GPU lane is
taken), the page says "busy ... try again in N s" at once instead of waiting silently, and the next
Generate works once the lane is free.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import replace

import pytest
from gradio_client import Client, handle_file

from fashion_rag.config import ServingLimits

from .conftest import ASTRONAUT, as_upload

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def busy_studio(tiny_editor, tmp_path_factory):
    """A studio whose client address may hold one edit at a time; its edits take 6 s."""
    from app import build_demo, enable_queue

    limits = ServingLimits(edits_per_address=1)
    settings = replace(tiny_editor.settings, limits=limits, output_dir=tmp_path_factory.mktemp("busy-outputs"))
    editor = copy.copy(tiny_editor)
    editor.settings = settings
    real_edit = editor.edit

    def slow_edit(*args, **kwargs):
        time.sleep(6)
        return real_edit(*args, **kwargs)

    editor.edit = slow_edit
    demo = build_demo(editor, settings)
    enable_queue(demo, limits)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


def test_a_refused_generate_says_busy_and_the_next_one_runs(chromium, busy_studio):
    page = chromium.new_page(viewport={"width": 1600, "height": 1300})
    page.goto(busy_studio)
    page.locator("#person-upload input[type=file]").set_input_files(str(ASTRONAUT))
    page.wait_for_selector("#person-notes :text('Mask found from the body')", timeout=60_000)
    page.locator("#description textarea").fill("red striped shirt")
    page.locator("#advanced").click()
    page.locator("#steps input[type=number]").fill("1")
    page.locator("#steps input[type=number]").press("Enter")

    # Another session from the same address holds the one edit slot for 6 s.
    api = Client(busy_studio, verbose=False, download_files=False)
    other = threading.Thread(
        target=api.predict,
        args=(handle_file(as_upload(ASTRONAUT)), "upper_body", "top-001", None, None, "", 1, 1, 7.5, "ddim", 1, True),
        kwargs={"api_name": "/edit"},
    )
    other.start()
    time.sleep(1.5)
    clicked = time.monotonic()
    page.locator("#generate-button").click()
    toast = page.locator(".toast-body", has_text="busy")
    toast.first.wait_for(timeout=10_000)
    assert time.monotonic() - clicked < 5  # said at once, not after the other edit
    text = toast.first.inner_text()
    assert "already waiting or running; try again in" in text and " s" in text, text

    other.join(timeout=60)
    page.locator("#generate-button").click()
    page.wait_for_selector("#result-note :text('Text-only edit')", timeout=120_000)
    page.close()
