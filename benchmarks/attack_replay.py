"""Replay the public-API attacks of issue 20 against a running studio and print the goals' figures.

    python benchmarks/attack_replay.py [--json OUT.json] [--quick]

Starts `python app.py` with the tiny random-weight bundle on a free loopback port (one server per
scenario, each with the limits it needs through FASHION_RAG_LIMITS), sends only loopback traffic,
bounded in count and time, and stops every server it started. Scenarios and their goals:

| scenario | goal |
|---|---|
| files   | 0 server files readable through any file input (with/without `meta`, plain string, `..`, link); one message for existing and missing paths |
| numbers | 0 blank errors for NaN, ±Infinity, 10**400, "abc", lists, "false" in every number and flag |
| flood   | one client posting 200 edits: its extras answered "busy"; a second visitor's edit waits at most one edit |
| memory  | 100 page sessions with a 12-megapixel photo: RSS grows <= 1 GB, and ends within 100 MB of the start once their state expired |
| prepares | 100 concurrent 39-megapixel prepares (100 visitors): a search answers in <= 1 s (worst of the searches sent meanwhile) |
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the fashion_rag package, when run as a script
ASTRONAUT = REPO / "examples" / "people" / "astronaut.png"
# The checkout whose app.py is attacked (--repo: an older one, to compare) and the log line that says it
# is ready (--ready-line: "Running on local URL" for releases that loaded the models before the page).
TARGET = {"repo": REPO, "ready": "models loaded"}
FILE_DATA = {"_type": "gradio.FileData"}


# --------------------------------------------------------------------------------------------------
# A studio to attack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def studio(bundle: Path, work: Path, limits: str = ""):
    """`python app.py` of TARGET["repo"] on loopback with the tiny bundle; yields (base URL, psutil.Process)."""
    port = free_port()
    env = {**os.environ, "FASHION_RAG_LIMITS": limits, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "app.py",
        "--models",
        str(bundle),
        "--port",
        str(port),
        "--device",
        "cpu",
        "--output-dir",
        str(work / "outputs"),
        "--index",
        str(work / "index"),
    ]
    log = open(work / f"server-{port}.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        command, cwd=TARGET["repo"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while TARGET["ready"] not in Path(log.name).read_text():  # the page is up before the models
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the studio did not start: see {log.name}")
            time.sleep(0.5)
        yield url, psutil.Process(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def upload(url: str, path: Path) -> dict:
    """Upload a file; the value names it for one call (Gradio moves an upload into its cache when used)."""
    with httpx.Client(base_url=url, timeout=120) as http:
        name = f"{uuid.uuid4().hex[:8]}-{path.name}"  # same bytes, own file: uploads are stored by content
        served = http.post("/gradio_api/upload", files={"files": (name, path.read_bytes(), "image/jpeg")})
    stored = Path(served.json()[0])
    deadline = time.monotonic() + 30
    while not stored.is_file() and time.monotonic() < deadline:  # Gradio moves it there after answering
        time.sleep(0.1)
    return {"path": str(stored), "meta": FILE_DATA}


def call(url: str, api: str, data: list, session: str | None = None, timeout: float = 600) -> tuple[int, str]:
    """POST /gradio_api/call/<api> (raw JSON, NaN allowed), then read its stream: (POST status, text)."""
    body = json.dumps({"data": data} | ({"session_hash": session} if session else {}))
    with httpx.Client(base_url=url, timeout=timeout) as http:
        posted = http.post(f"/gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
        if posted.status_code != 200:
            return posted.status_code, posted.text
        return 200, http.get(f"/gradio_api/call/{api}/{posted.json()['event_id']}").text


def error_message(status: int, text: str) -> str | None:
    """The error a call answered ('' for a blank one), None when it succeeded."""
    if status != 200:
        try:
            detail = json.loads(text).get("detail")
        except ValueError:
            return text
        return detail[0]["message"] if isinstance(detail, list) else str(detail or "")
    if not text.startswith("event: error"):
        return None
    data = json.loads(text.split("data:", 1)[1].strip())
    return (data.get("error") if isinstance(data, dict) else data) or ""


def edit_data(photo, steps: int = 2, **changes) -> list:
    data = [photo, "upper_body", "top-001", None, None, "", 7, steps, 7.5, "ddim", 1, True]
    for slot, value in changes.items():
        data[int(slot.lstrip("_"))] = value
    return data


def scaled_photo(work: Path, megapixels: float) -> Path:
    """The astronaut on a grey canvas of about `megapixels` (4:3), as a JPEG."""
    width = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = int(width * 3 / 4)
    canvas = Image.new("RGB", (width, height), (128, 128, 128))
    person = Image.open(ASTRONAUT).convert("RGB").resize((height, height), Image.Resampling.BICUBIC)
    canvas.paste(person, ((width - height) // 2, 0))
    path = work / f"person-{megapixels:g}mp.jpg"
    canvas.save(path, quality=85)
    return path


# --------------------------------------------------------------------------------------------------
# Scenarios


def files_scenario(url: str, work: Path) -> dict:
    secret = work / "server-secret.png"
    Image.open(ASTRONAUT).save(secret)
    link = Path(tempfile.gettempdir()) / "gradio" / f"replay-link-{os.getpid()}.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to("/etc/passwd")
    targets = {
        "passwd": "/etc/passwd",
        "image": str(secret),
        "missing": str(work / "nothing.png"),
        "dotdot": f"{tempfile.gettempdir()}/gradio/../../{secret.relative_to('/')}",
        "link": str(link),
    }
    shapes = {"meta": lambda p: {"path": p, "meta": FILE_DATA}, "no-meta": lambda p: {"path": p}, "string": str}
    readable, messages, probes = 0, {}, 0
    for api, slot in (("prepare", 0), ("edit", 0), ("edit", 3), ("edit", 4)):
        for shape, make in shapes.items():
            for path in targets.values():
                data = [None, "upper_body", "box"] if api == "prepare" else edit_data(upload(url, ASTRONAUT))
                data[slot] = make(path)
                status, text = call(url, api, data)
                probes += 1
                message = error_message(status, text)
                readable += message is None or "root:" in text or "event: complete" in text
                messages.setdefault((api, slot, shape), set()).add(message)
    oracles = sum(1 for answers in messages.values() if len(answers) > 1)
    return {"probes": probes, "server_files_readable": readable, "paths_told_apart": oracles}


def numbers_scenario(url: str) -> dict:
    bad = [float("nan"), float("inf"), float("-inf"), 10**400, "abc", [1, 2], "false", {"x": 1}]
    blank = probes = 0
    for value in bad:
        for api, slot in (("edit", 6), ("edit", 7), ("edit", 8), ("edit", 10), ("edit", 11), ("search", 2)):
            data = ["red dress", "dresses", 3] if api == "search" else edit_data(upload(url, ASTRONAUT))
            data[slot] = value
            status, text = call(url, api, data)
            probes += 1
            message = error_message(status, text)
            blank += message is not None and not message.strip()
    return {"probes": probes, "blank_errors": blank}


def flood_scenario(url: str, edits: int) -> dict:
    started = time.monotonic()
    call(url, "edit", edit_data(upload(url, ASTRONAUT), steps=20), session="alone")
    lone_s = time.monotonic() - started
    answers: list[str] = []

    def post(number: int) -> None:
        body = {"data": edit_data(upload(url, ASTRONAUT), steps=20), "session_hash": "flooder"}
        posted = httpx.post(f"{url}/gradio_api/call/edit", json=body, timeout=60)
        answers.append("busy" if "busy" in posted.text else str(posted.status_code))
        if posted.status_code == 200:  # the flooder listens to what it got, as a client would
            threading.Thread(
                target=httpx.get,
                args=(f"{url}/gradio_api/call/edit/{posted.json()['event_id']}",),
                kwargs={"timeout": 600},
                daemon=True,
            ).start()

    flood_start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, range(edits)))
    flood_s = time.monotonic() - flood_start
    started = time.monotonic()
    status, text = call(url, "edit", edit_data(upload(url, ASTRONAUT), steps=20), session="visitor")
    visitor_s = time.monotonic() - started
    return {
        "flood_posts": edits,
        "flood_seconds": round(flood_s, 2),
        "flood_busy": answers.count("busy"),
        "flood_admitted": answers.count("200"),
        "lone_edit_s": round(lone_s, 2),
        "visitor_edit_s": round(visitor_s, 2),
        "visitor_ok": error_message(status, text) is None,
        "visitor_waited_edits": round(visitor_s / lone_s - 1, 2),
    }


def page_session(url: str, fn_index: int, photo: dict, session: str) -> bool:
    """One browser tab: heartbeat open, the photo uploaded through the page's own event, then closed."""
    with httpx.Client(base_url=url, timeout=600) as http, http.stream("GET", f"/gradio_api/heartbeat/{session}"):
        body = {
            "data": [photo, "upper_body", "box"],
            "fn_index": fn_index,
            "session_hash": session,
            "event_data": None,
            "trigger_id": None,
        }
        if http.post("/gradio_api/queue/join", json=body).status_code != 200:
            return False
        with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if "process_completed" in line:
                    return '"success":true' in line.replace(" ", "")
    return False


def memory_scenario(url: str, server: psutil.Process, work: Path, sessions: int, ttl_s: int) -> dict:
    config = httpx.get(f"{url}/config", timeout=30).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "on_photo")
    photo = scaled_photo(work, 12)
    before = server.memory_info().rss
    with ThreadPoolExecutor(2) as pool:
        done = list(
            pool.map(lambda n: page_session(url, fn_index, upload(url, photo), f"tab{n:04d}x"), range(sessions))
        )
    time.sleep(2)
    held = server.memory_info().rss
    time.sleep(ttl_s + 5)  # the closed tabs' state expires; Gradio sweeps every second
    httpx.post(f"{url}/gradio_api/call/search", json={"data": ["red dress", "dresses", 1]}, timeout=30)
    after = server.memory_info().rss
    mb = 2**20
    return {
        "sessions": sessions,
        "sessions_ok": sum(done),
        "rss_start_mb": round(before / mb),
        "growth_with_sessions_mb": round((held - before) / mb),
        "after_expiry_vs_start_mb": round((after - before) / mb),
    }


def prepares_scenario(url: str, work: Path, count: int) -> dict:
    photo = scaled_photo(work, 39)
    stop = threading.Event()
    latencies: list[float] = []

    def search_meanwhile() -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, text = call(url, "search", ["red dress", "dresses", 3], timeout=60)
            if error_message(status, text) is None:
                latencies.append(time.monotonic() - started)
            time.sleep(0.5)

    searcher = threading.Thread(target=search_meanwhile)
    with ThreadPoolExecutor(count) as pool:
        photos = [upload(url, photo) for _ in range(count)]
        futures = [
            pool.submit(call, url, "prepare", [photos[n], "upper_body", "box"], f"visitor{n}") for n in range(count)
        ]
        time.sleep(1)
        searcher.start()
        results = [future.result() for future in futures]
    stop.set()
    searcher.join()
    ok = sum(1 for status, text in results if error_message(status, text) is None)
    latencies.sort()
    return {
        "prepares": count,
        "prepares_ok": ok,
        "searches": len(latencies),
        "search_p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
        "search_p95_s": round(latencies[int(len(latencies) * 0.95)], 3) if latencies else None,
        "search_worst_s": round(latencies[-1], 3) if latencies else None,
    }


# --------------------------------------------------------------------------------------------------


def say(name: str, figures: dict) -> dict:
    print(f"{name}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="smaller counts (for a smoke run)")
    parser.add_argument("--repo", type=Path, default=REPO, help="attack the app.py of this checkout")
    parser.add_argument(
        "--only",
        nargs="+",
        default=["files", "numbers", "flood", "memory", "prepares"],
        help="run only these scenarios",
    )
    parser.add_argument("--ready-line", default=TARGET["ready"], help="the server log line that says it is ready")
    args = parser.parse_args()
    TARGET.update(repo=args.repo.resolve(), ready=args.ready_line)
    sessions, edits, prepares = (10, 40, 10) if args.quick else (100, 200, 100)
    from fashion_rag.tiny_bundle import make_tiny_bundle

    figures: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="attack-replay-") as folder:
        work = Path(folder)
        bundle = make_tiny_bundle(work / "bundle", seed=0)
        if {"files", "numbers", "flood"} & set(args.only):
            with studio(bundle, work) as (url, _):
                if "files" in args.only:
                    figures["files"] = say("files", files_scenario(url, work))
                if "numbers" in args.only:
                    figures["numbers"] = say("numbers", numbers_scenario(url))
                if "flood" in args.only:
                    figures["flood"] = say("flood", flood_scenario(url, edits))
        if "memory" in args.only:  # the trim thread runs every 60 s: wait a little longer than that
            with studio(bundle, work, "closed_session_ttl_s=20") as (url, server):
                figures["memory"] = say("memory", memory_scenario(url, server, work, sessions, ttl_s=70))
        if "prepares" in args.only:
            with studio(bundle, work, f"prepares_per_address={prepares},queue_size={prepares + 50}") as (url, _):
                figures["prepares"] = say("prepares", prepares_scenario(url, work, prepares))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
