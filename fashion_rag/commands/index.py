"""`index build [CATALOG_DIR] [--out INDEX_DIR] [--dataset SOURCE]`: embed a garment catalog into a faiss index.

Incremental and resumable (catalog/index.py, catalog/embedding.py). With `--dataset`, the catalog comes from
a Hugging Face dataset (catalog/dataset.py) and is written to CATALOG_DIR first."""

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
        "catalog_dir",
        type=Path,
        nargs="?",
        default=None,
        help="catalog folder (default: examples/catalog; with --dataset, where its images are written, "
        "default .cache/catalogs/NAME)",
    )
    build.add_argument(
        "--dataset",
        default=None,
        metavar="SOURCE",
        help="take the catalog from a Hugging Face dataset: owner/name on the Hub, a .parquet file or a folder of "
        "them, with columns image, caption, category (and optionally id)",
    )
    build.add_argument("--split", default="train", help="the dataset's split (default: train)")
    build.add_argument("--revision", default="main", help="the Hub dataset's branch or commit (default: main)")
    for column in ("image", "caption", "category", "id"):
        build.add_argument(
            f"--{column}-column", default=column, help=f"the dataset's {column} column (default: {column})"
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
    from fashion_rag.catalog.index import update_index

    imported = import_from_dataset(args) if args.dataset else None
    settings = app_from_env(catalog_dir=imported.catalog_dir if imported else args.catalog_dir)
    catalog_dir = settings.catalog_dir
    index_dir = args.out if args.out is not None else catalog_dir / "index"
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir)
    sources = ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)

    if not catalog_dir.is_dir():
        load_catalog(catalog_dir)  # says what is wrong before the encoder is loaded
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
        # Unchanged files are not read, changed ones hashed, only new images embedded.
        report = update_index(
            catalog_dir, encoder, index_dir, batch_size=args.batch_size, progress=progress, workers=args.workers
        )
    finally:
        if bar:
            bar[0].close()
    if args.json:
        print_json(
            {
                "dataset": None
                if imported is None
                else {
                    "source": imported.source,
                    "rows": imported.rows,
                    "written": len(imported.written),
                    "unchanged": imported.unchanged,
                    "removed": len(imported.removed),
                    "problems": [str(p) for p in imported.problems],
                },
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
                "rebuilt_because": report.rebuilt_because,
                "resumed": report.resumed,
                "written": list(report.written),
                "problems": [str(p) for p in report.problems],
            }
        )
    else:
        if imported is not None:
            print(imported.summary())
        print(report.summary())
        if imported is not None:
            print(f"start the studio on it with: python app.py --catalog {catalog_dir}")
    return 0


def import_from_dataset(args: argparse.Namespace):
    """Write the dataset `args.dataset` as a catalog folder (catalog/dataset.py); the folder's ImportReport."""
    from fashion_rag.catalog.dataset import Columns, import_dataset, open_dataset
    from fashion_rag.config import REPO_ROOT

    slug = Path(args.dataset.rstrip("/")).stem.replace("/", "--") if Path(args.dataset).exists() else args.dataset
    target = args.catalog_dir or REPO_ROOT / ".cache" / "catalogs" / slug.replace("/", "--")
    dataset = open_dataset(args.dataset, split=args.split, revision=args.revision)
    columns = Columns(args.image_column, args.caption_column, args.category_column, args.id_column)
    return import_dataset(dataset, target, source=args.dataset, columns=columns)
