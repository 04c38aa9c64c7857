"""`batch --person PHOTO ... --category CAT (--garment-id ID ... | --text "..." --top K) [--each-garment] --out-dir DIR`.

Many edits in one command: every photo with all the garments, or (--each-garment, implied by --top) with each
garment in turn. Each result is written and reported as it finishes, with progress. Locally the jobs run in
turn; with `--ray-address ADDR` they go to the worker pool of a running serve-mode app (`python app.py --serve`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.config import (
    CATEGORIES,
    DEFAULT_GUIDANCE,
    DEFAULT_SCHEDULER,
    DEFAULT_STEPS,
    app_from_env,
    runtime_from_env,
)
from fashion_rag.errors import InputError

SERVE_APP = "fashion-rag"  # the application name `python app.py --serve` runs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("batch", help="many edits at once: photos x garments, results as they finish")
    parser.add_argument("--person", action="append", type=Path, required=True, help="person photo (repeatable)")
    parser.add_argument("--category", required=True, choices=CATEGORIES)
    parser.add_argument("--garment-id", action="append", default=[], help="catalog garment id (repeatable)")
    parser.add_argument("--text", default="", help="search the catalog for this description (with --top)")
    parser.add_argument("--top", type=int, default=None, help="with --text: each of the top K results in turn")
    parser.add_argument("--each-garment", action="store_true", help="one job per garment, not all garments at once")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the images and recipes go")
    parser.add_argument("--seed", type=int, default=None, help="one seed for every job (default: random per job)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--scheduler", choices=("ddim", "dpm++"), default=DEFAULT_SCHEDULER)
    parser.add_argument("--ray-address", default=None, help="run on the pool of a serve-mode app on this Ray cluster")
    parser.add_argument("--index", type=Path, default=None, help="catalog index folder (default: <catalog>/index)")
    parser.add_argument("--catalog", type=Path, default=None, help="catalog folder (default: examples/catalog)")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end: every job")
    add_models_flags(parser)
    parser.set_defaults(run=run)


def pool_of(editor, address: str):
    """A PooledEditor over the EditWorker pool of the serve-mode app on the cluster at `address`."""
    import ray
    from ray import serve

    from fashion_rag.serve.app import runtime_env
    from fashion_rag.serve.pool import PooledEditor

    ray.init(address=address, runtime_env=runtime_env(), logging_level="WARNING")
    handle = serve.get_deployment_handle("EditWorker", app_name=SERVE_APP)
    return PooledEditor(editor, handle, pool_size=max(1, int(ray.cluster_resources().get("GPU", 1))))


def run(args: argparse.Namespace) -> int:
    from fashion_rag.batch import plan_jobs, run_batch
    from fashion_rag.editor import Editor
    from fashion_rag.person.photo import load_photo

    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir, device=args.device)
    editor = Editor.from_settings(app_from_env(runtime=runtime, catalog_dir=args.catalog, index_dir=args.index))
    ids = list(args.garment_id)
    if args.top is not None:
        if not args.text or ids or args.top < 1:
            raise InputError('--top K needs --text "..." (and no --garment-id), with K from 1 upwards')
        ids = [hit.id for hit in editor.search(args.text, args.category, k=args.top)]
    photos = [load_photo(path) for path in args.person]
    requests = plan_jobs(
        photos,
        args.category,
        ids,
        each_garment=args.each_garment or args.top is not None,
        description=args.text,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        scheduler=args.scheduler,
    )
    runner = pool_of(editor, args.ray_address) if args.ray_address else editor
    args.out_dir.mkdir(parents=True, exist_ok=True)
    groups = len(requests) // len(photos)
    jobs, failed = [], 0
    for done, (index, result, error) in enumerate(run_batch(runner, requests), start=1):
        photo = args.person[index // groups]
        job = {"job": index, "person": str(photo), "garment_ids": list(requests[index].garment_ids)}
        if error is None:
            stem = f"{index + 1:03d}-{photo.stem}-{'-'.join(requests[index].garment_ids) or 'text'}"
            job["outputs"] = [
                str(write(image, args.out_dir / f"{stem}-{n + 1}.png")) for n, image in enumerate(result.images)
            ]
            (args.out_dir / f"{stem}.recipe.json").write_text(json.dumps(result.recipe, indent=2) + "\n")
            job["seed"] = result.seed
        else:
            job["error"], failed = error, failed + 1
        jobs.append(job)
        if not args.json:
            print(
                f"[{done}/{len(requests)}] {photo.name} {','.join(job['garment_ids']) or 'text-only'}: "
                f"{job.get('error') or ', '.join(job['outputs'])}",
                file=sys.stdout,
                flush=True,
            )
    if args.json:
        print_json({"jobs": sorted(jobs, key=lambda job: job["job"]), "failed": failed})
    return 1 if failed else 0


def write(image, path: Path) -> Path:
    image.save(path)
    return path
