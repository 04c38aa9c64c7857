"""What an edit hands back (issue 24 split it out of editor.py): the EditResult, the seed it used, its images
composed back onto the photo, and the recipe that reproduces it.

Nothing here loads or runs a model, so the modules that build or pass on results (request.py, outfit.py,
alternatives.py, studio/outfit.py) import this one rather than the editor.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fashion_rag.config import REPO_ROOT, AppSettings
from fashion_rag.errors import InputError
from fashion_rag.generation.compose import FEATHER_PX, feathered_alpha, paste_back, raw_output
from fashion_rag.person.mask_codec import encode_mask
from fashion_rag.weights import GENERATION_PARTS, ModelSources

MAX_SEED = 2**32 - 1


@dataclass
class EditResult:
    """Edited photos at the photo's own size, the raw decoded frames, and how they were made."""

    images: list[Image.Image]
    frames: list[Image.Image]
    seed: int
    timings: dict[str, float]
    recipe: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def check_seed(seed: int | None) -> int:
    """`seed`, or a fresh random one when None; InputError outside 0..2**32-1."""
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) <= MAX_SEED:
        raise InputError(f"seed={seed!r}: use a whole number from 0 to {MAX_SEED}, or leave it empty for a random one")
    return int(seed)


def compose_images(person, frames: np.ndarray, request) -> tuple[list[Image.Image], list[Image.Image]]:
    """(images at the photo's size, raw frames) from the pipeline's (n, 512, 384, 3) frames in [0, 1]: each
    pasted into the original outside the feathered mask, or, when the EditRequest asks for no paste-back, the
    whole frame unframed."""
    original = np.asarray(person.original.convert("RGB"))
    unframe = person.transform.unframe
    alpha = feathered_alpha(person.mask, FEATHER_PX)
    images, raw_frames = [], []
    for frame in frames:
        raw_frames.append(Image.fromarray(np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)))
        if request.paste_back:
            images.append(Image.fromarray(paste_back(original, frame, alpha, unframe)))
        else:
            images.append(Image.fromarray(raw_output(original.shape, frame, unframe)))
    return images, raw_frames


def edit_recipe(settings: AppSettings, sources: ModelSources, request) -> dict[str, Any]:
    """Everything needed to reproduce an edit from the CLI: the EditRequest without pixels (its seed the one the
    edit used, its person prepared), then what the edit adds: the prompt kind, the mask and its framing, the
    models and the catalog. `EditRequest.from_dict` reads it back."""
    person = request.person  # a PersonFrame (fashion_rag/request.py)
    uploaded = len(request.garment_images)
    return {
        **request.to_dict(pixels=False),
        # Garment tokens rule 8 (docs/recipe.md): with no garment the description drives the edit.
        "prompt": "text-only" if not request.garment_ids and not uploaded else "garment-tokens",
        "mask_source": person.mask_source,
        # The mask this edit used (automatic, painted or grown) and the framing it belongs to.
        "mask": encode_mask(person.mask),
        "transform": person.transform.to_dict(),
        "models": public_name(sources.models),
        "model_sources": {
            name: {"repo_id": sources.part(name).repo_id, "revision": sources.part(name).revision}
            for name in GENERATION_PARTS
        },
        "catalog": public_name(settings.catalog_dir),
    }


def public_name(location: str | Path) -> str:
    """A folder as a recipe names it: relative to the repository when inside it, else its own name.

    Recipes are handed to visitors, so they carry no absolute server path; "default" stays as it is.
    """
    if str(location) == "default":
        return "default"
    path = Path(location).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name
