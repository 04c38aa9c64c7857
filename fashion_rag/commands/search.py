"""`search "TEXT" --category CAT [-k N]`: the catalog garments that best match a description."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fashion_rag.cli import add_index_flags, add_models_flags, print_json
from fashion_rag.config import CATEGORIES, app_from_env, runtime_from_env
from fashion_rag.weights import ModelSources


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search the garment catalog by description",
        description="Split the description into noun chunks and search the catalog category with dense "
        "(open_clip) and lexical (BM25) retrieval fused; lexical only when the retrieval encoder or the index "
        "is missing.",
    )
    parser.add_argument("text", help='garment description, e.g. "red satin slip dress with lace trim"')
    parser.add_argument("--category", required=True, help=f"one of {', '.join(CATEGORIES)}")
    parser.add_argument("-k", type=int, default=5, help="number of results (default: 5)")
    add_index_flags(parser)
    parser.add_argument(
        "--mode", choices=("hybrid", "dense", "lexical"), default=None, help="default: the best available"
    )
    add_models_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def open_search(catalog: Path | None, index: Path | None, models: str | None, weights_dir: str | None):
    """The CatalogSearch for command-line flags (shared with `evaluate`)."""
    from fashion_rag.catalog.search import CatalogSearch

    settings = app_from_env(catalog_dir=catalog, index_dir=index)
    runtime = runtime_from_env(models=models, weights_dir=weights_dir)
    sources = ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)
    # An index given without a catalog knows its own catalog folder (recorded in its manifest).
    catalog_dir = None if index is not None and catalog is None else settings.catalog_dir
    return CatalogSearch.open(catalog_dir, settings.resolved_index_dir, sources, device=runtime.device)


def run(args: argparse.Namespace) -> int:
    from fashion_rag.catalog.chunking import chunk_description
    from fashion_rag.errors import check_category

    check_category(args.category)
    chunks = chunk_description(args.text)  # checks the text before any model loads
    started = time.perf_counter()
    search = open_search(args.catalog, args.index, args.models, args.weights_dir)
    loaded = time.perf_counter()
    hits = search.search(args.text, args.category, args.k, mode=args.mode)
    done = time.perf_counter()
    warnings = ([search.mode_reason] if search.mode_reason else []) + list(search.problems)
    if args.json:
        print_json(
            {
                "text": args.text,
                "category": args.category,
                "k": args.k,
                "mode": args.mode or search.mode,
                "mode_reason": search.mode_reason,
                "chunks": chunks,
                "hits": [hit.to_dict() for hit in hits],
                "warnings": warnings,
                "timings": {"load_s": round(loaded - started, 4), "search_s": round(done - loaded, 4)},
            }
        )
        return 0
    for line in warnings:
        print(f"note: {line}", file=sys.stderr)
    print(f"{args.mode or search.mode} search in {args.category}; chunks: {' | '.join(chunks)}")
    if not hits:
        print("no match: no caption shares a word with the description")
    for rank, hit in enumerate(hits, start=1):
        ranks = f"dense {hit.dense_rank or '-'}, lexical {hit.lexical_rank or '-'}"
        print(f"{rank:3}. {hit.id:16} {hit.score:.4f}  [{hit.chunk}; {ranks}]  {hit.caption}")
    return 0
