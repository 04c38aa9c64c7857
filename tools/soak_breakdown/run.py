"""Where the soak's server memory is, every 100 requests (docs/RELIABILITY.md, "Soak: a reading near the bound").

    python -m tools.soak_breakdown.run [REQUESTS]

Runs the soak of tests/soak.py (tiny bundle, 8 clients, the same mix) against `python app.py` with
sitecustomize.py of this folder loaded, and after the warm-up and each block of 100 requests, at rest, asks the
server (SIGUSR1) for glibc's malloc figures, its anonymous and file-backed resident memory, and CPython's
object counts. Prints one JSON line per reading.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client

from tests import soak

HERE = Path(__file__).resolve().parent


def main(requests: int) -> None:
    from fashion_rag.catalog.catalog import load_catalog
    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.catalog.index import build_index
    from fashion_rag.tiny_bundle import make_tiny_bundle
    from fashion_rag.weights import ModelSources

    work = Path(tempfile.mkdtemp(prefix="soak-breakdown-"))
    bundle = make_tiny_bundle(work / "tiny", seed=0)
    encoder = RetrievalEncoder.from_sources(ModelSources(str(bundle)), device="cpu")
    build_index(load_catalog(soak.REPO / "examples" / "catalog"), encoder, work / "index")
    out = work / "breakdown.jsonl"
    os.environ.update(PYTHONPATH=str(HERE), SOAK_BREAKDOWN_OUT=str(out))
    process, url = soak.start_server(bundle, work / "index", work)
    clients = [Client(url, verbose=False, analytics_enabled=False) for _ in range(soak.CLIENTS)]

    def read() -> None:
        time.sleep(soak.SETTLE_S)
        os.kill(process.pid, signal.SIGUSR1)
        time.sleep(2)

    try:
        soak.send(clients, range(soak.WARM_UP))
        read()
        for start in range(soak.WARM_UP, soak.WARM_UP + requests, 100):
            soak.send(clients, range(start, start + 100))
            read()
    finally:
        for client in clients:
            client.close()
        process.terminate()
        process.wait(timeout=30)
    print(out.read_text(), end="")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
