"""`evaluate QUERIES`: recall@1/5/10 and MRR of dense, lexical and hybrid search on a queries file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashion_rag.cli import add_index_flags, add_models_flags, print_json
from fashion_rag.errors import InputError


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ks {text!r}: use comma-separated positive integers, e.g. 1,5,10") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--ks {text!r}: use comma-separated positive integers, e.g. 1,5,10")
    return ks


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="recall@k and MRR of each search mode on a queries file",
        description='QUERIES is JSON Lines: {"text": ..., "category": ..., "relevant": [ids]} per line '
        "(examples/queries.jsonl for the example catalog).",
    )
    parser.add_argument("queries", type=Path, help="queries file (JSON Lines)")
    add_index_flags(parser)
    parser.add_argument("--ks", type=_ks, default=(1, 5, 10), help="cut-offs for recall (default: 1,5,10)")
    parser.add_argument(
        "--protocol",
        choices=("product", "paper"),
        default="product",
        help="product (default): every search mode as the app searches; paper: the Fashion-RAG paper's protocol "
        "(dense only, 1 noun chunk or 3 joined with ', ', no de-duplication), comparable with the paper's recall table",
    )
    add_models_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fashion_rag.catalog.evaluate import evaluate, evaluate_paper, format_table, load_queries
    from fashion_rag.commands.search import open_search

    queries = load_queries(args.queries)
    search = open_search(args.catalog, args.index, args.models, args.weights_dir)
    scores, notes = (evaluate_paper if args.protocol == "paper" else evaluate)(search, queries, args.ks)
    if not any(s.queries for s in scores):
        raise InputError(f"no query of {args.queries} could be evaluated: " + "; ".join(notes[:3]))
    if args.json:
        print_json(
            {
                "queries_file": str(args.queries),
                "queries": len(queries),
                "protocol": args.protocol,
                "mode": search.mode,
                "mode_reason": search.mode_reason,
                "scores": [s.to_dict() for s in scores],
                "notes": notes,
            }
        )
        return 0
    if search.mode_reason:
        print(f"note: {search.mode_reason}", file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(format_table(scores, args.ks))
    return 0
