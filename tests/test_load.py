"""Issue 8, promise 2: load. Marked slow: `make test-slow` (CI runs it too), not `make test`.

With the tiny bundle, 20 concurrent gradio_client clients each send 5 mixed requests (prepare, search,
edit with 1-2 steps) to the studio running on loopback: every request is answered with a correct
result, GPU jobs run one at a time, and the process's memory after the run stays within a stated bound
of its memory before it. The run is done twice: the first shows the one-time cost of serving at this
concurrency, the second that serving again costs nothing more (no per-request leak). Bounded: 3 + 200
requests, a time limit for each request and for each run.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import psutil
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from fashion_rag.generation.pipeline import FashionRAGPipeline

from .conftest import ASTRONAUT
from .sequential_client import predict

pytestmark = pytest.mark.slow

CLIENTS = 20
PLAN = ("search", "prepare", "edit", "search", "edit")  # 5 requests per client, rotated per client
REQUEST_TIMEOUT_S = 300  # one request, queueing included
RUN_TIMEOUT_S = 540  # the whole run (pytest's own limit is 600 s)
# Memory bounds, on the resident set after gc and glibc's malloc_trim (which hands freed heap back to the
# system, so that what is measured is memory in use, not allocator free lists; without the trim the RSS
# of identical runs wanders by +0..+130 MB from arena fragmentation alone). Measured on the shared 2-core
# dev box (docs/RELIABILITY.md has the runs):
# - the first run, from one warm-up request of each kind: +175 to +225 MB, once: per-thread buffers of
#   torch/oneDNN and mediapipe in the server's worker threads and the 20 clients' own connections, reached
#   at this concurrency (4 CPU jobs + 1 generation + 20 clients). Bound: 400 MB.
# - a second identical run: -45 to +111 MB before issue 14 (+70 and +111 in two fresh-clone CI runs). The
#   cause was glibc's per-thread malloc arenas: each of Gradio's worker threads gets its own, and what
#   malloc_trim cannot hand back fragments across them (the soak below grew +143 MB over 300 requests with
#   default arenas, +8 MB with 2). conftest caps the arenas for the test process as `python app.py` does
#   (studio/memory.py: limit_malloc_arenas). With the cap, the fresh-clone CI run of 2026-12-02 gave +76 MB for the
#   first run and +14 MB for the second, so the second-run bound is back at its original 100 MB; the soak
#   below holds the 50 MB bound on the server process.
FIRST_RUN_BOUND_MB = 400
NEXT_RUN_BOUND_MB = 100
SEARCHES = ("red dress", "striped shirt", "blue jeans", "floral midi dress", "black blazer")
CATEGORY_OF = {"red dress": "dresses", "striped shirt": "upper_body", "blue jeans": "lower_body",
               "floral midi dress": "dresses", "black blazer": "upper_body"}  # fmt: skip


class InFlight:
    """Counts concurrent calls of a function and remembers the peak."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, fn):
        def wrapped(*args, **kwargs):
            with self._lock:
                self.now += 1
                self.calls += 1
                self.peak = max(self.peak, self.now)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.now -= 1

        return wrapped


def one_request(client: Client, kind: str, number: int) -> str:
    """Send one request and check its answer; returns the kind for the tally."""
    if kind == "search":
        text = SEARCHES[number % len(SEARCHES)]
        payload = predict(client, text, CATEGORY_OF[text], 3, api_name="/search")
        assert len(payload["hits"]) == 3 and {hit["category"] for hit in payload["hits"]} == {CATEGORY_OF[text]}
    elif kind == "prepare":
        frame, mask, _, _, info = predict(client, handle_file(str(ASTRONAUT)), "upper_body", "box", api_name="/prepare")
        assert Image.open(frame).size == (384, 512) and len(info["keypoints"]) == 18
        assert 0.05 < (np.asarray(Image.open(mask).convert("L")) > 127).mean() < 0.8
    else:
        seed, steps = 1000 + number, 1 + number % 2
        gallery, used_seed, _ = predict(
            client,
            handle_file(str(ASTRONAUT)),
            "upper_body",
            "top-001",
            None,
            None,
            "",
            seed,
            steps,
            7.5,
            "ddim",
            1,
            True,
            api_name="/edit",
        )
        assert used_seed == seed and len(gallery) == 1
        assert Image.open(gallery[0]["image"]).size == Image.open(ASTRONAUT).size
    return kind


def new_client(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": REQUEST_TIMEOUT_S})


def run_client(url: str, index: int) -> list[str]:
    client = new_client(url)
    try:
        plan = PLAN[index % len(PLAN) :] + PLAN[: index % len(PLAN)]
        return [one_request(client, kind, index * len(PLAN) + step) for step, kind in enumerate(plan)]
    finally:
        client.close()


def rss_mb() -> float:
    """Resident memory in MB after a garbage collection and, on glibc, malloc_trim."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: the bound then also covers allocator free lists
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss / 2**20


def run_clients(url: str, count: int) -> list[str]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(run_client, url, index) for index in range(count)]
        return [kind for future in futures for kind in future.result(timeout=RUN_TIMEOUT_S)]


@pytest.mark.timeout(600)
def test_twenty_clients_five_mixed_requests_each(studio_url, tiny_editor, monkeypatch, capsys):
    assert urlparse(studio_url).hostname == "127.0.0.1"  # loopback only
    edits, pipeline_calls = InFlight(), InFlight()
    monkeypatch.setattr(tiny_editor, "edit", edits.wrap(tiny_editor.edit))
    monkeypatch.setattr(FashionRAGPipeline, "__call__", pipeline_calls.wrap(FashionRAGPipeline.__call__))

    # Warm-up: one request of each kind, so that lazily built state exists before memory is measured.
    warm = new_client(studio_url)
    for number, kind in enumerate(("search", "prepare", "edit")):
        one_request(warm, kind, number)
    warm.close()
    memory = [rss_mb()]
    walls = []
    for _ in range(2):
        edits_before = edits.calls
        started = time.perf_counter()
        kinds = run_clients(studio_url, CLIENTS)
        walls.append(time.perf_counter() - started)
        memory.append(rss_mb())
        assert len(kinds) == CLIENTS * len(PLAN) == 100  # every request answered, every answer checked
        assert {kind: kinds.count(kind) for kind in set(kinds)} == {"search": 40, "prepare": 20, "edit": 40}
        assert edits.calls - edits_before == 40
        assert walls[-1] < RUN_TIMEOUT_S
    assert edits.peak == 1 and pipeline_calls.peak == 1  # one GPU job at a time, through 80 edits
    first, second = memory[1] - memory[0], memory[2] - memory[1]
    assert first < FIRST_RUN_BOUND_MB, f"the first run added {first:.0f} MB (from {memory[0]:.0f} MB)"
    assert second < NEXT_RUN_BOUND_MB, f"the second run added {second:.0f} MB (from {memory[1]:.0f} MB)"
    with capsys.disabled():
        print(
            f"\nload: 2 x {len(kinds)} requests from {CLIENTS} clients in {walls[0]:.1f} s and {walls[1]:.1f} s; "
            f"peak edits in flight {edits.peak}, pipeline calls {pipeline_calls.peak}; RSS (trimmed) "
            f"{memory[0]:.0f} -> {memory[1]:.0f} -> {memory[2]:.0f} MB ({first:+.0f} MB, bound {FIRST_RUN_BOUND_MB}; "
            f"{second:+.0f} MB, bound {NEXT_RUN_BOUND_MB})"
        )


# --------------------------------------------------------------------------------------------------
# Issue 14: a soak of 1,000 mixed requests against `python app.py` in its own process

SOAK_REQUESTS = 1000
SOAK_BOUND_MB = 50  # growth of the server's resident memory over the soak, after a 120-request warm-up


# In `make test-slow`, and alone by `make soak`. The server hands an edit's freed heap back to the system
# (studio/memory.py): without that, readings every 100 requests swung by ~70 MB with no trend (one run
# ended at +44.8 MB); with it by ~35 MB, so the bound measures growth, not where the last edit landed.
@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_soak_of_a_thousand_requests_grows_the_server_by_at_most_50_mb(tiny_bundle, tiny_editor, tmp_path, capsys):
    from .soak import soak

    report = soak(tiny_bundle, tiny_editor.settings.resolved_index_dir, tmp_path, SOAK_REQUESTS)
    assert report["requests"] == SOAK_REQUESTS  # every answer checked in one_request
    assert report["kinds"] == {"edit": 100, "prepare": 180, "search": 720}
    with capsys.disabled():
        print(
            f"\nsoak: {SOAK_REQUESTS} requests in {report['wall_s']:.0f} s; server RSS {report['rss_before_mb']:.0f}"
            f" -> {report['rss_after_mb']:.0f} MB ({report['growth_mb']:+.1f} MB, bound {SOAK_BOUND_MB}); every 100"
            f" requests: {report['growth_every_100_mb']}"
        )
    assert report["growth_mb"] <= SOAK_BOUND_MB, report
