"""Restart cost of the studio with a large catalog (issue 13, item 2): how long until it can search.

    python benchmarks/bench_catalog_restart.py [--items 100000] [--work DIR]

1. Writes a synthetic catalog of ITEMS distinct small PNGs (three categories, captions from a garment
   vocabulary) and builds its index once. Embedding 100,000 images with the tiny bundle's encoder would
   take hours on 2 cores, so that first build takes its image vectors from a seeded stand-in with the tiny
   encoder's identity (the vectors' values play no part in a restart); everything else is the real build.
2. Restarts, each in a fresh process, as `python app.py` does before serving: the Editor's
   `ensure_index()` (catalog check by size and mtime, index load) then the first search, with the real
   tiny encoder. Timed separately: Python imports, the encoder load, the catalog check and index load, and
   the first search. Goal: an unchanged catalog ready to search in <= 3 s on 2 cores.
3. Replaces one image and restarts: what that costs (one image embedded; its category's HNSW graph
   updated in place: the new vector added, the old node marked dead; the captions' BM25 kept).

Prints a markdown table with the machine, the versions and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = (
    ["navy", "red", "black", "white", "green", "striped", "floral", "checked", "linen", "denim", "silk"],
    ["shirt", "blazer", "t-shirt", "jeans", "skirt", "trousers", "dress", "kurta", "sari", "qipao"],
)
CATEGORIES = ("upper_body", "lower_body", "dresses")


def write_catalog(root: Path, items: int) -> None:
    """ITEMS distinct 8x8 PNGs (the item number is in the pixels) and a metadata.jsonl."""
    import numpy as np
    from PIL import Image

    rows = []
    for n in range(items):
        category = CATEGORIES[n % 3]
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.full((8, 8, 3), n % 251, dtype=np.uint8)
        pixels[0, :3] = [(n >> 16) & 255, (n >> 8) & 255, n & 255]
        Image.fromarray(pixels).save(folder / f"g{n:06d}.png")
        caption = f"{WORDS[0][n % 11]} {WORDS[0][(n // 11) % 11]} {WORDS[1][(n // 121) % 10]}"
        rows.append(json.dumps({"id": f"g{n:06d}", "file": f"{category}/g{n:06d}.png", "caption": caption}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")


class SeededImageVectors:
    """The tiny encoder for everything but image vectors, which come from each image's bytes (seeded)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.identity, self.dim, self.info, self.batch_size = encoder.identity, encoder.dim, encoder.info, 256

    def encode_images(self, images, batch_size=None):
        import numpy as np

        out = []
        for image in images:
            seed = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out)


def first_build(catalog: Path, index: Path, bundle: Path) -> dict:
    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.catalog.index import update_index
    from fashion_rag.weights import ModelSources

    encoder = RetrievalEncoder.from_sources(ModelSources(str(bundle)), device="cpu")
    started = time.perf_counter()
    report = update_index(catalog, SeededImageVectors(encoder), index)  # as `index build` does
    return {"first_build_s": time.perf_counter() - started, "kinds": report.kinds, "counts": report.counts}


RESTART = """
import json, sys, time
t0 = time.perf_counter()
from fashion_rag.config import app_from_env, runtime_from_env
from fashion_rag.editor import Editor
t1 = time.perf_counter()
runtime = runtime_from_env(environ={}, models=sys.argv[1], device="cpu")
editor = Editor.from_settings(app_from_env(environ={}, runtime=runtime, catalog_dir=sys.argv[2], index_dir=sys.argv[3]))
editor.retrieval_encoder
t2 = time.perf_counter()
report = editor.ensure_index()
t3 = time.perf_counter()
hits = editor.search("navy striped kurta", "dresses", 6)
t4 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "encoder_load_s": t2 - t1, "check_and_load_s": t3 - t2,
                  "first_search_s": t4 - t3, "ready_s": t4 - t1, "previous": report.previous,
                  "embedded": len(report.embedded), "written": list(report.written), "hits": len(hits)}))
"""


def restart(catalog: Path, index: Path, bundle: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", RESTART, str(bundle), str(catalog), str(index)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"the restart failed:\n{out.stderr[-3000:]}")
    out = out.stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=None, help="keep the catalog here (default: a temp folder)")
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    from fashion_rag.tiny_bundle import make_tiny_bundle

    work = args.work or Path(tempfile.mkdtemp(prefix="restart-"))
    catalog, index = work / "catalog", work / "index"
    bundle = make_tiny_bundle(work / "tiny", seed=0)
    started = time.perf_counter()
    if not (catalog / "metadata.jsonl").is_file():
        write_catalog(catalog, args.items)
    print(f"catalog of {args.items:,} images written in {time.perf_counter() - started:.0f} s", flush=True)
    built = first_build(catalog, index, bundle)
    print(f"first build (stand-in image vectors): {built}", flush=True)

    runs = [restart(catalog, index, bundle) for _ in range(args.restarts)]
    from PIL import Image

    victim = catalog / "dresses" / "g000002.png"
    with Image.open(victim) as image:  # a new photo of one garment: pixels no other item has
        image.convert("RGB").rotate(90).point(lambda v: 255 - v).save(victim)
    changed = restart(catalog, index, bundle)
    after = restart(catalog, index, bundle)

    import faiss
    import torch

    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
        f"faiss {faiss.__version__}, load average {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    print(f"{args.items:,} items, index kinds {built['kinds']}\n")
    print(
        "| restart | imports s | encoder load s | catalog check + index load s | first search s | ready s "
        "(after imports) | process s | embedded | files written |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, run in [
        *((f"unchanged #{i + 1}", r) for i, r in enumerate(runs)),
        ("one image replaced", changed),
        ("unchanged again", after),
    ]:
        print(
            f"| {name} | {run['imports_s']:.2f} | {run['encoder_load_s']:.2f} | {run['check_and_load_s']:.2f} | "
            f"{run['first_search_s']:.3f} | **{run['ready_s']:.2f}** | {run['process_s']:.1f} | {run['embedded']} | "
            f"{len(run['written'])} |"
        )


if __name__ == "__main__":
    main()
