"""The command line: `python -m fashion_rag <command> ...` (the contract: README.md, Command line).

Each command lives in `fashion_rag/commands/<name>.py` with `add_parser(subparsers)` and
`run(args) -> int`. Errors the user can fix (fashion_rag.errors.USER_ERRORS) print one line on stderr
and exit with status 2;
`--json` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Any

from fashion_rag.errors import USER_ERRORS, user_message

COMMAND_MODULES = ("weights", "index", "search", "evaluate", "prepare", "edit", "batch", "doctor")


def add_models_flags(parser: argparse.ArgumentParser) -> None:
    """`--models SRC` and `--weights-dir DIR`, shared by every command that loads a model."""
    parser.add_argument(
        "--models",
        default=None,
        help="'default' (the real sources, see `weights status`) or a model bundle directory; "
        "default: $FASHION_RAG_MODELS or 'default'",
    )
    parser.add_argument("--weights-dir", default=None, help="where downloaded weights live (default: weights/)")


def add_index_flags(parser: argparse.ArgumentParser) -> None:
    """`--index DIR` and `--catalog DIR`, shared by the commands that search a catalog."""
    from pathlib import Path

    parser.add_argument("--index", type=Path, default=None, help="index folder (default: CATALOG/index)")
    parser.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="catalog folder (default: the one the index was built from, else examples/catalog)",
    )


# The libraries' switches for their load reports ("UNEXPECTED" key tables, TensorFlow Lite start-up lines). Serve
# workers get them through Ray's runtime_env too (serve/app.py): a worker on another node does not inherit ours.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}


def quiet_libraries(progress_bars: bool = False) -> None:
    """Silence the libraries' load reports (and their progress bars unless `progress_bars`): the CLI and
    the app report for themselves. Environment switches, so that nothing heavy is imported here."""
    import os
    import sys

    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if not progress_bars:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bars too
    for name in ("transformers", "diffusers"):
        module = sys.modules.get(name)
        if module is not None:  # already imported: the environment is read at import time only
            module.logging.set_verbosity_error()


def print_json(payload: dict[str, Any]) -> None:
    """The single JSON object of `--json` mode."""
    sys.stdout.write(json.dumps(payload, indent=None, sort_keys=True, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fashion_rag", description="Fashion-RAG studio command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"fashion_rag.commands.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        quiet_libraries(progress_bars=args.command == "weights")
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as error:
        print(f"error: {user_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
