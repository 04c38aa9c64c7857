"""What an edit accepts: the option ranges, checked before anything heavy is imported or loaded.

A module of its own so that the editor (which the app imports before its page is up) checks a request
without importing torch or diffusers; the pipeline and the loader use the same names.
"""

from __future__ import annotations

import math

STEPS_RANGE = (1, 150)
GUIDANCE_RANGE = (0.0, 30.0)
MAX_IMAGES = 4  # images per edit; the CFG batch is twice this (the GPU path captures one graph per batch)
MAX_GARMENTS = 3  # garments per edit (docs/recipe.md, garment tokens rule 4: 1 to 3)
SCHEDULERS = ("ddim", "dpm++")


def check_options(steps: int, guidance: float, num_images: int) -> None:
    """InputError naming the bad value and the accepted range, for steps, guidance and images."""
    from fashion_rag.errors import InputError

    if not isinstance(steps, int) or not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise InputError(f"steps={steps!r}: use a whole number from {STEPS_RANGE[0]} to {STEPS_RANGE[1]}")
    if not GUIDANCE_RANGE[0] <= float(guidance) <= GUIDANCE_RANGE[1] or not math.isfinite(guidance):
        raise InputError(f"guidance={guidance!r}: use a number from {GUIDANCE_RANGE[0]} to {GUIDANCE_RANGE[1]}")
    if not isinstance(num_images, int) or not 1 <= num_images <= MAX_IMAGES:
        raise InputError(f"num_images={num_images!r}: use 1 to {MAX_IMAGES}")
