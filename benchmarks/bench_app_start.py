"""Process start to a page that answers HTTP: the studio against a minimal Gradio app, in the same run.

    python benchmarks/bench_app_start.py --models .cache/tiny-bundle [--runs 5]

Each run starts a fresh process and polls GET / on its port every 20 ms until it answers 200; the two apps
alternate, so load on a shared machine falls on both alike. The minimal app is one gr.Blocks with one
Textbox, launched the way app.py launches (queue, loopback). The studio is `python app.py --models MODELS`
with a catalog index already built (the first run builds it; later runs find it up to date); it serves its
page before loading the models (docs/PERFORMANCE.md, "Start-up"). Prints a markdown table of the medians
and the ratio (issue 21's goal: at most 1.5), and `--json` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MINIMAL_APP = """
import gradio as gr
with gr.Blocks() as demo:
    gr.Textbox()
demo.queue()
demo.launch(server_name="127.0.0.1", server_port={port})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seconds_to_answer(command: list[str], port: int, timeout_s: float, env: dict[str, str]) -> float:
    """Seconds from starting `command` until http://127.0.0.1:port/ answers 200; the process is then stopped."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < timeout_s:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command} exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{command} did not answer on port {port} within {timeout_s} s")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="model bundle (or 'default') for app.py")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--app-args", default="", help="more flags for app.py, e.g. '--device cuda'")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fashion-rag-start-"))
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    minimal_file = work / "minimal_app.py"
    times: dict[str, list[float]] = {"minimal Gradio Blocks (one Textbox)": [], "python app.py": []}
    for run in range(args.runs):
        port = free_port()
        minimal_file.write_text(MINIMAL_APP.format(port=port))
        times["minimal Gradio Blocks (one Textbox)"].append(
            seconds_to_answer([sys.executable, str(minimal_file)], port, args.timeout, env)
        )
        port = free_port()
        command = [
            sys.executable,
            "app.py",
            "--models",
            args.models,
            "--port",
            str(port),
            "--index",
            str(work / "index"),
            "--output-dir",
            str(work / "outputs"),
            *args.app_args.split(),
        ]
        times["python app.py"].append(seconds_to_answer(command, port, args.timeout, env))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["python app.py"] / medians["minimal Gradio Blocks (one Textbox)"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"\n{machine}; load average {load:.1f} at the end; {args.runs} runs each, alternating\n")
    print("| process start to HTTP 200 on / | median s | min s | max s |\n|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {medians[name]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    print(f"| **ratio app / minimal** | **{ratio:.2f}** | | |")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"machine": machine, "times_s": times, "median_s": medians, "ratio": ratio}, indent=2)
        )


if __name__ == "__main__":
    main()
