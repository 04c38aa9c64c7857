"""The mask as the page's brush editor holds it, the API's mask upload, and the mask tools.

Page and API binarise a painted mask the same way: both become one 'L' image of mask values (a painted
layer's alpha, or the brightness of an opaque black-and-white mask) handed to `Editor.with_user_mask`,
which thresholds at 0.5. Antialiased brush edges therefore count where they are at least half painted,
through either door.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from fashion_rag.errors import InputError
from fashion_rag.person.photo import ACCEPTED_FORMATS, DECODE_ERRORS, DEFAULT_MAX_PIXELS, load_photo

MASK_RGBA = (255, 0, 64, 150)  # how the mask layer shows over the photo in the brush editor
MAX_GROW_PX = 64  # grow/shrink steps beyond this are refused (the frame is 384 px wide)


def mask_layer(mask: np.ndarray) -> Image.Image:
    """(512, 384) bool mask -> the RGBA layer the brush editor paints on."""
    layer = np.zeros(mask.shape + (4,), np.uint8)
    layer[mask] = MASK_RGBA
    return Image.fromarray(layer, "RGBA")


def editor_value(state, mask: np.ndarray) -> dict[str, Any]:
    """The brush editor's value for a PersonState: its frame as background (the padding marked, `shown_frame`),
    the mask as its one layer. Only the layer is read back: the edit always runs on the state's own frame."""
    return {"background": shown_frame(state), "layers": [mask_layer(mask)], "composite": None}


PADDING_GREY = 235  # the padding's hatch colour: lighter than any photo edge it covers


def shown_frame(state) -> Image.Image:
    """The frame as the page shows it: where it sticks out of the photo (a wide photo is padded above and
    below, docs/person.md) the repeated edge colour is faded and hatched, so that the streaks read as "not
    your photo" and not as a fault. The model still gets the repeated edge (the recipe's padding)."""
    outside = frame_padding(state.transform, state.frame.size)
    if not outside.any():
        return state.frame
    pixels = np.asarray(state.frame, dtype=np.float32)  # (512, 384, 3)
    rows, columns = np.indices(outside.shape)
    hatch = ((rows + columns) // 6) % 2 == 0  # diagonal stripes, 6 px wide
    faded = np.where(hatch[..., None], PADDING_GREY, 0.35 * pixels + 0.65 * PADDING_GREY)
    shown = np.where(outside[..., None], faded, pixels)
    return Image.fromarray(shown.round().astype(np.uint8), "RGB")


def frame_padding(transform, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool for a frame of `size` (W, H): True where the frame's pixel lies outside the photo."""
    width, height = size
    # The photo is an axis-aligned box in the frame: test each column on a row through the photo (that of its
    # first pixel), and each row on such a column.
    first_x, first_y = transform.to_frame(np.zeros((1, 2)))[0]  # the photo's pixel (0, 0) in the frame
    columns = np.stack([np.arange(width), np.full(width, first_y)], axis=1)  # (W, 2)
    rows = np.stack([np.full(height, first_x), np.arange(height)], axis=1)  # (H, 2)
    return ~(transform.in_photo(rows)[:, None] & transform.in_photo(columns)[None, :])


def values_image(image: Image.Image) -> Image.Image:
    """A mask image as 'L' mask values: the alpha of a painted (partly transparent) layer, else brightness."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha
    rgb = np.asarray(load_photo(image))  # 16-bit, CMYK, … as the photo loader converts them
    return Image.fromarray(rgb.max(axis=2))


def layers_mask(value: dict | None) -> Image.Image | None:
    """The brush editor's layers as one 'L' image of mask values (the most painted layer per pixel), or None."""
    if not value or not value.get("layers"):
        return None
    combined = None
    for layer in value["layers"]:
        if layer is None:
            continue
        values = values_image(layer if isinstance(layer, Image.Image) else Image.open(layer))
        combined = values if combined is None else Image.fromarray(np.maximum(np.asarray(combined), values))
    return combined


def binary(values: Image.Image) -> np.ndarray:
    """Mask values -> bool, at the threshold `Editor.with_user_mask` uses (0.5, i.e. >= 128)."""
    return np.asarray(values.convert("L")) >= 128


def load_mask(path: str | Path) -> Image.Image:
    """An uploaded mask file as 'L' mask values: pixel limit checked from the header, EXIF orientation applied."""
    label = Path(path).name
    try:
        with Image.open(path) as image:
            if image.width * image.height > DEFAULT_MAX_PIXELS:
                raise InputError(f"{label} is {image.width}x{image.height}: upload a mask of at most 40 megapixels")
            image.load()
            upright = ImageOps.exif_transpose(image)
    except InputError:
        raise
    except (FileNotFoundError, IsADirectoryError) as error:
        raise InputError(f"{label} could not be read: upload a {ACCEPTED_FORMATS} mask") from error
    except Image.DecompressionBombError as error:  # raised by open() for a header far above the limit
        raise InputError(f"{label} is far too large: upload a mask of at most 40 megapixels") from error
    except DECODE_ERRORS as error:
        detail = str(error).replace(str(path), label)  # Pillow names the file by its server path
        raise InputError(f"{label} is not a readable image ({detail}): upload a {ACCEPTED_FORMATS} mask") from error
    return values_image(upright)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask grown (pixels > 0) or shrunk (< 0) by a disc of that radius; bool (512, 384)."""
    pixels = int(pixels)
    if not -MAX_GROW_PX <= pixels <= MAX_GROW_PX:
        raise InputError(f"grow/shrink by {pixels} px: use 1 to {MAX_GROW_PX}")
    if pixels == 0:
        return mask.copy()
    radius = abs(pixels)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    operation = cv2.dilate if pixels > 0 else cv2.erode
    return operation(mask.astype(np.uint8), disc) > 0


def overlay(image: Image.Image, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 64)) -> Image.Image:
    """`image` with a same-size bool mask tinted over it (45%), as the preview of what was regenerated."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    array[mask] = 0.55 * array[mask] + 0.45 * np.asarray(colour, dtype=np.float32)
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
