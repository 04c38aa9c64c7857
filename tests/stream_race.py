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

import httpx
from gradio_client import Client

from .sequential_client import predict
from .soak import free_port

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
    counted, lock = [0], threading.Lock()

    def one(client: Client, number: int) -> None:
        try:
            if mode == "shared":
                answer = client.predict(str(number), api_name="/echo")
            else:
                answer = predict(client, str(number), api_name="/echo")
            assert answer == str(number)
        except concurrent.futures.CancelledError:
            with lock:
                counted[0] += 1

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        if mode not in ("shared", "sequential"):
            raise SystemExit(f"mode {mode!r}: give shared or sequential")
        if mode == "shared":  # any thread takes the next request, on the client its number names
            list(pool.map(lambda n: one(clients[n % THREADS], n), range(requests)))
        else:  # thread k sends requests k, k + 8, ... on client k, one at a time
            lanes = [pool.submit(lambda k: [one(clients[k], n) for n in range(k, requests, THREADS)], k)
                     for k in range(THREADS)]  # fmt: skip
            for lane in lanes:
                lane.result()
    for client in clients:
        client.close()
    return counted[0]


def main(mode: str = "shared", requests: str = "800", busy: str = "2") -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        for _ in range(int(busy)):
            threading.Thread(target=spin, daemon=True).start()
        started = time.perf_counter()
        cancelled = cancelled_predicts(url, mode, int(requests))
        print(f"{mode}: {cancelled} of {requests} predicts cancelled ({busy} busy threads,"
              f" {time.perf_counter() - started:.0f} s)")  # fmt: skip
    finally:
        server.terminate()


if __name__ == "__main__":
    main(*sys.argv[1:])
