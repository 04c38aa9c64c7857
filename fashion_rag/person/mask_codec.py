"""A frame mask written into a recipe JSON and read back, bit for bit.

Run-length encoding in row-major order: `counts` (one string of space-separated whole numbers, so the
indented recipe keeps it on one line) alternates runs of unmasked and masked pixels, starting
with unmasked (so a mask whose first pixel is masked starts with 0). A 512x384 box mask is about two runs
per row (~1,000 numbers); a painted mask with strokes a few more per row. The recipe keeps the mask the
edit really used (the automatic variant, a painted one, or one grown with the mask tools), so
`edit --recipe` repeats it even where the automatic mask would come out differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fashion_rag.errors import InputError

MAX_MASK_PIXELS = 40_000_000  # a photo's limit (person/photo.py): a mask is never larger than its photo


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> {"width", "height", "counts"} (JSON-ready)."""
    flat = np.asarray(mask, dtype=bool).ravel()  # row-major
    # Positions where the value changes, with the ends: run lengths are their differences.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"width": int(mask.shape[1]), "height": int(mask.shape[0]), "counts": " ".join(map(str, counts))}


def decode_mask(data: Any) -> np.ndarray:
    """The (H, W) bool mask of `encode_mask`'s dict; InputError naming what is wrong with a broken one."""
    if not isinstance(data, dict) or not {"width", "height", "counts"} <= set(data):
        raise InputError("the recipe's mask must be an object with width, height and counts (run lengths)")
    width, height, counts = data["width"], data["height"], data["counts"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise InputError(f"the recipe's mask is {width!r}x{height!r}: width and height must be whole numbers > 0")
    if width * height > MAX_MASK_PIXELS:  # checked before the runs are expanded: a 100000x100000 mask is 10 GB
        raise InputError(f"the recipe's mask is {width}x{height}: at most {MAX_MASK_PIXELS // 1_000_000} megapixels")
    # ASCII digits only ('²'.isdigit() is True, int('²') fails), each run at most the mask's size in digits.
    digits = len(str(MAX_MASK_PIXELS))
    if not isinstance(counts, str) or not all(
        part.isascii() and part.isdigit() and len(part) <= digits for part in counts.split()
    ):
        raise InputError("the recipe's mask counts must be a string of whole numbers >= 0, space-separated")
    counts = [int(part) for part in counts.split()]
    if sum(counts) != width * height:
        raise InputError(f"the recipe's mask counts add up to {sum(counts)} pixels, not {width}x{height}")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate unmasked, masked, …
    return np.repeat(values, counts).reshape(height, width)
