"""Serve mode against the local mode, with the tiny bundle on this machine's CPUs (issue 22's goals).

    python benchmarks/bench_serve_cpu.py [--edits 10] [--clients 8] [--fault-edits 64] [--steps 1]

Everything goes through the page's public API with gradio_client (one Client per thread), as a user sees it:

1. overhead: p50 of an /edit request, serve mode with 1 worker minus the local mode (`python app.py` in this
   process), both with one torch thread, `--edits` each after warm-up, alternating (the box is shared);
2. throughput: `--clients` clients at once, 2 edits each, on 1 worker and then on 2 (edits per second);
3. faults: `--fault-edits` edits from `--clients` clients on 2 workers, one worker's process killed when half
   are answered: errors and unanswered requests;
4. search while busy: /search p95 from one more client while the clients of 3 keep the workers busy.

Starts its own Ray cluster (num_cpus=2) and stops it at the end. Prints a markdown table with the machine.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import machine_description  # noqa: E402

ASTRONAUT = REPO / "examples" / "people" / "astronaut.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_edits(url: str, count: int, steps: int, seed0: int) -> list[float]:
    """Seconds per /edit request from one client, one after another."""
    from gradio_client import Client, handle_file

    from tests.sequential_client import predict

    client, times = Client(url, verbose=False, analytics_enabled=False), []
    for n in range(count):
        start = time.perf_counter()
        predict(client, handle_file(str(ASTRONAUT)), "upper_body", "", None, None, "red shirt", seed0 + n, steps, 7.5,
                "ddim", 1, True, api_name="/edit")  # fmt: skip
        times.append(time.perf_counter() - start)
    return times


def crowd(url: str, clients: int, per_client: int, steps: int, on_answer=None) -> tuple[float, int, int]:
    """`clients` threads with a Client each, `per_client` edits each: (wall s, answered, errors)."""
    from gradio_client import Client, handle_file

    from tests.sequential_client import predict

    answered, errors, lock = [0], [0], threading.Lock()

    def one(index: int) -> None:
        client = Client(url, verbose=False, analytics_enabled=False)
        for n in range(per_client):
            try:
                predict(client, handle_file(str(ASTRONAUT)), "upper_body", "", None, None, "red shirt",
                        1000 * index + n, steps, 7.5, "ddim", 1, True, api_name="/edit")  # fmt: skip
                ok = True
            except Exception as error:  # noqa: BLE001 - counted and printed: the figure is the error count
                print(f"error: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
                ok = False
            with lock:
                answered[0] += ok
                errors[0] += not ok
                if on_answer:
                    on_answer(answered[0] + errors[0])

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, answered[0], errors[0]


def searches_while(url: str, busy: threading.Event) -> list[float]:
    from gradio_client import Client

    from tests.sequential_client import predict

    client, times = Client(url, verbose=False, analytics_enabled=False), []
    while busy.is_set():
        start = time.perf_counter()
        predict(client, "red striped shirt", "upper_body", 6, api_name="/search")
        times.append(time.perf_counter() - start)
        time.sleep(0.2)
    return times


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def local_studio(steps: int):
    """The local mode in this process (one torch thread, as each serve worker): (editor settings, its URL)."""
    import torch

    from app import build_demo
    from fashion_rag.config import app_from_env, runtime_from_env
    from fashion_rag.editor import Editor
    from fashion_rag.tiny_bundle import make_tiny_bundle

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="fashion-rag-serve-"))
    runtime = runtime_from_env(environ={}, models=str(make_tiny_bundle(work / "tiny")), device="cpu")
    settings = app_from_env(environ={}, runtime=runtime, index_dir=work / "index", output_dir=work / "outputs")
    editor = Editor.from_settings(settings)
    editor.ensure_index()
    editor.load()
    demo = build_demo(editor)
    demo.queue(default_concurrency_limit=4)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            allowed_paths=[str(REPO / "examples"), str(settings.output_dir)])  # fmt: skip
    timed_edits(url, 1, steps, 0)
    return settings, url


def overhead_rows(local_url: str, url: str, edits: int, steps: int) -> list[tuple[str, str]]:
    """Local and serve edits alternate, so that the machine's other load falls on both alike."""
    local, served = [], []
    for n in range(edits):
        local += timed_edits(local_url, 1, steps, 1 + n)
        served += timed_edits(url, 1, steps, 1 + n)
    overhead = statistics.median(served) - statistics.median(local)
    return [("/edit p50, local mode", f"{statistics.median(local) * 1000:.0f} ms"),
            ("/edit p50, serve mode, 1 worker", f"{statistics.median(served) * 1000:.0f} ms"),
            ("**serve overhead per edit (p50 difference)**", f"**{overhead * 1000:.0f} ms**")]  # fmt: skip


def throughput_rows(url: str, deploy, clients: int, steps: int) -> list[tuple[str, str]]:
    """`clients` clients with 2 edits each on 1 worker, then on 2."""
    wall_1, done_1, errors_1 = crowd(url, clients, 2, steps)
    deploy(2)
    timed_edits(url, 2, steps, 0)
    wall_2, done_2, errors_2 = crowd(url, clients, 2, steps)
    rate_1, rate_2 = done_1 / wall_1, done_2 / wall_2
    return [(f"throughput, {clients} clients, 1 worker", f"{rate_1:.2f} edits/s ({errors_1} errors)"),
            (f"throughput, {clients} clients, 2 workers", f"{rate_2:.2f} edits/s ({errors_2} errors)"),
            ("**2 workers against 1**", f"**{rate_2 / rate_1:.2f}x**")]  # fmt: skip


def fault_rows(url: str, handle, clients: int, edits: int, steps: int) -> list[tuple[str, str]]:
    """`edits` edits from `clients` clients on 2 workers, one killed at half; /search timed meanwhile."""
    pids: set[int] = set()
    while len(pids) < 2:
        pids.add(handle.pid.remote().result())
    killed = threading.Event()

    def kill_at_half(count: int) -> None:
        if count >= edits // 2 and not killed.is_set():
            killed.set()
            os.kill(min(pids), signal.SIGKILL)  # a worker of this benchmark's own cluster

    busy = threading.Event()
    busy.set()
    search_times: list[float] = []
    searcher = threading.Thread(target=lambda: search_times.extend(searches_while(url, busy)))
    searcher.start()
    per_client = max(1, edits // clients)
    wall, answered, errors = crowd(url, clients, per_client, steps, kill_at_half)
    busy.clear()
    searcher.join()
    total = per_client * clients
    return [(f"{total} edits from {clients} clients, 1 of 2 workers killed at half",
             f"{answered} answered, **{errors} errors**, {total - answered - errors} unanswered ({wall:.0f} s)"),
            (f"/search while {clients} edits run: p50 / p95 ({len(search_times)} searches)",
             f"{p(search_times, 50) * 1000:.0f} ms / **{p(search_times, 95) * 1000:.0f} ms**")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--fault-edits", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()

    import ray
    from ray import serve

    from fashion_rag.serve.app import application, runtime_env
    from fashion_rag.serve.worker import PoolOptions

    settings, local_url = local_studio(args.steps)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             runtime_env=runtime_env())  # fmt: skip
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        serve.start(http_options={"host": "127.0.0.1", "port": port})

        def deploy(workers: int) -> None:
            pool = PoolOptions(min_replicas=workers, max_replicas=workers, fixed=True)
            serve.run(application(settings, pool), name="fashion-rag", route_prefix="/")

        deploy(1)
        timed_edits(url, 2, args.steps, 0)
        rows = overhead_rows(local_url, url, args.edits, args.steps)
        rows += throughput_rows(url, deploy, args.clients, args.steps)
        handle = serve.get_deployment_handle("EditWorker", app_name="fashion-rag")
        rows += fault_rows(url, handle, args.clients, args.fault_edits, args.steps)
    finally:
        serve.shutdown()
        ray.shutdown()

    print(f"\n{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine_description()}, ray {ray.__version__}, "
          f"tiny bundle, {args.steps} DDIM step(s) per edit, `python benchmarks/bench_serve_cpu.py`\n")  # fmt: skip
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
