"""Two studios on one machine (docs/RELIABILITY.md, "Uploads lost when another studio on the machine stops").

Gradio stores an upload by content (`<upload folder>/<hash>/<name>`) and, when a page shuts down, deletes
every file it stored. Here `python app.py` runs as its own process while a second studio runs in the test
process with Gradio's default folder; the same photo is uploaded to both and the second one stops. Marked
slow: it starts a server process.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fashion_rag.studio import build_demo

from .conftest import ASTRONAUT
from .soak import start_server
from .test_public_limits import call

pytestmark = pytest.mark.slow


def upload(url: str, data: bytes) -> str:
    answer = httpx.post(f"{url}gradio_api/upload", files={"files": ("astronaut.png", data, "image/png")}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()[0]


@pytest.mark.timeout(600)
def test_a_studio_stopping_beside_another_leaves_the_other_studios_uploads(tiny_bundle, tiny_editor, tmp_path):
    process, url = start_server(tiny_bundle, tiny_editor.settings.resolved_index_dir, tmp_path)
    try:
        other = build_demo(tiny_editor)
        other.queue()
        _, other_url, _ = other.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
        photo = ASTRONAUT.read_bytes()
        kept, dropped = upload(url, photo), upload(other_url, photo)
        other.close()  # Gradio deletes what this page stored
        assert not Path(dropped).exists()  # the mechanism is still Gradio's
        assert Path(kept).is_file() and Path(kept).read_bytes() == photo
        status, stream = call(
            url, "prepare", [{"path": kept, "meta": {"_type": "gradio.FileData"}}, "upper_body", "box"]
        )
        assert status == 200 and "event: complete" in stream, stream[:300]
    finally:
        process.terminate()
        process.wait(timeout=30)
