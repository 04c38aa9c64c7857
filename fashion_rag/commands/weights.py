"""`weights status | download [NAME...] | verify | make-tiny DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.config import runtime_from_env
from fashion_rag.weights import REGISTRY, ModelSources, download, verify_all


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="model sources: status, download, verify, make-tiny")
    actions = parser.add_subparsers(dest="action", required=True)

    status = actions.add_parser("status", help="where each model part was found; exit 1 if any is missing")
    add_models_flags(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=run_status)

    fetch = actions.add_parser("download", help="fetch parts into weights/ with sha256 verification")
    add_models_flags(fetch)
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"parts to fetch (default: all): {', '.join(REGISTRY)}")
    fetch.set_defaults(run=run_download)

    verify = actions.add_parser("verify", help="re-hash every file in weights/ against the lock file")
    add_models_flags(verify)
    verify.set_defaults(run=run_verify)

    tiny = actions.add_parser("make-tiny", help="write the tiny random-weight bundle (tests, offline demo)")
    tiny.add_argument("directory", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(run=run_make_tiny)


def _sources(args: argparse.Namespace) -> ModelSources:
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir)
    return ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)


def run_status(args: argparse.Namespace) -> int:
    sources = _sources(args)
    locations = sources.status()
    missing = [loc.part.name for loc in locations if not loc.found]
    if args.json:
        print_json(
            {
                "models": sources.models,
                "kind": sources.kind,
                "parts": {
                    loc.part.name: {
                        "where": loc.where,
                        "path": str(loc.path) if loc.path else None,
                        "repo_id": loc.part.repo_id,
                        "revision": loc.part.revision,
                        "files": loc.files,
                        "licence": loc.part.licence,
                        "note": loc.part.note,
                    }
                    for loc in locations
                },
                "missing": missing,
            }
        )
    else:
        print(f"model sources: {sources.models} ({sources.kind})")
        width = max(len(name) for name in REGISTRY)
        for loc in locations:
            where = (
                f"{loc.where:9} {loc.path}" if loc.found else f"missing   ({loc.part.repo_id}, ~{loc.part.size_gb} GB)"
            )
            print(f"  {loc.part.name:{width}}  {where}")
            print(f"  {'':{width}}  from {loc.part.repo_id}@{loc.part.revision[:12]}; {loc.part.note}")
            print(f"  {'':{width}}  for {loc.part.used_for}; licence {loc.part.licence}")
        if missing:
            print(
                f"missing: {', '.join(missing)}; fetch with `python -m fashion_rag weights download {' '.join(missing)}`"
            )
    return 1 if missing else 0


def run_download(args: argparse.Namespace) -> int:
    sources = _sources(args)
    if not args.verbose:
        # huggingface_hub logs each retry of a cut transfer; the one line of a failure says what it means.
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    paths = download(list(args.names), sources)
    print(f"{len(paths)} files present and verified in {sources.weights_dir}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    problems = verify_all(_sources(args).weights_dir)
    for line in problems:
        print(line)
    if not problems:
        print("every locked file matches its sha256")
    return 1 if problems else 0


def run_make_tiny(args: argparse.Namespace) -> int:
    from fashion_rag.tiny_bundle import make_tiny_bundle

    path = make_tiny_bundle(args.directory, seed=args.seed)
    print(f"tiny bundle written to {path} (seed {args.seed}); use it with --models {path}")
    return 0
