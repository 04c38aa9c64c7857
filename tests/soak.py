"""The soak of issue 14, as a module so that it can also run by hand with another count:

    python -m tests.soak [REQUESTS]      (prints warm-up and after-soak server memory)

Starts the studio as its own process (`app.py` on the tiny bundle, loopback, a free port), warms it up,
then sends REQUESTS mixed requests (72% search, 18% prepare, 10% edit with 1 step) from 8 gradio_client
clients and reads the server's resident memory before and after, both times idle (SETTLE_S).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
from gradio_client import Client, handle_file

from fashion_rag.studio.admission import WATCH_EVERY_S

from .sequential_client import predict

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
ASTRONAUT = REPO / "examples" / "people" / "astronaut.png"
SEARCHES = (("red dress", "dresses"), ("striped shirt", "upper_body"), ("blue jeans", "lower_body"),
            ("floral midi dress", "dresses"), ("black blazer", "upper_body"))  # fmt: skip
CLIENTS = 8
WARM_UP = 120  # requests before the first measurement: lazily built state and per-thread buffers exist
# Both readings are taken idle, after the server has handed its freed heap back (within WATCH_EVERY_S of
# its queue falling idle: studio/admission.py), so they count what it holds, not the free pages its last
# requests happened to leave resident (a swing of ~50 MB: docs/RELIABILITY.md, "Soak").
SETTLE_S = 3 * WATCH_EVERY_S


def kind_of(number: int) -> str:
    """The mix, deterministic: of every 50 requests, 5 edits, 9 prepares, 36 searches."""
    slot = number % 50
    return "edit" if slot % 12 == 0 else "prepare" if slot % 5 == 1 else "search"


def one_request(client: Client, number: int) -> str:
    kind = kind_of(number)
    if kind == "search":
        text, category = SEARCHES[number % len(SEARCHES)]
        hits = predict(client, text, category, 3, api_name="/search")["hits"]
        assert len(hits) == 3 and {hit["category"] for hit in hits} == {category}
    elif kind == "prepare":
        *_, info = predict(client, handle_file(str(ASTRONAUT)), "upper_body", "box", api_name="/prepare")
        assert len(info["keypoints"]) == 18
    else:
        gallery, seed, _ = predict(
            client,
            handle_file(str(ASTRONAUT)),
            "upper_body",
            "top-001",
            None,
            None,
            "",
            number,
            1,
            7.5,
            "ddim",
            1,
            True,
            api_name="/edit",
        )
        assert seed == number and len(gallery) == 1
    return kind


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(bundle: Path, index: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop(
        "MALLOC_ARENA_MAX", None
    )  # what is measured is the app's own setting (studio/memory.py: limit_malloc_arenas)
    with open(work / "server.log", "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "app.py",
                "--models",
                str(bundle),
                "--index",
                str(index),
                "--output-dir",
                str(work / "outputs"),
                "--device",
                "cpu",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the studio exited: {(work / 'server.log').read_text()[-2000:]}")
        try:  # the page answers first; the models load after it (issue 21), then the log says so
            if (
                "models loaded" in (work / "server.log").read_text()
                and httpx.get(url + "config", timeout=2).status_code == 200
            ):
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.kill()
    raise RuntimeError("the studio did not start within 240 s")


def rss_mb(process: subprocess.Popen) -> float:
    return psutil.Process(process.pid).memory_info().rss / 2**20


def in_lanes(clients: list[Client], numbers: range, request: Callable[[Client, int], T]) -> list[T]:
    """`request(client, number)` for each of `numbers`, client k sending every len(clients)-th number in a
    thread of its own, one at a time (a client shared by threads races with the server's closing of its
    stream: tests/sequential_client.py)."""
    lanes = [numbers[lane :: len(clients)] for lane in range(len(clients))]
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [
            pool.submit(lambda c, ns: [request(c, n) for n in ns], client, lane)
            for client, lane in zip(clients, lanes, strict=True)
        ]
        return [answer for future in futures for answer in future.result(timeout=600)]


def send(clients: list[Client], numbers: range) -> list[str]:
    return in_lanes(clients, numbers, one_request)


def soak(bundle: Path, index: Path, work: Path, requests: int, block: int = 100) -> dict:
    """Warm up, then send `requests` in blocks of `block`, reading the server's RSS after each block (the
    series shows whether memory levels off or keeps climbing)."""
    process, url = start_server(bundle, index, work)
    clients = [Client(url, verbose=False, analytics_enabled=False) for _ in range(CLIENTS)]
    try:
        send(clients, range(WARM_UP))
        time.sleep(SETTLE_S)
        before = rss_mb(process)
        series, kinds = [], []
        started = time.perf_counter()
        for start in range(WARM_UP, WARM_UP + requests, block):
            kinds += send(clients, range(start, min(start + block, WARM_UP + requests)))
            time.sleep(SETTLE_S)
            series.append(round(rss_mb(process) - before, 1))
        wall = time.perf_counter() - started - SETTLE_S * len(series)
        after = rss_mb(process)
    finally:
        for client in clients:
            client.close()
        process.terminate()
        process.wait(timeout=30)
    return {
        "requests": len(kinds),
        "kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
        "wall_s": wall,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "growth_mb": after - before,
        f"growth_every_{block}_mb": series,
    }


if __name__ == "__main__":
    import json
    import tempfile

    from fashion_rag.catalog.catalog import load_catalog
    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.catalog.index import build_index
    from fashion_rag.tiny_bundle import make_tiny_bundle
    from fashion_rag.weights import ModelSources

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    bundle = make_tiny_bundle(work / "tiny", seed=0)
    encoder = RetrievalEncoder.from_sources(ModelSources(str(bundle)), device="cpu")
    build_index(load_catalog(REPO / "examples" / "catalog"), encoder, work / "index")
    print(json.dumps(soak(bundle, work / "index", work, count), indent=1))
