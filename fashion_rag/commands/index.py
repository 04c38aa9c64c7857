"""`index build [CATALOG_DIR] [--out INDEX_DIR]`: embed a garment catalog into a faiss index.

Incremental and resumable (catalog/index.py, catalog/embedding.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.config import app_from_env, runtime_from_env
from fashion_rag.weights import ModelSources


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("index", help="build or update the search index of a garment catalog")
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build",
        help="embed the catalog's images with the retrieval encoder; a rerun embeds only what changed",
        description="Embed every image of CATALOG_DIR (see docs/catalog.md) into a faiss index with a manifest. "
        "Rerunning after adding, changing or removing images embeds only those.",
    )
    build.add_argument(
        "catalog_dir", type=Path, nargs="?", default=None, help="catalog folder (default: examples/catalog)"
    )
    build.add_argument("--out", type=Path, default=None, help="index folder (default: CATALOG_DIR/index)")
    add_models_flags(build)
    build.add_argument("--batch-size", type=int, default=None, help="images per encoder batch (default: 16)")
    build.add_argument(
        "--workers", type=int, default=None, help="image decoding threads (default: one per CPU core, at most 8)"
    )
    build.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    build.set_defaults(run=run_build)


def run_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fashion_rag.catalog.catalog import load_catalog
    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.catalog.index import build_index, known_files

    settings = app_from_env(catalog_dir=args.catalog_dir)
    catalog_dir = settings.catalog_dir
    index_dir = args.out if args.out is not None else catalog_dir / "index"
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir)
    sources = ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)

    catalog = load_catalog(catalog_dir, known=known_files(index_dir))  # unchanged files are not hashed again
    encoder = RetrievalEncoder.from_sources(sources, device=runtime.device)
    bar: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if args.json or total == 0:
            return
        if not bar:
            # tqdm shows the rate (img/s) and the time left
            bar.append(tqdm(total=total, unit="img", desc="embedding", dynamic_ncols=True, smoothing=0.1))
        bar[0].update(done - bar[0].n)

    try:
        report = build_index(
            catalog, encoder, index_dir, batch_size=args.batch_size, progress=progress, workers=args.workers
        )
    finally:
        if bar:
            bar[0].close()
    if args.json:
        print_json(
            {
                "index_dir": str(report.index_dir),
                "catalog_dir": str(catalog_dir),
                "encoder": report.encoder,
                "count": report.count,
                "counts": report.counts,
                "kinds": report.kinds,
                "embedded": len(report.embedded),
                "reused": report.reused,
                "added": list(report.added),
                "changed": list(report.changed),
                "removed": list(report.removed),
                "previous": report.previous,
                "resumed": report.resumed,
                "written": list(report.written),
                "problems": [str(p) for p in report.problems],
            }
        )
    else:
        print(report.summary())
    return 0
