"""`edit --person PHOTO --category CAT (--text "..." [--pick 1,2 | --text-only] | --garment IMG ... | --garment-id ID ...) --out OUT.png`.

`--text` alone searches the catalog and edits with the picked ranks (default: the best match).
`--text "..." --text-only` skips the catalog: the description drives the edit through the
text-only prompt (docs/recipe.md, garment tokens rule 8), and the recipe says `"prompt": "text-only"`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.commands.edit_outfit import replay as replay_outfit
from fashion_rag.config import (
    CATEGORIES,
    DEFAULT_GUIDANCE,
    DEFAULT_SCHEDULER,
    DEFAULT_STEPS,
    app_from_env,
    runtime_from_env,
)
from fashion_rag.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("edit", help="dress the person in garments from the catalog or your own images")
    parser.add_argument("--person", required=True, type=Path, help="photo of a person")
    parser.add_argument("--category", required=True, choices=CATEGORIES)
    parser.add_argument("--text", default="", help="garment description: searches the catalog (see --pick)")
    parser.add_argument("--pick", default=None, help="ranks of the search results to use, e.g. 1,2 (default: 1)")
    parser.add_argument(
        "--text-only", action="store_true", help="no catalog garment: the description alone drives the edit"
    )
    parser.add_argument("--garment", action="append", type=Path, default=[], help="your own garment image (repeatable)")
    parser.add_argument("--garment-id", action="append", default=[], help="catalog garment id (repeatable)")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="a recipe JSON from the app: its garments, seed and options (an outfit recipe repeats each of its steps)",
    )
    parser.add_argument(
        "--mask", type=Path, help="hand-made mask image (white = regenerate) instead of the automatic one"
    )
    parser.add_argument("--mask-variant", choices=("box", "precise"), default="box")
    parser.add_argument("--out", required=True, type=Path, help="output PNG; more images get -2, -3 … suffixes")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a random one, printed)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--scheduler", choices=("ddim", "dpm++"), default=DEFAULT_SCHEDULER)
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument(
        "--no-paste-back", action="store_true", help="return the raw decoded frame outside the mask too"
    )
    parser.add_argument("--index", type=Path, default=None, help="catalog index folder (default: <catalog>/index)")
    parser.add_argument("--catalog", type=Path, default=None, help="catalog folder (default: examples/catalog)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: auto)")
    parser.add_argument("--low-vram", action="store_true", help="model CPU offload and VAE slicing")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU; slow first edit)")
    parser.add_argument("--json", action="store_true", help="print one JSON object: paths, seed, timings")
    add_models_flags(parser)
    parser.set_defaults(run=run)


def apply_recipe(args: argparse.Namespace) -> dict:
    """Fill garments, seed and options from a recipe file: an EditRequest's dict without pixels (the person
    and any uploaded garments come from the flags). The recipe is returned for `recipe_mask` (an explicit
    --mask still wins)."""
    from fashion_rag.person.photo import load_photo
    from fashion_rag.request import EditRequest

    recipe = json.loads(args.recipe.read_text())
    uploaded = int(recipe.get("uploaded_garments") or 0)
    if uploaded and len(args.garment) != uploaded:
        raise InputError(f"this recipe used {uploaded} uploaded garment image(s): pass them again with --garment")
    garments = tuple(load_photo(path) for path in args.garment)
    request = EditRequest.from_dict(recipe, photo=load_photo(args.person), garment_images=garments)
    args.garment_id = list(request.garment_ids)
    args.category = request.category
    args.seed, args.steps, args.guidance = request.seed, request.steps, request.guidance
    args.scheduler, args.num_images, args.no_paste_back = request.scheduler, request.num_images, not request.paste_back
    args.text = request.description
    args.text_only = recipe.get("prompt") == "text-only"  # replayed as made, not re-searched
    args.mask_variant = recipe.get("mask_variant", args.mask_variant)
    return recipe


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from fashion_rag.editor import Editor
    from fashion_rag.person.photo import load_photo
    from fashion_rag.request import EditRequest, PersonFrame, recipe_mask

    if args.recipe is not None and "outfit" in (outfit := json.loads(args.recipe.read_text())):
        return replay_outfit(args, outfit)  # an outfit recipe: its steps in turn (fashion_rag/outfit.py)
    recipe = apply_recipe(args) if args.recipe is not None else {}
    runtime = runtime_from_env(
        models=args.models,
        weights_dir=args.weights_dir,
        device=args.device,
        low_vram=args.low_vram or None,
        compile_unet=args.compile or None,
    )
    settings = app_from_env(runtime=runtime, catalog_dir=args.catalog, index_dir=args.index)
    editor = Editor.from_settings(settings)
    timings: dict[str, float] = {}

    garment_ids = list(args.garment_id)
    hits = []
    check_text_only(args)
    if args.text and not garment_ids and not args.garment and not args.text_only:
        started = time.perf_counter()
        ranks = _parse_pick(args.pick or "1")
        hits = editor.search(args.text, args.category, k=max(ranks))
        garment_ids = [hits[rank - 1].id for rank in ranks]
        timings["search_s"] = round(time.perf_counter() - started, 4)
    photo, person, mask = load_photo(args.person), None, None
    if args.mask is not None:  # the brightest channel, as the app's mask upload reads it
        mask = np.asarray(load_photo(args.mask, name=str(args.mask))).max(axis=2) > 127
    elif recipe.get("mask"):  # the mask the recipe's edit used, on a photo framed as the recipe's
        prepared = editor.prepare(photo, args.category, mask_variant=args.mask_variant)
        person = PersonFrame.of(recipe_mask(editor, prepared, recipe))
    request = EditRequest(
        args.category,
        photo=None if person else photo,
        person=person,
        mask=mask,
        mask_variant=args.mask_variant,
        garment_ids=tuple(garment_ids),
        garment_images=tuple(load_photo(path) for path in args.garment),
        description=args.text,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        scheduler=args.scheduler,
        num_images=args.num_images,
        paste_back=not args.no_paste_back,
    )
    bars: list[tqdm] = []  # opened at the first step: an edit refused before it prints its one error line only

    def track(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="denoising", unit="step", disable=args.json, file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        result = editor.run(request, progress=track)
    finally:
        for bar in bars:
            bar.close()
    timings.update(result.timings)
    write_outputs(args, result, garment_ids, hits, timings)
    return 0


def write_outputs(args: argparse.Namespace, result, garment_ids: list[str], hits: list, timings: dict) -> None:
    """The images (-2, -3 … for more samples) and the recipe beside them, then a JSON object or one line."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(result.images):
        path = args.out if index == 0 else args.out.with_name(f"{args.out.stem}-{index + 1}{args.out.suffix}")
        image.save(path)
        paths.append(str(path))
    recipe_path = args.out.with_suffix(".recipe.json")
    recipe_path.write_text(json.dumps(result.recipe, indent=2) + "\n")
    if args.json:
        print_json(
            {
                "outputs": paths,
                "recipe": str(recipe_path),
                "seed": result.seed,
                "garment_ids": garment_ids,
                "prompt": result.recipe["prompt"],
                "search": [{"id": hit.id, "score": hit.score, "chunk": hit.chunk} for hit in hits],
                "mask_source": result.recipe["mask_source"],
                "notes": list(result.notes),
                "timings": timings,
            }
        )
    else:
        how = "text-only edit from the description" if result.recipe["prompt"] == "text-only" else "garment edit"
        print(f"wrote {', '.join(paths)} ({how}, seed {result.seed}); recipe in {recipe_path}")


def check_text_only(args: argparse.Namespace) -> None:
    """--text-only needs a description and excludes garments and --pick."""
    if not args.text_only:
        return
    if not any(ch.isalpha() for ch in args.text or ""):
        raise InputError('--text-only needs a description: --text "red floral summer dress"')
    if args.garment or args.garment_id or args.pick is not None:
        raise InputError("--text-only uses no garment: leave out --garment, --garment-id and --pick")


def _parse_pick(text: str) -> list[int]:
    try:
        ranks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise InputError(f"--pick {text!r}: give result ranks such as 1 or 1,3") from error
    if not ranks or any(rank < 1 for rank in ranks) or len(set(ranks)) != len(ranks):
        raise InputError(f"--pick {text!r}: give 1 to 3 different ranks from 1 upwards, such as 1,3")
    return ranks
