"""Issue 20: safe as a public Space. Each test replays one probe of the attack report against the live app
(tiny bundle, loopback) or the function behind it, and asserts the refusal the app now gives.

- file inputs accept only uploads (every file input, with and without `meta`, plain strings, `..`, links);
- numbers and flags are parsed strictly, with the app's own message (never a blank error);
- the queue is bounded, one session and one address get a fair share, unheard jobs are dropped;
- a closed tab's state expires in minutes and holds no full-size photo;
- the stated limits (edit megapixels, files per upload, description length, output disk) hold;
- no absolute server path in a recipe.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from fashion_rag.config import REPO_ROOT, ServingLimits
from fashion_rag.errors import InputError
from fashion_rag.outputs import Outputs
from fashion_rag.person.photo import fit_megapixels
from fashion_rag.studio import values
from fashion_rag.studio.admission import Admission, client_address
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.uploads import upload_root, uploaded_file

from .conftest import ASTRONAUT, as_upload

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def call(url: str, api: str, data: list, session_hash: str | None = None, timeout: float = 120) -> tuple[int, str]:
    """POST /gradio_api/call/<api> as raw JSON, then read its result stream: (status of the POST, body)."""
    with httpx.Client(base_url=url, timeout=timeout) as http:
        body = {"data": data} | ({"session_hash": session_hash} if session_hash else {})
        raw = json.dumps(body)  # Python's encoder writes NaN and Infinity as the attack sent them
        posted = http.post(f"/gradio_api/call/{api}", content=raw, headers={"content-type": "application/json"})
        if posted.status_code != 200:
            return posted.status_code, posted.text
        return 200, http.get(f"/gradio_api/call/{api}/{posted.json()['event_id']}").text


def error_text(stream: str) -> str:
    """The message of an `event: error` stream, '' when the call succeeded."""
    if not stream.startswith("event: error"):
        return ""
    data = json.loads(stream.split("data:", 1)[1].strip())
    message = data.get("error") if isinstance(data, dict) else data
    return message or "<blank>"


# --------------------------------------------------------------------------------------------------
# 1. File inputs: only uploads


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Files outside the upload folder: an image, a FIFO (opening it would block) and links to both."""
    folder = tmp_path_factory.mktemp("server-files")
    image = folder / "server.png"
    Image.open(ASTRONAUT).save(image)
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    links = upload_root() / f"test-links-{os.getpid()}"
    links.mkdir(parents=True, exist_ok=True)
    for name, target in (("link.png", image), ("fifo-link.png", fifo)):
        if not (links / name).is_symlink():
            (links / name).symlink_to(target)
    return {
        "image": str(image),
        "fifo": str(fifo),
        "link": str(links / "link.png"),
        "fifo-link": str(links / "fifo-link.png"),
        "missing": str(folder / "no-such.png"),
        "dotdot": str(upload_root() / ".." / ".." / folder.name / "server.png"),
    }


SHAPES = {
    "with-meta": lambda path: {"path": path, "meta": {"_type": "gradio.FileData"}},
    "without-meta": lambda path: {"path": path},
    "plain-string": lambda path: path,
}
REFUSAL = "is not a file uploaded to this server"


@pytest.mark.parametrize("target", ["image", "fifo", "link", "fifo-link", "missing", "dotdot"])
def test_uploaded_file_refuses_every_path_outside_the_upload_folder_without_opening_it(outside, target):
    started = time.monotonic()
    for shape in SHAPES.values():
        with pytest.raises(InputError, match=REFUSAL) as refused:
            uploaded_file(shape(outside[target]), "photo")
        assert outside[target] not in str(refused.value) and "server.png" not in str(refused.value)
    assert time.monotonic() - started < 1  # a FIFO that was opened would block here
    inside = as_upload(ASTRONAUT)
    assert uploaded_file({"path": inside}, "photo") == str(Path(inside).resolve())


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("api", "slot"), [("prepare", 0), ("edit", 0), ("edit", 3), ("edit", 4)])
def test_every_file_input_of_the_api_refuses_server_paths_with_one_message(studio_url, outside, api, slot, shape):
    """The photo of /prepare and the photo, garment image and mask of /edit, as the attack sent them."""
    messages = set()
    for target in ("image", "missing", "link", "dotdot"):
        if api == "prepare":
            data = [None, "upper_body", "box"]
        else:
            data = [
                handle_file(as_upload(ASTRONAUT)) | {"meta": {"_type": "gradio.FileData"}},
                "upper_body",
                "top-001",
                None,
                None,
                "",
                1,
                1,
                7.5,
                "ddim",
                1,
                True,
            ]
        data[slot] = SHAPES[shape](outside[target])
        status, stream = call(studio_url, api, data)
        # A file value (a dict) is refused before it is queued (422); a plain string by the endpoint itself.
        message = error_text(stream) if status == 200 else json.loads(stream)["detail"][0]["message"]
        assert status == (200 if shape == "plain-string" else 422) and REFUSAL in message, (target, stream[:300])
        assert "root:" not in stream and "PNG" not in stream and "frame.png" not in stream
        assert "server.png" not in stream and "no-such" not in stream
        messages.add(message)
    assert len(messages) == 1, messages  # existing, missing, linked or climbing: the same answer


# --------------------------------------------------------------------------------------------------
# 2. Numbers and flags


BAD_NUMBERS = [float("nan"), float("inf"), float("-inf"), 10**400, "abc", [1, 2], {"x": 1}, True, 2.5]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_whole_number_parser_refuses_each_bad_value_with_its_own_message(bad):
    with pytest.raises(InputError, match=r"^steps=.{1,40}: (use a|that number)") as refused:
        values.whole("steps", bad, 50)
    assert len(str(refused.value)) < 120  # 10**400 is not echoed back


def test_number_and_flag_parsers_accept_what_they_mean():
    assert values.whole("k", 2.0, 6) == 2 and values.whole("k", None, 6) == 6
    assert values.real("guidance", 7, 7.5) == 7.0 and values.real("guidance", None, 7.5) == 7.5
    for bad in ("abc", [7.5], float("nan"), float("inf"), True):
        with pytest.raises(InputError, match=r"^guidance="):
            values.real("guidance", bad, 7.5)
    assert values.flag("paste_back", False, True) is False and values.flag("paste_back", None, True) is True
    for bad in ("false", "true", 0, 1, "no"):
        with pytest.raises(InputError, match=r"paste_back=.*: use true or false"):
            values.flag("paste_back", bad, True)


BAD_CALLS = {
    "steps-nan": ("edit", 7, float("nan"), "steps="),
    "steps-infinity": ("edit", 7, float("inf"), "steps="),
    "steps-huge": ("edit", 7, 10**400, "steps="),
    "seed-nan": ("edit", 6, float("nan"), "seed="),
    "seed-huge": ("edit", 6, 10**400, "seed="),
    "images-minus-infinity": ("edit", 10, float("-inf"), "num_images="),
    "images-list": ("edit", 10, [1, 2], "num_images="),
    "guidance-abc": ("edit", 8, "abc", "guidance="),
    "guidance-list": ("edit", 8, [7.5], "guidance="),
    "paste-back-string": ("edit", 11, "false", "paste_back="),
    "k-nan": ("search", 2, float("nan"), "k="),
    "k-huge": ("search", 2, 10**400, "k="),
    "k-string": ("search", 2, "six", "k="),
    "category-list": ("search", 1, ["dresses"], "category="),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_numbers_over_http_get_the_apps_message_not_a_blank_error(studio_url, case):
    api, slot, bad, expected = BAD_CALLS[case]
    if api == "search":
        data = ["red dress", "dresses", 3]
    else:
        data = [
            handle_file(as_upload(ASTRONAUT)) | {"meta": {"_type": "gradio.FileData"}},
            "upper_body",
            "top-001",
            None,
            None,
            "",
            1,
            1,
            7.5,
            "ddim",
            1,
            True,
        ]
    data[slot] = bad
    status, stream = call(studio_url, api, data)
    message = error_text(stream)
    assert status == 200 and message.startswith(expected), stream[:300]
    assert "Traceback" not in stream and len(stream) < 1000


# --------------------------------------------------------------------------------------------------
# 3. The queue: bounded, fair, no work for clients that left


@pytest.fixture(scope="module")
def strict_app(tiny_editor, tmp_path_factory):
    """A second studio with small limits, so that the queue's rules show within seconds."""
    from app import build_demo, enable_queue

    limits = ServingLimits(
        queue_size=12,
        edits_per_address=3,
        listener_grace_s=5,
        closed_session_ttl_s=1,
        edit_megapixels=0.2,
        files_per_upload=2,
        request_kb=64,
    )
    settings = replace(tiny_editor.settings, limits=limits, output_dir=tmp_path_factory.mktemp("strict-outputs"))
    editor = copy.copy(tiny_editor)  # the same loaded models, under the strict limits
    editor.settings = settings
    demo = build_demo(editor, settings)
    admission = enable_queue(demo, limits)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, max_file_size="20mb"
    )
    demo.strict_editor = editor
    yield url, demo, admission
    demo.close()


HOLD_S = {"now": 1.5}  # how long each edit of the strict app holds the lane


@pytest.fixture
def slow_edits(strict_app, monkeypatch):
    """Every edit of the strict app holds the GPU lane for 1.5 s; returns the times of the edits that ran."""
    editor = strict_app[1].strict_editor
    ran = []
    real = editor.edit

    def slow(*args, **kwargs):
        ran.append(time.monotonic())
        time.sleep(HOLD_S["now"])
        return real(*args, **kwargs)

    monkeypatch.setattr(editor, "edit", slow)
    return ran


def edit_data(photo) -> list:
    return [photo, "upper_body", "top-001", None, None, "", 3, 1, 7.5, "ddim", 1, True]


def test_one_session_gets_one_edit_slot_and_a_busy_answer_while_another_visitor_starts(strict_app, slow_edits):
    url, _, admission = strict_app
    flooder = Client(url, verbose=False, download_files=False)
    photo = handle_file(as_upload(ASTRONAUT))
    first = flooder.submit(*edit_data(photo), api_name="/edit")
    time.sleep(0.3)
    refusals = []
    for _ in range(5):
        with pytest.raises(Exception) as refused:  # noqa: PT011 - gradio_client's ValidationError
            flooder.predict(*edit_data(photo), api_name="/edit")
        refusals.append(str(refused.value))
    assert all(
        "busy: 1 of your requests of this kind are already waiting or running; try again in" in r for r in refusals
    ), refusals
    visitor = Client(url, verbose=False, download_files=False)
    started = time.monotonic()
    gallery, seed, _ = visitor.predict(*edit_data(photo), api_name="/edit")
    assert seed == 3 and len(gallery) == 1
    first.result()
    assert len(slow_edits) == 2  # the five refused edits never ran
    assert time.monotonic() - started < 2 * 1.5 + 10  # at most the running edit ahead of it, then its own
    assert admission.refused["gpu-per-session"] >= 5


def test_sessionless_calls_from_one_address_are_capped(strict_app, slow_edits):
    url, _, admission = strict_app
    photo = handle_file(as_upload(ASTRONAUT)) | {"meta": {"_type": "gradio.FileData"}}
    base = url.rstrip("/")

    def post_and_listen(_):  # each client reads its result at once, so that none is dropped as unheard
        answer = httpx.post(f"{base}/gradio_api/call/edit", json={"data": edit_data(photo)}, timeout=30)
        if answer.status_code != 200:
            return answer.status_code, answer.text
        return 200, httpx.get(f"{base}/gradio_api/call/edit/{answer.json()['event_id']}", timeout=120).text

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post_and_listen, range(6)))
    done = [text for status, text in answers if status == 200]
    refused = [text for status, text in answers if status != 200]
    assert len(done) == 3 and len(refused) == 3  # edits_per_address=3
    assert all("from your address" in text for text in refused)
    assert all("event: complete" in text for text in done), [text[:300] for text in done]
    assert admission.refused["gpu-per-address"] >= 3 and len(slow_edits) == 3


def test_queued_jobs_whose_client_never_listens_are_dropped_before_they_start(strict_app, slow_edits, monkeypatch):
    url, _, admission = strict_app
    photo = handle_file(as_upload(ASTRONAUT)) | {"meta": {"_type": "gradio.FileData"}}
    dropped_before = admission.dropped
    monkeypatch.setitem(HOLD_S, "now", 12)  # the listened edit runs past the 5 s grace of the other two
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/gradio_api/call/edit", json={"data": edit_data(photo)}).json()["event_id"]
        gone = [http.post("/gradio_api/call/edit", json={"data": edit_data(photo)}) for _ in range(2)]
        assert all(answer.status_code == 200 for answer in gone)
        assert "event: complete" in http.get(f"/gradio_api/call/edit/{first}").text  # 12 s: the others wait
    deadline = time.monotonic() + 20
    while admission.dropped - dropped_before < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert admission.dropped - dropped_before == 2
    time.sleep(2)
    assert len(slow_edits) == 1  # only the edit whose client listened ran
    late = httpx.get(f"{url.rstrip('/')}/gradio_api/call/edit/{gone[0].json()['event_id']}", timeout=30).text
    assert "dropped before it started: nobody read its results for 5 s" in error_text(late)


def test_a_full_queue_answers_busy(strict_app):
    url, demo, admission = strict_app
    with httpx.Client(base_url=url, timeout=30) as http:
        answers = [
            http.post(
                "/gradio_api/call/search",
                json={"data": ["red dress", "dresses", 3]},
                headers={"x-forwarded-for": f"10.0.0.{i}"},
            )
            for i in range(40)
        ]
    full = [a for a in answers if "the studio is busy" in a.text]
    assert len(demo._queue) <= 12 and all(a.status_code == 422 for a in full)
    assert admission.refused["queue-full"] == len(full)


def test_the_client_address_is_the_peer_unless_behind_a_trusted_proxy():
    class Request:
        headers = {"x-forwarded-for": "203.0.113.7, 10.0.0.1"}
        client = type("Peer", (), {"host": "127.0.0.1"})()

    assert client_address(Request(), behind_proxy=False) == "127.0.0.1"  # a header anyone can send
    assert client_address(Request(), behind_proxy=True) == "203.0.113.7"  # a Space's proxy sets it


def test_requests_over_the_size_limit_are_refused_before_queueing(strict_app):
    url, _, admission = strict_app
    with httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/gradio_api/call/search", json={"data": ["x" * 100_000, "dresses", 3]})
    assert answer.status_code == 422 and "at most 64 KB" in answer.text and "xxxxxxxxxx" not in answer.text


# --------------------------------------------------------------------------------------------------
# 4. Session state: no full-size photo, gone minutes after the tab closes


def test_a_closed_sessions_state_expires_and_holds_no_full_size_photo(strict_app, tiny_editor):
    url, demo, _ = strict_app
    session = "closedtab0001"
    upload_fn = next(i for i, fn in demo.fns.items() if fn.name == "on_photo")
    photo = handle_file(as_upload(ASTRONAUT))
    with (
        httpx.Client(base_url=url, timeout=60) as http,
        http.stream("GET", f"/gradio_api/heartbeat/{session}") as heartbeat,
    ):
        posted = http.post(
            "/gradio_api/queue/join",
            json={
                "data": [photo | {"meta": {"_type": "gradio.FileData"}}, "upper_body", "box"],
                "fn_index": upload_fn,
                "session_hash": session,
                "event_data": None,
                "trigger_id": None,
            },
        )
        assert posted.status_code == 200, posted.text
        with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if "process_completed" in line:
                    assert '"success":true' in line.replace(" ", ""), line
                    break
        states = list(demo.state_holder.session_data[session].state_data.values())
        person = next(value for value in states if type(value).__name__ == "PersonState")
        images = [value for value in vars(person).values() if isinstance(value, Image.Image)]
        assert [image.size for image in images] == [(384, 512)]  # the frame; the photo stays on disk
        assert Path(person.photo_path).is_file()
        heartbeat.close()
    deadline = time.monotonic() + 30
    while demo.state_holder.session_data[session].state_data and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not demo.state_holder.session_data[session].state_data  # gone within the 1 s TTL + the sweep


# --------------------------------------------------------------------------------------------------
# 5. Stated limits


def test_photos_above_the_editing_limit_are_scaled_and_the_result_says_so(strict_app):
    url, _, _ = strict_app
    client = Client(url, verbose=False, download_files=False)
    *_, info = client.predict(handle_file(as_upload(ASTRONAUT)), "upper_body", "box", api_name="/prepare")
    assert info["notes"][0].startswith("The photo is 512x512 (0.3 MP): it was scaled to 447x447 for editing")
    gallery, _, recipe = client.predict(*edit_data(handle_file(as_upload(ASTRONAUT))), api_name="/edit")
    assert Image.open(gallery[0]["image"]["path"]).size == (447, 447)
    assert json.loads(Path(recipe["path"]).read_text())["notes"][0].startswith("The photo is 512x512")
    big = Image.new("RGB", (1000, 700))
    scaled, note = fit_megapixels(big, 0.35)
    assert scaled.size == (707, 494) and scaled.width * scaled.height <= 350_000 and "1000x700" in note
    assert fit_megapixels(big, 1.0) == (big, None)


def test_an_upload_of_more_files_than_the_limit_is_refused(strict_app):
    url, _, _ = strict_app
    files = [("files", (f"{i}.png", b"png", "image/png")) for i in range(3)]
    with httpx.Client(base_url=url, timeout=30) as http:
        refused = http.post("/gradio_api/upload", files=files)
        taken = http.post("/gradio_api/upload", files=files[:2])
    assert refused.status_code == 400 and refused.text == "Too many files. Maximum number of files is 2."
    assert taken.status_code == 200 and len(taken.json()) == 2


def test_descriptions_are_capped_and_control_characters_never_reach_the_recipe(studio_url):
    client = Client(studio_url, verbose=False, download_files=False)
    with pytest.raises(Exception, match=r"the description is 10,001 characters long: describe the garment in at most"):
        client.predict("r" * 10_001, "dresses", 3, api_name="/search")
    _, _, recipe = client.predict(
        handle_file(as_upload(ASTRONAUT)),
        "upper_body",
        "",
        None,
        None,
        "red\x00 striped\x1b[31m\nshirt\u202e",
        4,
        1,
        7.5,
        "ddim",
        1,
        True,
        api_name="/edit",
    )
    saved = json.loads(Path(recipe["path"]).read_text())
    assert saved["description"] == "red striped[31m shirt"
    text = Path(recipe["path"]).read_text()
    assert str(REPO_ROOT) not in text and "/tmp" not in text and saved["catalog"] == "examples/catalog"


def test_output_folders_are_handed_out_without_scanning_and_capped_oldest_first(tmp_path, monkeypatch):
    outputs = Outputs(tmp_path / "out", max_age_s=3600, max_bytes=2500, clean_every_s=3600)
    reads = []
    real_read = Outputs._read_folders
    monkeypatch.setattr(Outputs, "_read_folders", lambda self: reads.append(1) or real_read(self))
    for number in range(5):
        with outputs.session_folder(f"s{number}") as folder:
            (folder / "result.png").write_bytes(b"x" * 1000)
        os.utime(folder, (1_000_000 + number, time.time() - 100 + number))  # s0 oldest
    assert reads == []  # five folders handed out, none scanned
    with outputs.session_folder("s1"):  # in use: kept although it is among the oldest
        deleted = outputs.clean()
    assert [path.name for path in deleted] == ["s0", "s2", "s3"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s1", "s4"] and outputs.last_total_bytes == 2000


# --------------------------------------------------------------------------------------------------
# 6. Messages and logs


def test_a_refusal_is_one_log_line_and_no_traceback(caplog):
    caplog.set_level(logging.INFO, logger="fashion_rag")
    with pytest.raises(gr.Error) as raised, user_errors_as_gradio():
        raise InputError("k=0 is out of range\nsecond line")
    assert raised.value.print_exception is False
    lines = [r for r in caplog.records if r.name == "fashion_rag.studio.errors"]
    assert len(lines) == 1 and lines[0].getMessage() == "refused: k=0 is out of range second line"
    failed = r"the studio failed on this request \(ZeroDivisionError\)"
    with pytest.raises(gr.Error, match=failed), user_errors_as_gradio():
        _ = 1 / 0


def test_out_of_range_gallery_clicks_change_nothing(tiny_editor):
    from app import build_demo

    demo = build_demo(tiny_editor)
    fns = {fn.name: fn.fn for fn in demo.fns.values()}
    event = gr.SelectData(None, {"index": 7, "value": None, "selected": True})
    restored = fns["on_history"]([], False, None, None, "box", [], 6, event)  # history, show, photo, person, …
    assert len(restored) == 27 and all(value == gr.skip() for value in restored)
    assert fns["on_sample"](None, False, event) == (gr.skip(), gr.skip())
    assert fns["on_pick"](["top-001"], ["top-001"], event) == ["top-001"]
    side = fns["on_side_pick"]([], [], False, None, None, "box", [], 6, event)  # studio/compare.py: entries, …
    assert len(side) == 27 and all(value == gr.skip() for value in side)


def test_admission_counts_requests_by_lane(strict_app):
    _, demo, admission = strict_app
    assert isinstance(admission, Admission) and admission.queue is demo._queue
    assert {fn.concurrency_id for fn in demo.fns.values() if fn.api_name in ("search", "prepare", "edit")} == {
        "search",
        "prepare",
        "gpu",
    }


def test_batch_compare_and_outfit_count_against_the_same_per_address_edit_share(strict_app, slow_edits):
    """The newer GPU endpoints take the edit lane's place: with 3 edits of an address queued or running (its
    share), a /batch, /compare or /outfit from that address is refused as busy, never queued."""
    url, _, admission = strict_app
    photo = handle_file(as_upload(ASTRONAUT)) | {"meta": {"_type": "gradio.FileData"}}
    base = url.rstrip("/")
    queued = [httpx.post(f"{base}/gradio_api/call/edit", json={"data": edit_data(photo)}, timeout=30) for _ in range(3)]
    assert [answer.status_code for answer in queued] == [200] * 3
    others = {
        "batch": [[photo], "upper_body", "top-001", False, "", 3, 1, 7.5, "ddim", True],
        "compare": [photo, "upper_body", "top-001,top-002", None, 3, 1, 7.5, "ddim", True],
        "outfit": [photo, "top-001", "bottom-001", 3, 1, 7.5, "ddim", True],
    }
    before = admission.refused["gpu-per-address"]
    for api, data in others.items():
        answer = httpx.post(f"{base}/gradio_api/call/{api}", json={"data": data}, timeout=30)
        assert answer.status_code == 422 and "from your address are already waiting or running" in answer.text, api
    assert admission.refused["gpu-per-address"] == before + 3
    for answer in queued:  # listened to, so that none is dropped as unheard; all three finish
        events = httpx.get(f"{base}/gradio_api/call/edit/{answer.json()['event_id']}", timeout=120).text
        assert "event: complete" in events, events[:300]


def test_the_server_hands_freed_heap_back_once_when_it_falls_idle_never_while_busy(strict_app, slow_edits, monkeypatch):
    """Free pages that requests left resident go back to the system within a second of the queue falling
    idle (studio/admission.py: hand_back_when_idle), once per busy spell, never while an edit runs."""
    from fashion_rag.studio import admission as admission_module

    url, _, admission = strict_app
    calls = []  # (when, was the queue idle then)
    monkeypatch.setattr(
        admission_module, "hand_back_freed_heap", lambda: calls.append((time.monotonic(), admission.idle()))
    )
    time.sleep(3 * admission_module.WATCH_EVERY_S)  # what earlier tests left to hand back happens now
    calls.clear()
    visitor = Client(url, verbose=False, download_files=False)
    job = visitor.submit(*edit_data(handle_file(as_upload(ASTRONAUT))), api_name="/edit")
    while not slow_edits:  # the edit holds the lane for 1.5 s from here
        time.sleep(0.05)
    time.sleep(1.2)
    assert calls == []  # busy: nothing handed back mid-edit
    job.result()
    finished = time.monotonic()
    time.sleep(3 * admission_module.WATCH_EVERY_S)
    assert len(calls) == 1, calls  # once for the spell, not again on each idle check
    when, idle = calls[0]
    assert idle and slow_edits[0] + HOLD_S["now"] < when < finished + 2 * admission_module.WATCH_EVERY_S
