"""The gradio_client stream race of tests/sequential_client.py, reproduced by hand (not part of the suite):

    python -m tests.stream_race shared [REQUESTS] [BUSY]       8 threads share 8 clients, plain predict
    python -m tests.stream_race sequential [REQUESTS] [BUSY]   one client per thread, sequential_client.predict

Starts a one-endpoint Gradio app (an echo that sleeps 0-20 ms, 4 at once) as its own process, sends
REQUESTS echoes from 8 threads while BUSY threads spin in this process (they slow the client's stream reader
the way a loaded test process does), and prints how many predicts raised CancelledError.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial

import httpx
from gradio_client import Client

from .sequential_client import predict
from .soak import free_port, in_lanes

THREADS = 8
SERVER = textwrap.dedent("""
    import random, sys, time
    import gradio as gr
    def echo(text: str) -> str:
        time.sleep(random.random() * 0.02)
        return text
    with gr.Blocks() as demo:
        gr.api(echo, api_name="echo")
    demo.queue(default_concurrency_limit=4).launch(quiet=True, server_port=int(sys.argv[1]))
""")


def spin() -> None:
    while True:
        sum(range(3000))


def cancelled_predicts(url: str, mode: str, requests: int) -> int:
    clients = [Client(url, verbose=False, analytics_enabled=False) for _ in range(THREADS)]

    def cancelled(client: Client, number: int) -> bool:
        try:
            send = client.predict if mode == "shared" else partial(predict, client)
            assert send(str(number), api_name="/echo") == str(number)
            return False
        except concurrent.futures.CancelledError:
            return True

    try:
        if mode == "shared":  # any thread takes the next request, on the client its number names
            with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
                return sum(pool.map(lambda n: cancelled(clients[n % THREADS], n), range(requests)))
        return sum(in_lanes(clients, range(requests), cancelled))  # client k alone sends k, k + 8, ...
    finally:
        for client in clients:
            client.close()


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(1)
    raise SystemExit(f"the echo app did not start at {url} within 120 s")


def main(mode: str = "shared", requests: str = "800", busy: str = "2") -> None:
    if mode not in ("shared", "sequential"):
        raise SystemExit(f"mode {mode!r}: give shared or sequential")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url)
        for _ in range(int(busy)):
            threading.Thread(target=spin, daemon=True).start()
        started = time.perf_counter()
        cancelled = cancelled_predicts(url, mode, int(requests))
        print(
            f"{mode}: {cancelled} of {requests} predicts cancelled ({busy} busy threads,"
            f" {time.perf_counter() - started:.0f} s)"
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    main(*sys.argv[1:])
