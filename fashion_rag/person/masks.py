"""The garment mask from an ATR label map and keypoints: the Dress Code recipe, docs/recipe.md mask rules 1-7.

Pure functions over numpy arrays (frame size, 512x384 by default). Keypoints are (18, 2) COCO-18 (x, y)
frame pixels with NaN for missing (see pose.py). Each rule is one function:

1. kept regions: `HEAD_LABELS`, `ALWAYS_FIXED_LABELS`
2. garment region per category: `GARMENT_LABELS`, `CATEGORY_FIXED_LABELS`
3. the arms: `draw_arms` (polyline 7-6-5-2-3-4, width 45, round joints); arm pixels outside it are fixed
4. the neck: `split_head` (line through the shoulders; head pixels more than 20 px above it stay fixed)
5. `dilate` (5x5 ones, 5 iterations)
6. mask = dilated region minus fixed pixels: `finish_mask`
7. bounding-box variant: `box_variant`

`garment_mask_from_labels` runs them in order. `check_body_visible` refuses a category whose body region
is not in the photo (e.g. lower_body on a half-body portrait) before any mask is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from fashion_rag.errors import InputError, check_category
from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH
from fashion_rag.person.pose import COCO18_NAMES

# ATR labels (docs/recipe.md, "Mask"), as the clothes parser outputs them.
BACKGROUND, HAT, HAIR, SUNGLASSES, UPPER_CLOTHES, SKIRT, PANTS, DRESS, BELT = range(9)
LEFT_SHOE, RIGHT_SHOE, FACE, LEFT_LEG, RIGHT_LEG, LEFT_ARM, RIGHT_ARM, BAG, SCARF = range(9, 18)
NUM_ATR_LABELS = 18

HEAD_LABELS = (HAT, HAIR, SUNGLASSES, FACE)
ALWAYS_FIXED_LABELS = (HAIR, LEFT_SHOE, RIGHT_SHOE, HAT, SUNGLASSES, SCARF, BAG)
ARM_LABELS = (LEFT_ARM, RIGHT_ARM)
GARMENT_LABELS: dict[str, tuple[int, ...]] = {
    "dresses": (DRESS, LEFT_LEG, RIGHT_LEG),
    "upper_body": (UPPER_CLOTHES,),
    "lower_body": (PANTS, LEFT_LEG, RIGHT_LEG),
}
CATEGORY_FIXED_LABELS: dict[str, tuple[int, ...]] = {
    "dresses": (),
    "upper_body": (SKIRT, PANTS),  # the other garment
    "lower_body": (UPPER_CLOTHES, LEFT_ARM, RIGHT_ARM),  # the other garment and both arms
}
CATEGORIES_WITH_ARMS = ("dresses", "upper_body")  # steps 3 and 4 apply to these

# COCO-18 indices used below.
RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST, LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST = 2, 3, 4, 5, 6, 7
RIGHT_HIP, RIGHT_KNEE, RIGHT_ANKLE, LEFT_HIP, LEFT_KNEE, LEFT_ANKLE = 8, 9, 10, 11, 12, 13
ARM_WIDTH = 45  # px at 512x384, mask rule 3
NECK_MARGIN = 20  # px, mask rule 4
DILATION_KERNEL = np.ones((5, 5), dtype=np.uint8)  # mask rule 5
DILATION_ITERATIONS = 5

# What each category needs to see. Lower body: both hips and at least one knee.
REQUIRED_KEYPOINTS: dict[str, tuple[tuple[int, ...], ...]] = {
    "upper_body": ((RIGHT_SHOULDER,), (LEFT_SHOULDER,)),
    "dresses": ((RIGHT_SHOULDER,), (LEFT_SHOULDER,), (RIGHT_HIP,), (LEFT_HIP,)),
    "lower_body": ((RIGHT_HIP,), (LEFT_HIP,), (RIGHT_KNEE, LEFT_KNEE)),
}
REQUIRED_DESCRIPTION = {
    "upper_body": ("the shoulders", "down to the chest at least", "lower_body or dresses need more of the body"),
    "dresses": ("the shoulders and hips", "down to the knees", "upper_body works on a half-body photo"),
    "lower_body": ("the hips and knees", "down to the knees at least", "upper_body works on a half-body photo"),
}


@dataclass(frozen=True)
class MaskResult:
    """A garment mask in both variants, and the pixels that must never change. Bool arrays (H, W)."""

    precise: np.ndarray  # dilated garment region minus fixed pixels (mask rule 6)
    box: np.ndarray  # every non-fixed pixel in the tight box of `precise` (mask rule 7; the default)
    fixed: np.ndarray  # face, hair, hands, shoes, the other garment, ...
    notes: tuple[str, ...] = ()  # what the recipe had to skip or guess, for the user

    def variant(self, name: str) -> np.ndarray:
        """`precise` or `box` by name."""
        if name not in ("box", "precise"):
            raise InputError(f"mask variant {name!r}: use 'box' or 'precise'")
        return self.box if name == "box" else self.precise


def present(keypoints: np.ndarray, index: int) -> bool:
    return bool(np.isfinite(keypoints[index]).all())


def check_keypoints(keypoints: np.ndarray) -> np.ndarray:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != (len(COCO18_NAMES), 2):
        raise ValueError(f"keypoints must be (18, 2) COCO-18 (x, y) with NaN for missing, got {keypoints.shape}")
    return keypoints


def check_body_visible(keypoints: np.ndarray, category: str) -> None:
    """Raise InputError naming what is missing when the category's body region is not in the photo."""
    check_category(category)
    keypoints = check_keypoints(keypoints)
    missing = [
        " / ".join(COCO18_NAMES[i].replace("_", " ") for i in group)
        for group in REQUIRED_KEYPOINTS[category]
        if not any(present(keypoints, i) for i in group)
    ]
    if missing:
        needs, extent, hint = REQUIRED_DESCRIPTION[category]
        raise InputError(
            f"category {category} needs {needs} in the photo, but these are not visible: {', '.join(missing)}; "
            f"use a photo that shows the person {extent} ({hint})"
        )


# --------------------------------------------------------------------------------------------------
# Step 3: the arms


def arm_chains(keypoints: np.ndarray) -> list[list[int]]:
    """The keypoint indices of the arms polyline 7-6-5-2-3-4, dropping a wrist or elbow that is missing.

    As mask rule 3 says, a missing elbow is simply skipped (the wrist joins its shoulder). The rule is
    silent on shoulders: a missing shoulder drops its whole arm (there is nothing to hang it on), so with
    both shoulders one chain runs through both arms and with one shoulder only that arm is drawn
    (docs/recipe.md).
    """
    keypoints = check_keypoints(keypoints)

    def arm(shoulder: int, elbow: int, wrist: int) -> list[int]:
        if not present(keypoints, shoulder):
            return []
        return [shoulder] + [joint for joint in (elbow, wrist) if present(keypoints, joint)]

    left = arm(LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST)[::-1]  # wrist -> shoulder
    right = arm(RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)  # shoulder -> wrist
    if left and right:
        return [left + right]
    return [chain for chain in (left, right) if len(chain) > 1]


def draw_arms(
    keypoints: np.ndarray, shape: tuple[int, int] = (FRAME_HEIGHT, FRAME_WIDTH), width: int = ARM_WIDTH
) -> np.ndarray:
    """(H, W) bool: the arms polyline drawn `width` px wide with round joints (PIL, as Dress Code does).

    Coordinates are truncated to whole pixels like the official code; the ends are flat (PIL line caps).
    """
    keypoints = check_keypoints(keypoints)
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for chain in arm_chains(keypoints):
        points = [(int(np.floor(keypoints[i, 0])), int(np.floor(keypoints[i, 1]))) for i in chain]
        draw.line(points, fill=255, width=width, joint="curve")
    return np.asarray(canvas) > 0


# --------------------------------------------------------------------------------------------------
# Step 4: the neck


def split_head(head: np.ndarray, keypoints: np.ndarray, margin: int = NECK_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Split the head region by the shoulder line: (stays fixed, joins the garment region).

    In column x the line is at y(x) = m x + c through both shoulders; head pixels in rows from
    floor(y(x) - margin) down join the garment (the neck), those above stay fixed. Without both shoulders
    (or with shoulders one above the other) the whole head stays fixed.
    """
    keypoints = check_keypoints(keypoints)
    if not (present(keypoints, RIGHT_SHOULDER) and present(keypoints, LEFT_SHOULDER)):
        return head.copy(), np.zeros_like(head)
    (x1, y1), (x2, y2) = keypoints[RIGHT_SHOULDER], keypoints[LEFT_SHOULDER]
    if abs(x2 - x1) < 1.0:
        return head.copy(), np.zeros_like(head)
    slope = (y2 - y1) / (x2 - x1)
    intercept = y1 - slope * x1
    height, width = head.shape
    cut = np.floor(np.arange(width) * slope + intercept - margin)  # first garment row of each column
    below = np.arange(height)[:, None] >= np.clip(cut, 0, height)[None, :]
    return head & ~below, head & below


# --------------------------------------------------------------------------------------------------
# Steps 5 to 7


def dilate(region: np.ndarray, iterations: int = DILATION_ITERATIONS) -> np.ndarray:
    """Bool (H, W) dilated with a 5x5 square of ones `iterations` times (a (20+1)-px square for 5)."""
    return cv2.dilate(region.astype(np.uint8), DILATION_KERNEL, iterations=iterations) > 0


def box_variant(mask: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Every pixel inside the tight bounding box of `mask` that is not fixed (empty if `mask` is)."""
    box = np.zeros_like(mask, dtype=bool)
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if rows.any():
        top, bottom = np.flatnonzero(rows)[[0, -1]]
        left, right = np.flatnonzero(cols)[[0, -1]]
        box[top : bottom + 1, left : right + 1] = True
    return box & ~fixed


def finish_mask(garment: np.ndarray, fixed: np.ndarray, notes: tuple[str, ...] = ()) -> MaskResult:
    """Steps 5-7: dilate the garment region, remove fixed pixels, and make the box variant."""
    precise = dilate(garment) & ~fixed
    return MaskResult(precise=precise, box=box_variant(precise, fixed), fixed=fixed.copy(), notes=notes)


def garment_mask_from_labels(labels: np.ndarray, keypoints: np.ndarray, category: str) -> MaskResult:
    """The Dress Code inpainting mask of `category` from an (H, W) ATR label map and (18, 2) keypoints."""
    check_category(category)
    keypoints = check_keypoints(keypoints)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an (H, W) integer ATR label map, got {labels.shape} {labels.dtype}")
    notes: list[str] = []
    # Steps 1 and 2.
    head = np.isin(labels, HEAD_LABELS)
    fixed = np.isin(labels, ALWAYS_FIXED_LABELS + CATEGORY_FIXED_LABELS[category])
    garment = np.isin(labels, GARMENT_LABELS[category])
    if category in CATEGORIES_WITH_ARMS:
        # Step 3: the arms polyline joins the garment; arm pixels outside it (the hands) are fixed.
        arms = draw_arms(keypoints, labels.shape)
        garment |= arms
        fixed |= np.isin(labels, ARM_LABELS) & ~arms
        # Step 4: the neck.
        head_fixed, neck = split_head(head, keypoints)
        if not neck.any() and not (present(keypoints, RIGHT_SHOULDER) and present(keypoints, LEFT_SHOULDER)):
            notes.append("shoulders not both found: the neck was kept unchanged")
        garment |= neck
        fixed |= head_fixed
    else:
        fixed |= head
    return finish_mask(garment, fixed, tuple(notes))
