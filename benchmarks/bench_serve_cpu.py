"""Serve mode against the local mode, with the tiny bundle on this machine's CPUs (issue 22's goals).

    python benchmarks/bench_serve_cpu.py [--edits 10] [--clients 8] [--fault-edits 64] [--steps 1]
    python benchmarks/bench_serve_cpu.py --kill-edits 500      # only the fault run, with 500 edits

Everything but the breakdown goes through the page's public API with gradio_client (one Client per client\nprocess):

1. breakdown: where a served edit's time goes, stage by stage (Editor.run in this process, the worker's own
   time for the same request, the Ray handle call, pickling the request and the result, one HTTP request);
2. overhead: p50 of an /edit request, serve mode with 1 worker minus the local mode (`python app.py` in this
   process), both with one torch thread, `--edits` each after warm-up, alternating (the box is shared);
3. throughput: `--clients` clients at once, 2 edits each, on 1 worker and then on 2 (edits per second), for
   each of `--throughput-steps` (1 and 4 DDIM steps), with the CPU seconds per edit of each role: the clients,
   the page and Ray run on the same 2 cores as the workers, so the edits must be long enough to dominate;
4. faults: `--fault-edits` edits from `--clients` clients on 2 workers, one worker's process killed when half
   are answered: errors and unanswered requests; meanwhile /search p95 from one more client.

Starts its own Ray cluster (num_cpus=2) and stops it at the end. Prints the machine, the versions and the load
average (1 min) before and after each phase, then a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import pickle
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ASTRONAUT = REPO / "examples" / "people" / "astronaut.png"
Rows = list[tuple[str, str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def machine() -> str:
    import gradio
    import ray
    import torch

    cpu = "cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores of {cpu}, Python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"ray {ray.__version__}, gradio {gradio.__version__}"
    )


def edit_once(client, seed: int, steps: int) -> None:
    from gradio_client import handle_file

    from tests.sequential_client import predict

    predict(
        client,
        handle_file(str(ASTRONAUT)),
        "upper_body",
        "",
        None,
        None,
        "red shirt",
        seed,
        steps,
        7.5,
        "ddim",
        1,
        True,
        api_name="/edit",
    )


def client_of(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


def timed_edits(url: str, count: int, steps: int, seed0: int) -> list[float]:
    """Seconds per /edit request from one client, one after another."""
    client, times = client_of(url), []
    for n in range(count):
        start = time.perf_counter()
        edit_once(client, seed0 + n, steps)
        times.append(time.perf_counter() - start)
    return times


def client_process(url: str, index: int, per_client: int, steps: int, ready, go, answers) -> None:
    """One user: a Client of its own, `per_client` edits one after another; puts True or False per edit."""
    client = client_of(url)
    ready.put(index)
    go.wait()
    cpu = time.process_time()
    for n in range(per_client):
        try:
            edit_once(client, 1000 * index + n, steps)
            answers.put(True)
        except Exception as error:  # noqa: BLE001 - counted and printed: the figure is the error count
            print(f"error: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr, flush=True)
            answers.put(False)
    ready.put(time.process_time() - cpu)  # this client's CPU seconds for its edits


def crowd(url: str, clients: int, per_client: int, steps: int, on_answer=None) -> tuple[float, int, int, float]:
    """`clients` client processes, `per_client` edits each: (wall s, answered, errors, the clients' CPU s).

    Processes, not threads: the users are separate machines, and 8 gradio_client threads in one process share
    one GIL (~0.2 CPU s per edit of client work), which on this box capped the rate before the pool did.
    The clock starts once every client has its Client.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of this process's Ray and Gradio threads
    ready, answers, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=client_process, args=(url, i, per_client, steps, ready, go, answers))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    answered = errors = 0
    start = time.perf_counter()
    go.set()
    for _ in range(clients * per_client):
        ok = answers.get(timeout=600)
        answered, errors = answered + ok, errors + (not ok)
        if on_answer:
            on_answer(answered + errors)
    wall = time.perf_counter() - start
    client_cpu = sum(ready.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    return wall, answered, errors, client_cpu


def searches_while(url: str, busy: threading.Event) -> list[float]:
    from tests.sequential_client import predict

    client, times = client_of(url), []
    while busy.is_set():
        start = time.perf_counter()
        predict(client, "red striped shirt", "upper_body", 6, api_name="/search")
        times.append(time.perf_counter() - start)
        time.sleep(0.2)
    return times


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def local_studio(steps: int):
    """The local mode in this process (one torch thread, as each serve worker): (editor, its URL)."""
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
    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(REPO / "examples"), str(settings.output_dir)],
    )
    timed_edits(url, 1, steps, 0)
    return editor, url


def breakdown_rows(editor, handle, local_url: str, url: str, steps: int, count: int = 10) -> Rows:
    """Stage by stage, the same request (the astronaut, a text-only edit) locally and on the 1-worker pool."""
    import httpx

    from fashion_rag.person.photo import load_photo
    from fashion_rag.request import EditRequest

    photo = load_photo(ASTRONAUT)

    def request(seed: int) -> EditRequest:
        return EditRequest("upper_body", photo=photo, description="red shirt", seed=seed, steps=steps)

    local, remote, own, noop, pickling = [], [], [], [], []
    for n in range(count):  # alternating, so that the box's other load falls on both alike
        start = time.perf_counter()
        result = editor.run(request(n))
        local.append(time.perf_counter() - start)
        start = time.perf_counter()
        served = handle.run.remote(request(n)).result()
        remote.append(time.perf_counter() - start)
        own.append(served.timings["prepare_s"] + served.timings["total_s"])
        start = time.perf_counter()
        handle.pid.remote().result()
        noop.append(time.perf_counter() - start)
        start = time.perf_counter()
        sizes = [len(pickle.dumps(request(n))), len(pickle.dumps(result))]
        pickle.loads(pickle.dumps(request(n)))
        pickle.loads(pickle.dumps(result))
        pickling.append(time.perf_counter() - start)
    http = {}
    with httpx.Client() as session:
        for name, base in (("local", local_url), ("serve", url)):
            times = []
            for _ in range(count):
                start = time.perf_counter()
                session.get(base + "config").raise_for_status()
                times.append(time.perf_counter() - start)
            http[name] = statistics.median(times)
    med = statistics.median
    return [
        ("Editor.run in this process (prepare + edit), p50", ms(med(local))),
        ("the same request on the worker: its own time (prepare_s + total_s), p50", ms(med(own))),
        ("EditWorker.run through the Ray handle, p50", ms(med(remote))),
        (
            "  of which the handle, routing and transfer (p50 of call minus own time)",
            ms(med([r - o for r, o in zip(remote, own, strict=True)])),
        ),
        ("  a no-op handle call (EditWorker.pid), p50", ms(med(noop))),
        (
            f"pickling request + result ({sizes[0] / 1e6:.1f} + {sizes[1] / 1e6:.1f} MB), both ways, p50",
            ms(med(pickling)),
        ),
        (
            "one HTTP request to the page (GET /config), local / serve, p50",
            f"{ms(http['local'])} / {ms(http['serve'])}",
        ),
    ]


def overhead_rows(local_url: str, url: str, edits: int, steps: int) -> Rows:
    """Local and serve edits alternate, so that the machine's other load falls on both alike."""
    local, served = [], []
    for n in range(edits):
        local += timed_edits(local_url, 1, steps, 1 + n)
        served += timed_edits(url, 1, steps, 1 + n)
    overhead = statistics.median(served) - statistics.median(local)
    paired = statistics.median([a - b for a, b in zip(served, local, strict=True)])
    return [
        ("/edit p50, local mode", ms(statistics.median(local))),
        ("/edit p50, serve mode, 1 worker", ms(statistics.median(served))),
        ("**serve overhead per edit (p50 difference)**", f"**{ms(overhead)}**"),
        ("serve overhead per edit (median of the paired differences)", ms(paired)),
    ]


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this process (the clients and the local page) and of its children (the Ray
    cluster it started), by role."""
    import psutil

    roles = dict.fromkeys(("edit workers", "page (ingress)", "clients", "this process", "Ray's own processes"), 0.0)
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            name, times = " ".join(process.cmdline()), process.cpu_times()
        except psutil.Error:
            continue  # ended meanwhile
        role = (
            "edit workers"
            if "EditWorker" in name
            else "page (ingress)"
            if "StudioIngress" in name
            else "clients"
            if "multiprocessing" in name
            else "this process"
            if process.pid == me.pid
            else "Ray's own processes"
        )
        roles[role] += times.user + times.system
    return roles


def throughput_rows(url: str, deploy, clients: int, steps: int) -> Rows:
    """`clients` clients with 2 edits each on 1 worker, then on 2; and where the CPU went per edit."""
    rates, split = {}, ""
    for workers in (1, 2):
        deploy(workers)
        timed_edits(url, 2, steps, 0)
        before = cpu_seconds()
        wall, done, errors, client_cpu = crowd(url, clients, 2, steps)
        after = cpu_seconds()
        after["clients"] = before["clients"] + client_cpu
        rates[workers] = (done / wall, errors)
        split = ", ".join(f"{role} {(after[role] - before[role]) / max(1, done):.2f}" for role in after)
    (rate_1, errors_1), (rate_2, errors_2) = rates[1], rates[2]
    return [
        (f"throughput, {clients} clients, {steps} step(s), 1 worker", f"{rate_1:.2f} edits/s ({errors_1} errors)"),
        (f"throughput, {clients} clients, {steps} step(s), 2 workers", f"{rate_2:.2f} edits/s ({errors_2} errors)"),
        (f"CPU s per edit, {steps} step(s), 2 workers", split),
        (f"**2 workers against 1, {steps} step(s)**", f"**{rate_2 / rate_1:.2f}x**"),
    ]


def fault_rows(url: str, handle, clients: int, edits: int, steps: int) -> Rows:
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
    per_client = max(1, -(-edits // clients))  # at least `edits` in all
    wall, answered, errors, _ = crowd(url, clients, per_client, steps, kill_at_half)
    busy.clear()
    searcher.join()
    total = per_client * clients
    return [
        (
            f"{total} edits from {clients} clients, 1 of 2 workers killed at half",
            f"{answered} answered, **{errors} errors**, {total - answered - errors} unanswered ({wall:.0f} s)",
        ),
        (
            f"/search while {clients} edits run: p50 / p95 ({len(search_times)} searches)",
            f"{ms(p(search_times, 50))} / **{ms(p(search_times, 95))}**",
        ),
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=10, help="alternating /edit requests per mode (overhead)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--fault-edits", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="DDIM steps of each edit")
    parser.add_argument("--throughput-steps", default="1,4", help="DDIM steps of the throughput phase's edits, each")
    parser.add_argument("--kill-edits", type=int, default=None, help="only the fault run, with this many edits")
    parser.add_argument("--phases", default="breakdown,overhead,throughput,faults", help="which phases to run")
    return parser.parse_args()


def run_phases(args: argparse.Namespace, editor, local_url: str) -> Rows:
    from ray import serve

    from fashion_rag.serve.app import APP_NAME, deploy
    from fashion_rag.serve.worker import PoolOptions

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    settings = replace(editor.settings, host="127.0.0.1", port=port)

    def deploy_pool(workers: int) -> None:
        deploy(settings, PoolOptions(min_replicas=workers, max_replicas=workers, fixed=True))

    def phase(name: str, make_rows) -> Rows:
        before = load()
        rows = make_rows()
        print(f"{name}: load {before} -> {load()}", flush=True)
        return [(f"{label} [load {before}]", value) for label, value in rows]

    rows: Rows = []
    phases = ["faults"] if args.kill_edits is not None else args.phases.split(",")
    deploy_pool(2 if phases == ["faults"] else 1)
    timed_edits(url, 2, args.steps, 0)
    handle = serve.get_deployment_handle("EditWorker", app_name=APP_NAME)
    if "breakdown" in phases:
        rows += phase("breakdown", lambda: breakdown_rows(editor, handle, local_url, url, args.steps))
    if "overhead" in phases:
        rows += phase("overhead", lambda: overhead_rows(local_url, url, args.edits, args.steps))
    for steps in (int(part) for part in args.throughput_steps.split(",")) if "throughput" in phases else ():
        rows += phase(f"throughput, {steps} step(s)", partial(throughput_rows, url, deploy_pool, args.clients, steps))
    if "faults" not in phases:
        return rows
    deploy_pool(2)
    handle = serve.get_deployment_handle("EditWorker", app_name=APP_NAME)
    edits = args.kill_edits or args.fault_edits
    rows += phase("faults", lambda: fault_rows(url, handle, args.clients, edits, args.steps))
    return rows


def main() -> None:
    args = parse_args()
    import ray
    from ray import serve

    from fashion_rag.serve.app import runtime_env

    print(f"{machine()}; load average at start {os.getloadavg()}", flush=True)
    editor, local_url = local_studio(args.steps)
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, runtime_env=runtime_env()
    )
    try:
        rows = run_phases(args, editor, local_url)
    finally:
        serve.shutdown()
        ray.shutdown()
    command = " ".join(["python", "benchmarks/bench_serve_cpu.py", *sys.argv[1:]])
    print(
        f"\n{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine()}, tiny bundle, {args.steps} DDIM "
        f"step(s) per edit, `{command}`; [load] is the 1-minute load average when the phase began\n"
    )
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
