"""Loading an uploaded person photo: any source, any mode, upright, RGB.

`load_photo` accepts a path, raw bytes, a binary file object, a PIL image or a numpy array, and
returns a new RGB PIL image with the EXIF orientation applied (the caller's image is never changed).
The pixel count is checked from the file header before any pixel is decoded, so a decompression bomb
costs nothing. Conversions (`fashion_rag.images.to_rgb`, the project's one RGB conversion):

| mode | becomes |
|---|---|
| RGBA, LA, La, RGBa, PA, P with transparency | composited onto white |
| L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX | PIL's own conversion to RGB |
| I;16, I;16B, I;16L, I;16N, I (16-bit sources) | scaled 0..65535 -> 0..255 (rounded), then grey RGB |
| F (float) | 0..1 scaled to 0..255 when every value is within 0..1, else clipped to 0..255 |

Animated images (GIF, APNG, WebP) use their first frame.
"""

from __future__ import annotations

import io
import struct
import warnings
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fashion_rag.errors import InputError
from fashion_rag.images import to_rgb

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: above any phone camera, below a decompression bomb
ACCEPTED_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"
# What Pillow raises for files it cannot read. No bare except: these are the decoder's failure modes.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, Image.DecompressionBombError)

PhotoSource = str | PathLike | bytes | bytearray | BinaryIO | Image.Image | np.ndarray


def load_photo(source: PhotoSource, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Any upload -> a new upright RGB PIL image.

    `source` is a file path, bytes, a binary file object, a PIL image or an HxW / HxWx{1,3,4} uint8
    (or uint16, or float in 0..1) array. `name` labels the photo in error messages. Raises InputError for
    missing, empty, truncated, corrupt or non-image files and for images above `max_pixels`.
    """
    label = name or _describe(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels, label)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, label)
        try:
            copy = _first_frame_copy(source)  # copying decodes a lazily opened image
        except DECODE_ERRORS as error:
            raise InputError(f"{label} could not be decoded ({error}): upload a {ACCEPTED_FORMATS} file") from error
        return _decode(copy, label)
    image = _open(source, label, max_pixels)
    _check_pixels(image.size, max_pixels, label)  # from the header: no pixel is decoded yet
    return _decode(image, label)


def _describe(source: object) -> str:
    if isinstance(source, str | PathLike):
        return f"photo {str(source)!r}"
    if isinstance(source, bytes | bytearray):
        return f"uploaded photo ({len(source)} bytes)"
    return "photo"


def _read_bytes(source: PhotoSource, label: str) -> bytes:
    if isinstance(source, str | PathLike):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{label}: no such file")
        return path.read_bytes()
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    if hasattr(source, "read"):
        return source.read()
    raise InputError(
        f"{label}: cannot read a photo from a {type(source).__name__}; "
        "give a file path, bytes, a file object, a PIL image or a numpy array"
    )


def _open(source: PhotoSource, label: str, max_pixels: int) -> Image.Image:
    """Read the file into memory and parse its header only (Pillow decodes pixels lazily)."""
    data = _read_bytes(source, label)
    if not data:
        raise InputError(f"{label} is empty (0 bytes): upload a {ACCEPTED_FORMATS} image")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own, higher bomb limit; ours is checked next, from the header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:  # above Pillow's own limit, far above ours
        raise InputError(
            f"{label} is above the limit of {max_pixels / 1e6:.0f} megapixels ({error}): downscale it first"
        ) from error
    except UnidentifiedImageError as error:
        raise InputError(
            f"{label} is not an image that can be read: upload a {ACCEPTED_FORMATS} file "
            "(HEIC/AVIF phone photos: export them as JPEG first)"
        ) from error
    except DECODE_ERRORS as error:
        raise InputError(f"{label} could not be read ({error}): upload a {ACCEPTED_FORMATS} file") from error


def _check_pixels(size: tuple[int, int], max_pixels: int, label: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(f"{label} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(
            f"{label} is {width}x{height} = {width * height / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:.0f} megapixels: downscale it first"
        )


def _first_frame_copy(image: Image.Image) -> Image.Image:
    """A copy of frame 0 of the caller's image; the caller's image is left on the frame it was on."""
    position = image.tell() if getattr(image, "n_frames", 1) > 1 else 0
    if position == 0:
        return image.copy()
    try:
        image.seek(0)
        return image.copy()
    finally:
        image.seek(position)


def _decode(image: Image.Image, label: str) -> Image.Image:
    """Decode (frame 0, which Pillow opens on), apply the EXIF orientation, convert to RGB.

    `image` belongs to this module (freshly opened or copied), so it is transposed in place.
    """
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except DECODE_ERRORS as error:
        reason = str(error)
        if "truncated" in reason or isinstance(error, EOFError):
            raise InputError(f"{label} is truncated (the file ends early): upload the complete file") from error
        raise InputError(f"{label} is corrupt and could not be decoded ({reason})") from error
    return to_rgb(image)


def _from_array(array: np.ndarray, max_pixels: int, label: str) -> Image.Image:
    """An HxW or HxWxC array (C = 1, 3 or 4) as a new RGB image; 4 channels are RGBA onto white."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"{label}: an array of shape {array.shape} is not an image; use HxW, HxWx3 or HxWx4")
    _check_pixels((array.shape[1], array.shape[0]), max_pixels, label)
    if array.dtype == np.uint16:
        array = np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)
    elif array.dtype.kind == "f":
        array = np.rint(np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0) * 255.0).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        raise InputError(f"{label}: array dtype {array.dtype} is not supported; use uint8, uint16 or float in 0..1")
    image = Image.fromarray(np.ascontiguousarray(array))
    # Image.fromarray may share the caller's buffer (L, RGBA); RGB is copied. Copy once either way.
    return to_rgb(image) if image.mode != "RGB" else image.copy()


def fit_megapixels(photo: Image.Image, max_megapixels: float) -> tuple[Image.Image, str | None]:
    """`photo` scaled down (Pillow LANCZOS, aspect kept) to at most `max_megapixels`, and a note saying so.

    Returns the photo itself and None when it is within the limit. The scale is a pure function of the
    size, so decoding the same upload again gives the same pixels.
    """
    width, height = photo.size
    limit = max_megapixels * 1_000_000
    if width * height <= limit:
        return photo, None
    scale = (limit / (width * height)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    note = (
        f"The photo is {width}x{height} ({width * height / 1e6:.1f} MP): it was scaled to {size[0]}x{size[1]} "
        f"for editing (the studio edits photos of up to {max_megapixels:g} MP)."
    )
    return photo.resize(size, Image.Resampling.LANCZOS), note
