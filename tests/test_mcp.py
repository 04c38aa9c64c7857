"""The studio as a tool for agents (issue 23): `python app.py --mcp` serves Gradio's MCP server, whose tools
are the public endpoints `prepare`, `search` and `edit`, each described for an agent; without the flag there
is no MCP server, whatever GRADIO_MCP_SERVER says. Checked with the `mcp` package's own client."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from fashion_rag.studio.uploads import upload_root

from .conftest import ASTRONAUT

TOOLS = ("prepare", "search", "edit")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mcp_session(url: str, work):
    """Run `work(session)` in an initialised MCP client session on the studio at `url`."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        async with (
            streamablehttp_client(f"{url.rstrip('/')}/gradio_api/mcp/") as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return asyncio.run(run())


@pytest.fixture
def launched(tiny_settings, tmp_path):
    """app.launch with the tiny bundle's settings on a free port; yields (url, mcp_server) -> None."""
    import app

    demos = []

    def start(**kwargs) -> str:
        settings = replace(tiny_settings, port=free_port(), output_dir=tmp_path / "outputs")
        demo, _ = app.launch(settings, **kwargs)
        demos.append(demo)
        return f"http://127.0.0.1:{settings.port}"

    yield start
    for demo in demos:
        demo.close()


def test_the_mcp_flag_lists_prepare_search_and_edit_described_for_an_agent(launched):
    url = launched(mcp_server=True)

    async def listed(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in mcp_session(url, listed)}
    assert set(TOOLS) <= set(tools)
    for name in TOOLS:
        tool = tools[name]
        assert len(tool.description) > 80, f"{name}: {tool.description!r}"
        # Every parameter says what it means (Gradio takes these from the docstring's Args section).
        undescribed = [p for p, schema in tool.inputSchema["properties"].items() if not schema.get("description")]
        assert undescribed == [], f"{name}: parameters without a description: {undescribed}"
    edit = tools["edit"].inputSchema["properties"]
    assert "search" in edit["garment_ids"]["description"] and "-1" in edit["seed"]["description"]
    assert "upper_body" in tools["search"].inputSchema["properties"]["category"]["description"]
    # The schema route the Hugging Face MCP server reads lists the same tools.
    with urllib.request.urlopen(f"{url}/gradio_api/mcp/schema", timeout=30) as response:
        assert set(TOOLS) <= {tool["name"] for tool in json.load(response)}


def test_without_the_flag_there_is_no_mcp_server(launched, monkeypatch):
    monkeypatch.setenv("GRADIO_MCP_SERVER", "true")  # Gradio's own switch when launch is given None
    url = launched()
    with urllib.request.urlopen(f"{url}/", timeout=30) as response:
        assert response.status == 200  # the page is up
    for path in ("/gradio_api/mcp/schema", "/gradio_api/mcp/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}{path}", timeout=30)
        assert refused.value.code == 404, path


def test_python_app_mcp_launches_with_the_mcp_server(monkeypatch):
    import app

    seen = {}

    class Launched(Exception):
        pass

    def fake_launch(settings, prevent_thread_lock=True, mcp_server=False):
        seen["mcp_server"] = mcp_server
        raise Launched

    monkeypatch.setattr(app, "launch", fake_launch)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload_root()))  # main keeps a folder already named
    for argv, expected in ((["--mcp"], True), ([], False)):
        with pytest.raises(Launched):
            app.main(argv)
        assert seen.pop("mcp_server") is expected, argv
    with pytest.raises(SystemExit):  # serve mode has no MCP server yet: said at once
        app.main(["--serve", "--mcp"])


@pytest.fixture(scope="module")
def mcp_studio(tiny_editor):
    """The studio with the loaded tiny editor, MCP on (tool calls need the models)."""
    from app import build_demo, enable_queue

    demo = build_demo(tiny_editor)
    enable_queue(demo, tiny_editor.settings.limits)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, mcp_server=True
    )
    yield url
    demo.close()


def uploaded_url(url: str) -> str:
    """Upload the astronaut with Gradio's upload route, as an agent's upload tool does; the URL it is served at."""
    import httpx

    with ASTRONAUT.open("rb") as handle:
        answer = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files={"files": ("astronaut.png", handle)})
    answer.raise_for_status()
    return f"{url.rstrip('/')}/gradio_api/file={answer.json()[0]}"


def small_data_url() -> str:
    """The astronaut as a JPEG data URL under the request-size limit (256 KB of values, docs/RELIABILITY.md)."""
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(ASTRONAUT) as photo:
        photo.convert("RGB").save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_agent_searches_and_prepares_through_mcp(mcp_studio):
    data_url = small_data_url()
    upload = uploaded_url(mcp_studio)
    outside = f"{mcp_studio.rstrip('/')}/gradio_api/file={ASTRONAUT}"  # a server file, not an upload

    async def calls(session):
        found = await session.call_tool("search", {"text": "red striped shirt", "category": "upper_body", "k": 3})
        sent = [await session.call_tool("prepare", {"photo": photo}) for photo in (data_url, upload, outside)]
        return found, sent

    found, (from_data, from_upload, from_outside) = mcp_session(mcp_studio, calls)
    assert not found.isError and "striped" in found.content[0].text and "top-" in found.content[0].text
    for answer in (from_data, from_upload):
        assert not answer.isError, answer.content
        assert "mask_source" in " ".join(getattr(part, "text", "") for part in answer.content)
    assert from_outside.isError and "not a file uploaded to this server" in from_outside.content[0].text


def test_file_urls_are_read_as_paths_and_checked_and_bad_data_urls_refused(tmp_path):
    """What an MCP call hands over for a file: a served upload's URL (its path is checked like any path, nothing
    is fetched) or a data: URL (decoded into the upload folder); a broken data: URL is refused by name."""
    from fashion_rag.errors import InputError
    from fashion_rag.studio.uploads import upload_root, uploaded_file

    inside = upload_root() / "test-mcp" / "photo one.png"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(b"png")
    assert uploaded_file(f"http://elsewhere:1/gradio_api/file={inside}".replace(" ", "%20"), "photo") == str(inside)
    for outside in (f"http://127.0.0.1:7860/gradio_api/file={ASTRONAUT}", "https://example.com/photo.png"):
        with pytest.raises(InputError, match="not a file uploaded to this server"):
            uploaded_file(outside, "photo")
    decoded = uploaded_file("data:image/png;base64," + base64.b64encode(b"abc").decode(), "photo")
    assert Path(decoded).read_bytes() == b"abc" and Path(decoded).is_relative_to(upload_root())
    with pytest.raises(InputError, match="photo is a data: URL that is not valid base64"):
        uploaded_file("data:image/png;base64,abc", "photo")  # cut short: bad padding
