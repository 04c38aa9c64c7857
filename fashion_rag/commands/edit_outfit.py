"""`edit --recipe OUTFIT.json --person PHOTO --out OUT.png`: an outfit recipe (fashion_rag/outfit.py) made again.

Each step runs on the previous one's result with the recipe's garments, seed, options and masks; the outfit
is written to OUT.png, the first step's result to OUT-step1.png, and the recipe again beside them.
"""

from __future__ import annotations

import argparse
import json

from fashion_rag.cli import print_json
from fashion_rag.config import app_from_env, runtime_from_env


def replay(args: argparse.Namespace, recipe: dict) -> int:
    from fashion_rag.editor import Editor
    from fashion_rag.outfit import replay_outfit
    from fashion_rag.person.photo import load_photo

    runtime = runtime_from_env(
        models=args.models,
        weights_dir=args.weights_dir,
        device=args.device,
        low_vram=args.low_vram or None,
        compile_unet=args.compile or None,
    )
    editor = Editor.from_settings(app_from_env(runtime=runtime, catalog_dir=args.catalog, index_dir=args.index))
    garments = [load_photo(path) for path in args.garment]
    result = replay_outfit(editor, load_photo(args.person), recipe, garment_images=garments)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = [args.out.with_name(f"{args.out.stem}-step{i + 1}{args.out.suffix}") for i in range(len(result.images) - 1)]
    paths.append(args.out)
    for path, image in zip(paths, result.images, strict=True):
        image.save(path)
    recipe_path = args.out.with_suffix(".recipe.json")
    recipe_path.write_text(json.dumps(result.recipe, indent=2) + "\n")
    if args.json:
        print_json(
            {
                "outputs": [str(p) for p in paths],
                "recipe": str(recipe_path),
                "seed": result.seed,
                "prompt": "outfit",
                "notes": [n for r in result.results for n in r.notes],
            }
        )
    else:
        print(
            f"wrote the outfit to {args.out} (steps: {', '.join(map(str, paths))}, seed {result.seed}); "
            f"recipe in {recipe_path}"
        )
    return 0
