"""How long `weights download` takes to refuse a source it cannot use, against the local fake Hub.

    python benchmarks/bench_download_refusal.py [--runs 5]

Each case runs the real command line in a fresh process (Python start-up included, as a user sees it) with
HF_ENDPOINT pointing at tests/fake_hub.py, and reports the median and worst wall time over `--runs`, the
exit status and the line printed. The point of issue 11: a removed repository (the SD2 case of Nov 2025)
is refused from the model info alone, in seconds, before any large transfer. Prints a markdown table with
machine info.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from fashion_rag.weights import REGISTRY  # noqa: E402
from tests.fake_hub import FakeHub, FakeRepo  # noqa: E402

FASHION = REGISTRY["fashion-rag"]
BIG = os.urandom(64 * 1024 * 1024)  # a 64 MB stand-in checkpoint: a refusal must not transfer it


def cases() -> dict[str, tuple[str, dict[str, FakeRepo]]]:
    files = dict(zip(FASHION.file_names, (BIG, b"adapter" * 200), strict=True))
    return {
        "removed repository (sd2-inpainting)": ("sd2-inpainting", {}),
        "gated repository (fashion-rag)": ("fashion-rag", {FASHION.repo_id: FakeRepo(files=files, gated=True)}),
        "missing file (fashion-rag adapter)": (
            "fashion-rag",
            {FASHION.repo_id: FakeRepo(files={FASHION.file_names[0]: BIG})},
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for label, (part, repos) in cases().items():
        with FakeHub(repos=repos) as hub, tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FASHION_RAG_"))}
            env.update(HF_ENDPOINT=hub.url, HF_HOME=f"{tmp}/home", HF_HUB_CACHE=f"{tmp}/cache")
            times, result = [], None
            for _ in range(args.runs):
                started = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "fashion_rag", "weights", "download", part, "--weights-dir", f"{tmp}/w"],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    env=env,
                    timeout=300,
                )
                times.append(time.perf_counter() - started)
            assert result is not None
            transferred = sum(1 for _, path in hub.gets() if path)
            rows.append(
                (label, statistics.median(times), max(times), result.returncode, transferred, result.stderr.strip())
            )
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}, huggingface_hub {metadata.version('huggingface_hub')}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"\n| case | median s ({args.runs} runs) | worst s | exit | file GETs | line |")
    print("|---|---|---|---|---|---|")
    for label, median, worst, code, gets, line in rows:
        print(f"| {label} | {median:.2f} | {worst:.2f} | {code} | {gets} | {line[:90]}… |")


if __name__ == "__main__":
    main()
