"""The studio's own overhead per edit, with the tiny bundle on the CPU.

    python benchmarks/bench_app_overhead_cpu.py [--runs 10]

Starts the studio in this process (tiny bundle, example catalog), sends `--runs` edits through the
named `edit` endpoint with gradio_client, and splits each request's wall time (request in to image
file out, as the client sees it) into the pipeline call, person preparation (the API edit prepares
the uploaded photo; in the page that happens once, at upload) and the rest: the app's own overhead
(upload, queue, garment tokens from the cache, paste-back, PNG encoding, file serving). Goal of
issue 6: overhead under 150 ms. Prints a markdown table with machine info.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import machine_description  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from app import build_demo
    from fashion_rag.config import app_from_env, runtime_from_env
    from fashion_rag.editor import Editor
    from fashion_rag.tiny_bundle import make_tiny_bundle

    work = Path(tempfile.mkdtemp(prefix="fashion-rag-overhead-"))
    bundle = make_tiny_bundle(work / "tiny")
    runtime = runtime_from_env(environ={}, models=str(bundle), device="cpu")
    settings = app_from_env(environ={}, runtime=runtime, index_dir=work / "index", output_dir=work / "outputs")
    editor = Editor.from_settings(settings)
    editor.ensure_index()
    editor.load()

    spent = {"pipeline": 0.0, "prepare": 0.0}
    pipeline_call, prepare_call = type(editor.pipeline).__call__, editor.prepare

    def timed_pipeline(self, *a, **k):
        start = time.perf_counter()
        try:
            return pipeline_call(self, *a, **k)
        finally:
            spent["pipeline"] += time.perf_counter() - start

    def timed_prepare(*a, **k):
        start = time.perf_counter()
        try:
            return prepare_call(*a, **k)
        finally:
            spent["prepare"] += time.perf_counter() - start

    type(editor.pipeline).__call__ = timed_pipeline
    editor.prepare = timed_prepare
    demo = build_demo(editor, replace(settings))
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    photo = handle_file(str(REPO / "examples" / "people" / "astronaut.png"))
    ids = client.predict("striped shirt", "upper_body", 2, api_name="/search")["hits"]
    garment_ids = ",".join(hit["id"] for hit in ids)

    def edit():
        return client.predict(
            photo, "upper_body", garment_ids, None, None, "", 1, args.steps, 7.5, "ddim", 1, True, api_name="/edit"
        )

    edit()  # warm-up: fills the garment-token cache, as the first edit of a session does
    # Gradio's own round trip (queue, server-sent events, JSON) for a request that does ~no work.
    floors = []
    for _ in range(args.runs):
        start = time.perf_counter()
        client.predict("striped shirt", "upper_body", 2, api_name="/search")
        floors.append(time.perf_counter() - start)
    editor_own: list[float] = []
    edit_call = editor.edit

    def timed_edit(*a, **k):
        result = edit_call(*a, **k)
        editor_own.append(result.timings["garments_s"] + result.timings["compose_s"])
        return result

    editor.edit = timed_edit
    overheads, walls, pipelines, prepares = [], [], [], []
    for _ in range(args.runs):
        spent.update(pipeline=0.0, prepare=0.0)
        start = time.perf_counter()
        edit()
        wall = time.perf_counter() - start
        walls.append(wall)
        pipelines.append(spent["pipeline"])
        prepares.append(spent["prepare"])
        overheads.append(wall - spent["pipeline"] - spent["prepare"])
    demo.close()

    def ms(values):
        return f"{statistics.median(values) * 1000:.0f} ms"

    rows = [
        ("machine", machine_description()),
        ("date", datetime.date.today().isoformat()),
        ("edit request, wall (p50)", ms(walls)),
        (f"pipeline call, tiny bundle, {args.steps} steps (p50)", ms(pipelines)),
        ("person preparation inside the API edit (p50)", ms(prepares)),
        ("app overhead per edit (p50)", ms(overheads)),
        ("app overhead per edit (max)", f"{max(overheads) * 1000:.0f} ms"),
        ("  of which: Gradio round trip of a no-op request (p50)", ms(floors)),
        ("  of which: editor work outside the pipeline (garment tokens, paste-back) (p50)", ms(editor_own)),
        (
            "  the rest: photo upload, PNG encoding, result and recipe download (p50)",
            f"{(statistics.median(overheads) - statistics.median(floors) - statistics.median(editor_own)) * 1000:.0f} ms",
        ),
    ]
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
