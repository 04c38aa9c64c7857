"""Issue 8, promise 4: a safe public demo.

- checkpoints load only through safetensors or `torch.load(weights_only=True)`: a malicious pickle is
  refused and its payload never runs;
- the app serves files only from its own folders: `/etc/passwd` and `..` paths through every file route
  Gradio 6 exposes, and through the endpoints' file inputs, are refused (over HTTP, raw paths);
- garment picks are catalog ids, never file paths;
- uploads have a size limit; the default bind is 127.0.0.1 with no share link;
- outputs go to a per-session folder, cleaned up after a configurable age, and one session's results are
  never listed to another.
"""

from __future__ import annotations

import ast
import http.client
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import torch
from gradio_client import Client, handle_file

import app
from app import parse_args
from fashion_rag.config import AppSettings, app_from_env
from fashion_rag.errors import InputError, WeightsIntegrityError
from fashion_rag.outputs import Outputs
from fashion_rag.studio import build_demo
from fashion_rag.studio.api import parse_ids
from fashion_rag.studio.uploads import upload_root, use_own_upload_folder
from fashion_rag.weights import load_torch_state_dict

from .conftest import ASTRONAUT, EXAMPLE_CATALOG, REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one intra-op thread is faster

PASSWD_LINE = b"root:"  # the first line of /etc/passwd starts with it


# --------------------------------------------------------------------------------------------------
# Checkpoints: no code from a pickle


class TouchFile:
    """A pickle payload that creates a file when unpickled: the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    for legacy in (False, True):  # the zip format of torch.save and the legacy one
        path = tmp_path / f"evil-{legacy}.pth"
        torch.save(
            {"weight": torch.zeros(2), "payload": TouchFile(marker)}, path, _use_new_zipfile_serialization=not legacy
        )
        with pytest.raises(
            WeightsIntegrityError,
            match=rf"{path}: (refused to load, it holds objects other than "
            r"tensors|not a readable torch checkpoint)",
        ):
            load_torch_state_dict(path)
        assert not marker.exists()
    # The payload is live: an unsafe load would have run it.
    torch.load(tmp_path / "evil-False.pth", weights_only=False)
    assert marker.exists()


def test_malicious_checkpoint_in_a_bundle_is_refused_by_the_loader(tiny_bundle, tmp_path):
    """The published UNet checkpoint replaced by a pickle with a payload: loading the pipeline refuses it."""
    import shutil

    from fashion_rag.generation.pipeline import FashionRAGPipeline
    from fashion_rag.weights import ModelSources

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    marker = tmp_path / "payload-ran"
    checkpoint = bundle / "fashion-rag" / "unet_120000.pth"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "payload": TouchFile(marker)}, checkpoint)
    for stale in checkpoint.parent.glob("*.safetensors"):  # a converted copy must not mask the new file
        stale.unlink()
    with pytest.raises(WeightsIntegrityError, match=r"unet_120000\.pth: refused to load, it holds objects other"):
        FashionRAGPipeline.from_sources(ModelSources(str(bundle)), torch.device("cpu"))
    assert not marker.exists()


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) == name or getattr(node.func, "id", None) == name)
    ]


def test_every_checkpoint_load_in_the_code_is_weights_only():
    """Static: each torch.load passes weights_only=True; no pickle.load(s), no np.load(allow_pickle=True)."""
    sources = [REPO / "app.py", *sorted((REPO / "fashion_rag").rglob("*.py"))]
    torch_loads = []
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _calls(tree, "load"):
            owner = getattr(call.func, "value", None)
            owner_name = getattr(owner, "id", None)
            keywords = {k.arg: k.value for k in call.keywords}
            if owner_name == "torch":
                torch_loads.append(path.relative_to(REPO).as_posix())
                assert isinstance(keywords.get("weights_only"), ast.Constant), f"{path}:{call.lineno}"
                assert keywords["weights_only"].value is True, f"{path}:{call.lineno}"
            assert owner_name != "pickle", f"{path}:{call.lineno}: pickle.load"
            if owner_name == "np" and "allow_pickle" in keywords:
                assert keywords["allow_pickle"].value is False, f"{path}:{call.lineno}"
        assert not [c for c in _calls(tree, "loads") if getattr(c.func.value, "id", None) == "pickle"], path
    assert torch_loads == ["fashion_rag/weights/lock.py"]  # the one place: load_torch_state_dict


# --------------------------------------------------------------------------------------------------
# File routes over HTTP


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written (no client-side normalisation of `..` or `%2e%2e`)."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


EXAMPLES = str(REPO / "examples")
TRAVERSALS = [
    # Gradio 6 file routes: /gradio_api/file=PATH and the older /gradio_api/file/PATH
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=%2fetc%2fpasswd",
    "/gradio_api/file=../../../../../../../etc/passwd",
    "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    f"/gradio_api/file={EXAMPLES}/../../../../../../../etc/passwd",  # an allowed folder, then out of it
    f"/gradio_api/file={EXAMPLES}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    f"/gradio_api/file={EXAMPLES}%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=/etc/../etc/passwd",
    "/gradio_api/file=file:///etc/passwd",
    "/gradio_api/file=/proc/self/environ",
    f"/gradio_api/file={REPO}/app.py",  # the app's own source is not one of its folders
    f"/gradio_api/file={REPO}/pyproject.toml",
    "/gradio_api/file/etc/passwd",
    "/gradio_api/file//etc/passwd",
    "/gradio_api/file/../../../../../../etc/passwd",
    # Gradio 3/4 routes (absent in 6: must not be served by a fallback)
    "/file=/etc/passwd",
    "/file/etc/passwd",
    # static assets of the frontend
    "/static/../../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/assets/../../../../../../../etc/passwd",
    "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/assets/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/svelte/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    # proxy, custom components, run history, streams, icons
    "/gradio_api/proxy=file:///etc/passwd",
    "/gradio_api/proxy=http://127.0.0.1:1/etc/passwd",
    "/gradio_api/custom_component/x/client/..%2f..%2f..%2f..%2fetc/passwd",
    "/gradio_api/run-history/records/x/y/assets/..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/stream/x/0/0/..%2f..%2f..%2fetc%2fpasswd",
    "/pwa_icon/..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/../../../etc/passwd",
    "/etc/passwd",
]


def test_an_allowed_file_is_served_so_the_probes_reach_a_live_route(studio_url):
    status, body = raw_get(studio_url, f"/gradio_api/file={ASTRONAUT}")
    assert status == 200 and body == ASTRONAUT.read_bytes()


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_outside_the_apps_folders_are_refused_over_http(studio_url, path):
    status, body = raw_get(studio_url, path)
    assert status in (400, 403, 404), (status, body[:200])
    assert PASSWD_LINE not in body and b"FASHION_RAG" not in body


@pytest.mark.parametrize("server_path", ["/etc/passwd", "../../../../../../etc/passwd", str(REPO / "app.py")])
def test_endpoint_file_inputs_that_name_server_paths_are_refused(studio_url, server_path):
    """A raw API call whose photo is a path on the server (not an upload) fails without reading it."""
    with httpx.Client(base_url=studio_url, timeout=60) as http:
        payload = {"data": [{"path": server_path, "meta": {"_type": "gradio.FileData"}}, "upper_body", "box"]}
        answer = http.post("/gradio_api/call/prepare", json=payload)
    # Refused before it is queued (studio/admission.py), with the studio's message and nothing of the file.
    assert answer.status_code == 422 and "is not a file uploaded to this server" in answer.text
    assert "root:" not in answer.text and "import" not in answer.text and "frame.png" not in answer.text


# --------------------------------------------------------------------------------------------------
# Garment picks are ids, never paths


@pytest.mark.parametrize(
    "pick",
    ["/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd", "upper_body/top-001.png",
     str(EXAMPLE_CATALOG / "upper_body" / "top-001.png"), "top-001.png", "~/.ssh/id_rsa"],
)  # fmt: skip
def test_garment_picks_that_are_paths_are_unknown_ids(tiny_editor, pick):
    assert parse_ids(f"{pick}, top-002") == [pick, "top-002"]  # kept as strings: never opened as given
    with pytest.raises(InputError, match=rf"^unknown catalog id {pick!r}$".replace(".", r"\.")):
        tiny_editor.garment_tokens([pick], [])


def test_every_catalog_id_resolves_inside_the_catalog(tiny_editor):
    search = tiny_editor.searcher
    root = EXAMPLE_CATALOG.resolve()
    ids = [item.id for item in search.index.items]
    assert len(ids) == 99
    for item_id in ids:
        path = search.image_path(item_id).resolve()
        assert path.is_relative_to(root) and path.is_file()


# --------------------------------------------------------------------------------------------------
# Upload size limit, bind address, share link


def _upload(studio_url: str, size: int) -> httpx.Response:
    with httpx.Client(base_url=studio_url, timeout=120) as http:
        return http.post("/gradio_api/upload", files={"files": ("big.png", b"\0" * size, "image/png")})


def test_upload_over_the_limit_is_refused_over_http_and_a_small_one_is_taken(studio_url):
    limit = 20 * 1024 * 1024  # the fixture launches with max_file_size="20mb", as main() does by default
    response = _upload(studio_url, limit + 1)
    assert response.status_code == 413
    assert response.text == f"File size exceeded maximum allowed size of {limit} bytes."
    small = _upload(studio_url, 1024)
    assert small.status_code == 200 and len(small.json()) == 1 and small.json()[0].endswith("big.png")


def test_defaults_bind_loopback_without_share_and_limit_uploads():
    args = parse_args([])
    assert (args.host, args.share, args.max_upload_mb) == (None, False, 20)  # None: the settings decide
    defaults = AppSettings()
    assert (defaults.host, defaults.share, defaults.max_upload_mb) == ("127.0.0.1", False, 20)
    from_env = app_from_env(environ={}, host=args.host, share=args.share, max_upload_mb=args.max_upload_mb)
    assert (from_env.host, from_env.share, from_env.max_upload_mb) == ("127.0.0.1", False, 20)
    # Only on a Hugging Face Space (SPACE_ID set, the Space's proxy in front) does it listen beyond loopback.
    assert app_from_env(environ={"SPACE_ID": "user/studio"}).host == "0.0.0.0"
    assert app_from_env(environ={"SPACE_ID": "user/studio"}).share is False


def test_main_launches_on_loopback_with_the_upload_limit_and_only_its_folders(tiny_editor, monkeypatch):
    """`python app.py` with no flags: what it passes to Gradio's launch (the launch itself is captured)."""
    import gradio as gr

    from fashion_rag.editor import Editor
    from fashion_rag.startup import LoadProgress

    for key in [key for key in os.environ if key.startswith("FASHION_RAG_") or key == "SPACE_ID"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GRADIO_TEMP_DIR", "")  # unset for main; the test process's own is put back afterwards
    captured = {}
    monkeypatch.setattr(Editor, "from_settings", classmethod(lambda cls, settings: tiny_editor))
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: captured.update(kwargs))
    # main() launches, then loads in the background and blocks (issue 21): neither here, on the shared editor.
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: None)
    monkeypatch.setattr(tiny_editor, "load_in_background", lambda before=None: None)
    monkeypatch.setattr(tiny_editor, "progress", LoadProgress())
    level = logging.getLogger("fashion_rag").level
    try:
        app.main([])
    finally:
        logging.getLogger("fashion_rag").setLevel(level)
    assert captured["server_name"] == "127.0.0.1" and captured["share"] is False
    assert captured["max_file_size"] == "20mb"
    settings = AppSettings()
    assert captured["allowed_paths"] == [str(app.EXAMPLES_DIR), str(settings.catalog_dir), str(settings.output_dir)]
    # Uploads in a folder of this process's own, not the machine's shared /tmp/gradio (studio/uploads.py).
    uploads = Path(os.environ["GRADIO_TEMP_DIR"])
    assert uploads.is_dir() and uploads.parent == Path(tempfile.gettempdir())
    assert uploads.name.startswith("fashion-rag-uploads-") and upload_root() == uploads.resolve()
    shutil.rmtree(uploads)


def test_each_studio_keeps_its_uploads_apart_unless_the_deployment_names_a_folder(monkeypatch, tmp_path):
    """Gradio deletes every upload a page stored when it shuts down, and stores uploads by content: a second
    studio on the machine must not share the folder (studio/uploads.py)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", "")
    first = use_own_upload_folder("fashion-rag-uploads-")
    monkeypatch.setenv("GRADIO_TEMP_DIR", "")  # another process starting
    second = use_own_upload_folder("fashion-rag-uploads-")
    assert first != second and first.is_dir() and second.is_dir()
    assert upload_root() == second.resolve()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    assert use_own_upload_folder("fashion-rag-uploads-") == tmp_path  # the deployment's choice stands
    ingress = use_own_upload_folder("fashion-rag-ingress-", keep_configured=False)  # a serve-mode page: always
    assert ingress not in (tmp_path, first, second) and ingress.name.startswith("fashion-rag-ingress-")
    for folder in (first, second, ingress):
        folder.rmdir()


# --------------------------------------------------------------------------------------------------
# Per-session outputs


def test_outputs_are_per_session_folders_inside_the_root_and_old_ones_are_cleaned(tmp_path):
    outputs = Outputs(tmp_path / "outputs", max_age_s=3600)
    first = outputs.folder("a1b2c3")
    assert first == tmp_path / "outputs" / "a1b2c3" and first.is_dir()
    # A session name cannot climb out of the root: only letters and digits are kept.
    assert outputs.folder("../../etc/passwd") == tmp_path / "outputs" / "etcpasswd"
    assert outputs.folder(None) == tmp_path / "outputs" / "cli"
    assert outputs.folder("../..") == tmp_path / "outputs" / "anonymous"
    (first / "result.png").write_bytes(b"png")
    old = time.time() - 3601
    os.utime(first, (old, old))
    fresh = outputs.folder("d4e5f6")  # handing out a folder does not scan the others ...
    assert first.exists() and fresh.is_dir()
    assert outputs.clean() == [first]  # ... the clean-up does (in the background, at most once a minute)
    assert not first.exists() and fresh.is_dir()
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["anonymous", "cli", "d4e5f6", "etcpasswd"]


def test_the_size_cap_counts_files_in_a_session_folders_sub_folders(tmp_path):
    """A history entry keeps an uploaded garment, as uploaded, in a sub-folder (studio/handlers.save_views):
    its bytes count toward max_bytes, so the oldest session goes when they put the root over the cap."""
    outputs = Outputs(tmp_path / "outputs", max_age_s=3600, max_bytes=1500)
    older, newer = outputs.folder("older"), outputs.folder("newer")
    (older / "result.png").write_bytes(b"x" * 500)
    (newer / "result.png").write_bytes(b"x" * 500)
    assert outputs.clean() == [] and outputs.last_total_bytes == 1000
    (older / "entry-garment").mkdir()
    (older / "entry-garment" / "jacket.jpg").write_bytes(b"x" * 800)
    old = time.time() - 60
    os.utime(older, (old, old))
    assert outputs.clean() == [older] and outputs.last_total_bytes == 500


def test_clean_up_never_deletes_a_folder_a_session_is_writing_to(tmp_path):
    """A session idle past the age writes again while another request cleans: its folder must survive."""
    outputs = Outputs(tmp_path / "outputs", max_age_s=3600)
    idle = outputs.folder("idle")
    old = time.time() - 7200
    os.utime(idle, (old, old))
    with outputs.session_folder("idle") as folder:  # handed out: in use, and fresh again
        assert outputs.clean() == [] and folder.is_dir()
        os.utime(folder, (old, old))  # even if its age still said "old" while in use
        assert outputs.clean() == [] and folder.is_dir()
        (folder / "result.png").write_bytes(b"png")
    os.utime(idle, (old, old))
    assert outputs.clean() == [idle] and not idle.exists()  # once out of use and old, it goes


def test_writers_and_cleaners_racing_never_lose_a_file(tmp_path):
    """Age 0: every folder not in use is deleted at once. 6 writers x 40 writes race 2 cleaners."""
    outputs = Outputs(tmp_path / "outputs", max_age_s=0)
    errors, stop = [], threading.Event()

    def write(writer):
        try:
            for number in range(40):
                with outputs.session_folder(f"session{writer % 3}") as folder:  # two writers per session
                    path = folder / f"{writer}-{number}.png"
                    path.write_bytes(b"png")
                    time.sleep(0.001)  # let a cleaner run while the file sits there
                    assert path.read_bytes() == b"png"
        except Exception as error:  # noqa: BLE001 - any failure of a writer is the finding
            errors.append(error)

    def clean():
        while not stop.is_set():
            outputs.clean()

    cleaners = [threading.Thread(target=clean) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in cleaners + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    stop.set()
    for thread in cleaners:
        thread.join(timeout=10)
    assert errors == []


def test_the_cleaning_age_is_a_setting_used_by_the_studio(tiny_editor, tmp_path):
    settings = replace(tiny_editor.settings, output_dir=tmp_path / "outputs", output_max_age_s=600)
    demo = build_demo(tiny_editor, settings)
    assert demo.delete_cache == (3600, 600)  # Gradio's own cache of served results: the same age
    assert AppSettings.output_max_age_s == 24 * 3600


def test_two_sessions_get_separate_folders_and_nothing_lists_them(studio_url, tiny_editor):
    output_dir = tiny_editor.settings.output_dir
    arguments = [handle_file(str(ASTRONAUT)), "upper_body", "top-001", None, None, "", 0, 1, 7.5, "ddim", 1, True]
    results = {}
    clients = {}
    for name, seed in (("alice", 101), ("bob", 202)):
        clients[name] = Client(studio_url, verbose=False, download_files=False, analytics_enabled=False)
        arguments[6] = seed
        gallery, used_seed, recipe = clients[name].predict(*arguments, api_name="/edit")
        assert used_seed == seed
        results[name] = (Path(gallery[0]["image"]["path"]), Path(recipe["path"]))
    folders = {
        name: output_dir / "".join(ch for ch in client.session_hash if ch.isalnum()) for name, client in clients.items()
    }
    assert folders["alice"] != folders["bob"]
    for name, other in (("alice", "bob"), ("bob", "alice")):
        seed = 101 if name == "alice" else 202
        mine = sorted(p.name for p in folders[name].iterdir())
        assert mine and all(f"-seed{seed}" in file_name for file_name in mine)
        assert results[name][0].name in mine and results[other][0].name not in mine

    # No route lists a folder: the outputs root, a session folder and the served copy's folder are refused.
    for folder in (output_dir, folders["alice"], results["alice"][0].parent):
        for path in (f"/gradio_api/file={folder}", f"/gradio_api/file={folder}/"):
            status, body = raw_get(studio_url, path)
            assert status == 403 and results["alice"][0].name.encode() not in body
    # What another session can read about the app (config, API description) holds no session's folder.
    for route in ("/config", "/gradio_api/info"):
        status, body = raw_get(studio_url, route)
        assert status == 200
        text = body.decode()
        assert str(output_dir) not in text and folders["alice"].name not in text
        assert clients["alice"].session_hash not in text


def test_the_studio_is_reachable_only_on_loopback(studio_url):
    assert urlparse(studio_url).hostname == "127.0.0.1"
    payload = json.loads(raw_get(studio_url, "/config")[1])
    assert payload.get("share_url") in (None, "")
