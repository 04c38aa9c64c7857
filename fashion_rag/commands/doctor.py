"""`doctor [--models SRC] [--json]`: the first thing to run on a new machine, and what a bug report pastes.

It checks, in order, and reports every check (ok / FAIL / skip):

1. the machine: device, dtype, free memory and disk, the versions of the libraries that load the models;
2. every model part: where it was found, its revision or commit, and for each file its size and sha256,
   compared with the lock file (weights/), the bundle's own record (bundle.json) and the published values
   (weights/sources.json);
3. every part loaded through the loaders the product uses (strict UNet and adapter loads that name bad
   keys; the UNet's tensor count: 686 for the published checkpoint, its own config's for a bundle);
4. a short smoke edit of an example photo: output finite and not constant, pixels outside the mask unchanged;
5. with the real weights, semantic checks that random weights fail: the retrieval encoder ranks each
   colour's shirt first for "a <colour> shirt"; the parser labels the example person's face as face.
   With a bundle they are skipped, and the report says why.

Exit status 0 only when nothing failed; each failure is one line with its fix.

The checks live by section in doctor_files.py (1, 2), doctor_loading.py (3) and doctor_smoke.py (4, 5); this
module holds the command: its flags, the order of the checks and the printed report.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.commands.doctor_files import check_environment, check_files
from fashion_rag.commands.doctor_loading import check_loading
from fashion_rag.commands.doctor_report import Report
from fashion_rag.commands.doctor_smoke import check_semantics, check_smoke_edit
from fashion_rag.config import runtime_from_env


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check the machine, the model files, loading and a smoke edit")
    add_models_flags(parser)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--steps", type=int, default=3, help="denoising steps of the smoke edit (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every check")
    parser.set_defaults(run=run)


def diagnose(models: str, weights_dir: Path, repo_overrides: dict, device: str = "auto", steps: int = 3) -> Report:
    from fashion_rag.devices import default_dtype, pick_device
    from fashion_rag.weights import ModelSources

    report = Report()
    sources = ModelSources(models, weights_dir, repo_overrides)
    torch_device = pick_device(device)
    dtype = default_dtype(torch_device)
    check_environment(report, torch_device, dtype, sources.weights_dir)
    locations = check_files(report, sources)
    loaded = check_loading(report, sources, locations, torch_device, dtype)
    check_smoke_edit(report, sources, loaded, torch_device, dtype, steps)
    check_semantics(report, sources, loaded)
    return report


def run(args: argparse.Namespace) -> int:
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir, device=args.device)
    started = time.perf_counter()
    report = diagnose(runtime.models, runtime.weights_dir, runtime.repo_overrides, runtime.device, args.steps)
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print_json(
            {
                "models": runtime.models,
                "environment": report.environment,
                "parts": report.parts,
                "checks": [asdict(c) for c in report.checks],
                "problems": report.problems,
                "ok": not report.problems,
                "seconds": seconds,
            }
        )
    else:
        print(f"fashion-rag doctor: models {runtime.models}, weights dir {runtime.weights_dir}")
        section = None
        for check in report.checks:
            if check.section != section:
                section = check.section
                print(f"{section}:")
            print(f"  {check.status:4}  {check.name}: {check.detail}")
        print(f"{len(report.problems)} problem(s) in {seconds} s" + (":" if report.problems else ""))
        for line in report.problems:
            print(f"  {line}")
    return 1 if report.problems else 0
