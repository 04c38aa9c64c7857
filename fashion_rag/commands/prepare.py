"""`prepare --person PHOTO --category CAT --out-dir DIR [--json]`: frame, mask, previews and keypoints."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.config import CATEGORIES, runtime_from_env


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare", help="frame a person photo and make its pose map and garment mask (no generation)"
    )
    parser.add_argument("--person", required=True, type=Path, help="the person photo (any common image format)")
    parser.add_argument("--category", required=True, choices=CATEGORIES, help="which garment will be replaced")
    parser.add_argument("--out-dir", required=True, type=Path, help="where frame.png, mask.png, ... are written")
    parser.add_argument(
        "--mask-variant",
        choices=("box", "precise"),
        default="box",
        help="box: every non-fixed pixel in the mask's bounding box (the published evaluation); precise: the "
        "dilated garment region (default: box)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (paths, notes, timings)")
    add_models_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fashion_rag.person.pose import COCO18_NAMES, draw_skeleton
    from fashion_rag.person.prepare import PersonPreparer, mask_image, overlay_preview
    from fashion_rag.weights import ModelSources

    started = time.perf_counter()
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir)
    sources = ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)
    # As the app's editor: a bundle's parser has random weights, so bundles take the offline mask path.
    preparer = PersonPreparer.from_sources(sources if sources.kind == "real" else None, runtime.device)
    loaded = time.perf_counter()
    prepared = preparer.prepare(args.person, args.category, mask_variant=args.mask_variant)

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "frame": out_dir / "frame.png",
        "mask": out_dir / "mask.png",
        "overlay": out_dir / "overlay.png",
        "pose": out_dir / "pose.png",
        "keypoints": out_dir / "keypoints.json",
    }
    prepared.frame.save(paths["frame"])
    mask_image(prepared.mask).save(paths["mask"])
    overlay_preview(prepared).save(paths["overlay"])
    draw_skeleton(prepared.frame, prepared.keypoints).save(paths["pose"])
    keypoints = [
        {
            "index": index,
            "name": name,
            "x": float(x) if np.isfinite(x) else None,
            "y": float(y) if np.isfinite(y) else None,
        }
        for index, (name, (x, y)) in enumerate(zip(COCO18_NAMES, prepared.keypoints, strict=True))
    ]
    record = {
        "format": "openpose-coco18",
        "coordinates": "frame pixels, pixel (i, j) centred at (i, j); null = not found",
        "frame_size": [prepared.transform.frame_width, prepared.transform.frame_height],
        "keypoints": keypoints,
        "transform": prepared.transform.to_dict(),
        "person_box": list(prepared.person_box) if prepared.person_box else None,
        "category": prepared.category,
        "mask_source": prepared.mask_source,
        "mask_variant": prepared.mask_variant,
        "notes": prepared.notes,
    }
    paths["keypoints"].write_text(json.dumps(record, indent=2) + "\n")

    timings = {"load_models_ms": round((loaded - started) * 1000, 2)}
    timings.update({f"{name}_ms": value for name, value in prepared.timings.items()})
    timings["wall_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if args.json:
        print_json(
            {
                "paths": {name: str(path) for name, path in paths.items()},
                "category": prepared.category,
                "mask_source": prepared.mask_source,
                "mask_variant": prepared.mask_variant,
                "mask_fraction": round(float(prepared.mask.mean()), 4),
                "notes": prepared.notes,
                "timings": timings,
            }
        )
    else:
        print(f"prepared {args.person} for {prepared.category}: mask from the {prepared.mask_source} path")
        for note in prepared.notes:
            print(f"  note: {note}")
        print(f"wrote {', '.join(path.name for path in paths.values())} to {out_dir}")
    return 0
