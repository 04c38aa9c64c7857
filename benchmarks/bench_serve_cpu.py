"""Serve mode against the local mode, with the tiny bundle on this machine's CPUs (issue 22's goals).

    python benchmarks/bench_serve_cpu.py [--edits 10] [--clients 8] [--fault-edits 64] [--steps 1]

Everything goes through the page's public API with gradio_client (one Client per thread), as a user sees it:

1. overhead: p50 of an /edit request, serve mode with 1 worker minus the local mode (`python app.py` in this
   process), both with one torch thread, `--edits` each after one warm-up;
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


def main() -> None:  # noqa: PLR0915 - one measurement after another, in the order of the docstring
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--fault-edits", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()

    import ray
    import torch
    from ray import serve

    from app import build_demo
    from fashion_rag.config import app_from_env, runtime_from_env
    from fashion_rag.editor import Editor
    from fashion_rag.serve.app import application, runtime_env
    from fashion_rag.serve.worker import PoolOptions
    from fashion_rag.tiny_bundle import make_tiny_bundle

    torch.set_num_threads(1)  # as each serve worker
    work = Path(tempfile.mkdtemp(prefix="fashion-rag-serve-"))
    runtime = runtime_from_env(environ={}, models=str(make_tiny_bundle(work / "tiny")), device="cpu")
    settings = app_from_env(environ={}, runtime=runtime, index_dir=work / "index", output_dir=work / "outputs")
    editor = Editor.from_settings(settings)
    editor.ensure_index()
    editor.load()
    rows: list[tuple[str, str]] = []

    demo = build_demo(editor)
    demo.queue(default_concurrency_limit=4)
    _, local_url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                                  allowed_paths=[str(REPO / "examples"), str(settings.output_dir)])  # fmt: skip
    timed_edits(local_url, 1, args.steps, 0)
    local = timed_edits(local_url, args.edits, args.steps, 1)
    demo.close()

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
        timed_edits(url, 1, args.steps, 0)
        served = timed_edits(url, args.edits, args.steps, 1)
        overhead = statistics.median(served) - statistics.median(local)
        rows.append(("/edit p50, local mode", f"{statistics.median(local) * 1000:.0f} ms"))
        rows.append(("/edit p50, serve mode, 1 worker", f"{statistics.median(served) * 1000:.0f} ms"))
        rows.append(("**serve overhead per edit (p50 difference)**", f"**{overhead * 1000:.0f} ms**"))

        wall_1, done_1, _ = crowd(url, args.clients, 2, args.steps)
        deploy(2)
        timed_edits(url, 2, args.steps, 0)
        wall_2, done_2, _ = crowd(url, args.clients, 2, args.steps)
        rate_1, rate_2 = done_1 / wall_1, done_2 / wall_2
        rows.append((f"throughput, {args.clients} clients, 1 worker", f"{rate_1:.2f} edits/s"))
        rows.append((f"throughput, {args.clients} clients, 2 workers", f"{rate_2:.2f} edits/s"))
        rows.append(("**2 workers against 1**", f"**{rate_2 / rate_1:.2f}x**"))

        handle = serve.get_deployment_handle("EditWorker", app_name="fashion-rag")
        pids = set()
        while len(pids) < 2:
            pids.add(handle.pid.remote().result())
        killed = threading.Event()

        def kill_at_half(count: int) -> None:
            if count >= args.fault_edits // 2 and not killed.is_set():
                killed.set()
                os.kill(min(pids), signal.SIGKILL)  # a worker of this benchmark's own cluster

        busy = threading.Event()
        busy.set()
        search_times: list[float] = []
        searcher = threading.Thread(target=lambda: search_times.extend(searches_while(url, busy)))
        searcher.start()
        per_client = max(1, args.fault_edits // args.clients)
        wall, answered, errors = crowd(url, args.clients, per_client, args.steps, kill_at_half)
        busy.clear()
        searcher.join()
        total = per_client * args.clients
        rows.append((f"{total} edits from {args.clients} clients, 1 of 2 workers killed at half", f"{answered} answered, "
                     f"**{errors} errors**, {total - answered - errors} unanswered ({wall:.0f} s)"))  # fmt: skip
        rows.append((f"/search while {args.clients} edits run: p50 / p95 ({len(search_times)} searches)",
                     f"{p(search_times, 50) * 1000:.0f} ms / **{p(search_times, 95) * 1000:.0f} ms**"))  # fmt: skip
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
