"""The project's image conventions, shared by every package: the model's frame size and the one RGB conversion.

A module of its own (with nothing but Pillow and numpy) so that `person`, `generation` and `catalog` use the
same definitions without importing one another.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FRAME_WIDTH = 384  # docs/recipe.md, sampler rule 3: the frame is 512 high by 384 wide
FRAME_HEIGHT = 512
FRAME_SIZE = (FRAME_WIDTH, FRAME_HEIGHT)  # (W, H), as Pillow's sizes are written

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB (a new image unless it already is RGB). Transparency goes onto white.

    The project's one RGB conversion: photos, garments (catalog, uploads, the token cache's key) and the
    retrieval index all go through it, so a transparent garment looks the same to every model (docs/recipe.md,
    garment tokens rule 1: on white).
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if (mode == "P" and "transparency" in image.info) or mode in ALPHA_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image.convert("I"), dtype=np.float64)
        grey = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        grey = np.rint(np.clip(values, 0, 255)).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return image.convert("RGB")
