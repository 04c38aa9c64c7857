"""Framing: find the person, fit a 3:4 crop around them, resize it to the model's 384x512 frame.

Coordinates. Pixel (i, j) of an image has its centre at (x=i, y=j) (the OpenPose and heatmap convention),
so it covers [i-0.5, i+0.5). A `FrameTransform` maps the crop box `[left, left+width) x [top, top+height)`
of the original (in pixel edges; it may stick out of the photo, where the edge colour is repeated) onto the
frame `[0, 384) x [0, 512)`, with one scale `s = 512 / height = 384 / width` for both axes:

    frame_x = (x + 0.5 - left) * s - 0.5        x = (frame_x + 0.5) / s + left - 0.5

Round trip. `unframe(frame(a), "nearest")` returns exactly `a` inside the crop whenever the crop is no
larger than the frame (`s >= 1`), because nearest sampling at pixel centres picks every original pixel back.
With `"auto"` (area when shrinking, cubic/linear when enlarging) it returns `a` up to resampling error.
Outside the crop `unframe` returns `background` (zeros by default), and zeros in a float mask stay exactly
zero (linear and area resampling are non-negative weighted means), so
`where(alpha == 0, original, alpha * edit + (1 - alpha) * original)` keeps every untouched pixel.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.images import FRAME_HEIGHT, FRAME_WIDTH, to_rgb

DEFAULT_MARGIN = 0.08  # share of the person's box height added around it before fitting 3:4
# frame_image box-reduces crops more than this many times the frame's size before the BICUBIC resize
# (Pillow's `reducing_gap`; its docs: from 3.0 "indistinguishable from fair resampling in most cases").
# tests/test_person_photo.py bounds the difference to a plain BICUBIC resize on textured input.
REDUCING_GAP = 3.0

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST_EXACT,  # pixel-centre nearest, like PIL's NEAREST
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


@dataclass(frozen=True)
class PersonBox:
    """A person's bounding box in pixel edges, `[x0, x1) x [y0, y1)`, mask area and centroid x (pixel edges)."""

    x0: float
    y0: float
    x1: float
    y1: float
    area: float
    centre_x: float | None = None  # where the body's mass is; None: the box centre

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def scaled(self, factor: float) -> PersonBox:
        """The same box in an image `factor` times larger."""
        centre_x = None if self.centre_x is None else self.centre_x * factor
        return PersonBox(
            self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor, self.area * factor**2, centre_x
        )


def find_people(
    person_prob: np.ndarray, threshold: float = 0.5, min_area_fraction: float = 0.004, min_relative: float = 0.2
) -> list[PersonBox]:
    """Boxes of the separate people in a person-probability map (h, w), largest first.

    A connected region counts as a person if its area is at least `min_area_fraction` of the image, and,
    unless it is the largest, at least `min_relative` of the largest one's area and 40% of its height
    (so a loose arm or a held bag is not counted as somebody else).
    """
    if person_prob.ndim != 2:
        raise ValueError(f"person_prob must be (h, w), got shape {person_prob.shape}")
    binary = (person_prob > threshold).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    min_area = min_area_fraction * binary.size
    boxes = [
        # Centroids are in pixel-centre coordinates; + 0.5 makes them pixel edges like the box.
        PersonBox(float(x), float(y), float(x + w), float(y + h), float(area), float(centroid[0]) + 0.5)
        for (x, y, w, h, area), centroid in zip(stats[1:count], centroids[1:count], strict=True)
        if area >= min_area
    ]
    boxes.sort(key=lambda box: box.area, reverse=True)
    if not boxes:
        return []
    largest = boxes[0]
    return [largest] + [
        box for box in boxes[1:] if box.area >= min_relative * largest.area and box.height >= 0.4 * largest.height
    ]


@dataclass(frozen=True)
class FrameTransform:
    """The crop of the original photo that became the frame, and the original's size (see module doc)."""

    left: int  # crop box in original pixel edges; may be negative or pass the photo's edge (padding)
    top: int
    width: int  # crop width, exactly 3/4 of the crop height
    height: int
    original_width: int
    original_height: int
    frame_width: int = FRAME_WIDTH
    frame_height: int = FRAME_HEIGHT

    def __post_init__(self) -> None:
        if self.width * self.frame_height != self.height * self.frame_width:
            raise ValueError(f"crop {self.width}x{self.height} does not have the frame's aspect ratio")
        if min(self.width, self.height, self.original_width, self.original_height) <= 0:
            raise ValueError(f"empty crop or photo in {self}")

    # ---------------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def fit(
        cls,
        box: PersonBox | tuple[float, float, float, float],
        original_size: tuple[int, int],
        margin: float = DEFAULT_MARGIN,
        frame_size: tuple[int, int] = (FRAME_WIDTH, FRAME_HEIGHT),
    ) -> FrameTransform:
        """The smallest 3:4 crop holding `box` (pixel edges) plus `margin` x its height on each side.

        The margin is cut where it leaves the photo; the rest of this region is always inside the crop, so
        every pixel of the person (and of any garment mask on them) can be edited. Where a 3:4 crop holding
        the region is wider or taller than the photo, it sticks out of the photo and `frame` pads with the
        edge colour there (a wide photo: above and below; a narrow one: left and right); `unframe` never
        writes the padding back. Horizontally the crop is centred on the body's centroid, vertically on the
        box, then shifted to hold the region, then to stay inside the photo where it fits.
        """
        if isinstance(box, PersonBox):
            x0, y0, x1, y1, centre_x = box.x0, box.y0, box.x1, box.y1, box.centre_x
        else:
            (x0, y0, x1, y1), centre_x = box, None
        width, height = original_size
        frame_width, frame_height = frame_size
        x0, x1 = max(0.0, x0), min(float(width), x1)
        y0, y1 = max(0.0, y0), min(float(height), y1)
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"person box {(x0, y0, x1, y1)} is empty or outside the {width}x{height} photo")
        pad = margin * (y1 - y0)
        region_x = (max(0.0, x0 - pad), min(float(width), x1 + pad))
        region_y = (max(0.0, y0 - pad), min(float(height), y1 + pad))
        # Crop height: a whole multiple of the aspect unit, so width/height is exactly frame_width/frame_height.
        unit = math.gcd(frame_width, frame_height)
        aspect_w, aspect_h = frame_width // unit, frame_height // unit
        needed = max(region_y[1] - region_y[0], (region_x[1] - region_x[0]) * aspect_h / aspect_w)
        crop_h = max(aspect_h, math.ceil(needed / aspect_h - 1e-9) * aspect_h)
        crop_w = crop_h * aspect_w // aspect_h
        centre_x = (x0 + x1) / 2 if centre_x is None else min(max(centre_x, x0), x1)
        left = _place(round(centre_x - crop_w / 2), crop_w, width, region_x)
        top = _place(round((y0 + y1) / 2 - crop_h / 2), crop_h, height, region_y)
        return cls(left, top, crop_w, crop_h, width, height, frame_width, frame_height)

    @classmethod
    def from_dict(cls, data: dict) -> FrameTransform:
        return cls(**{key: int(data[key]) for key in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    # ---------------------------------------------------------------------------------------------
    # Geometry

    @property
    def scale(self) -> float:
        """Frame pixels per original pixel."""
        return self.frame_height / self.height

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """How far the crop sticks out of the photo: (left, top, right, bottom) in original pixels."""
        return (
            max(0, -self.left),
            max(0, -self.top),
            max(0, self.left + self.width - self.original_width),
            max(0, self.top + self.height - self.original_height),
        )

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) original pixel coordinates (x, y) -> frame coordinates. NaN stays NaN."""
        points = np.asarray(points, dtype=np.float64)
        offset = np.array([self.left, self.top], dtype=np.float64)
        return (points + 0.5 - offset) * self.scale - 0.5

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) frame coordinates (x, y) -> original pixel coordinates. NaN stays NaN."""
        points = np.asarray(points, dtype=np.float64)
        offset = np.array([self.left, self.top], dtype=np.float64)
        return (points + 0.5) / self.scale + offset - 0.5

    def in_photo(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) frame coordinates (x, y) -> (N,) bool: inside the photo, not in the frame's padding. A pixel
        is inside when its centre maps between the photo's outer pixel edges (-0.5 and W - 0.5). NaN is outside."""
        original = self.to_original(points)  # (N, 2) photo pixel coordinates
        with np.errstate(invalid="ignore"):
            return (
                (original[:, 0] >= -0.5)
                & (original[:, 0] < self.original_width - 0.5)
                & (original[:, 1] >= -0.5)
                & (original[:, 1] < self.original_height - 0.5)
            )

    # ---------------------------------------------------------------------------------------------
    # Resampling

    def frame(self, array: np.ndarray, interpolation: str = "auto") -> np.ndarray:
        """(H, W[, C]) array of the original -> (frame_height, frame_width[, C]), same dtype.

        Bool arrays come back bool. `interpolation`: 'auto' (nearest for bool and integer labels, area
        when shrinking, cubic for uint8/uint16 and linear for floats when enlarging), 'nearest', 'linear',
        'cubic' or 'area'.
        """
        self._check_shape(array, (self.original_height, self.original_width), "frame")
        pad_l, pad_t, pad_r, pad_b = self.padding
        inside = array[
            max(0, self.top) : min(self.original_height, self.top + self.height),
            max(0, self.left) : min(self.original_width, self.left + self.width),
        ]
        if any(self.padding):
            widths = [(pad_t, pad_b), (pad_l, pad_r)] + [(0, 0)] * (array.ndim - 2)
            inside = np.pad(inside, widths, mode="edge")
        return _resize(inside, (self.frame_width, self.frame_height), interpolation)

    def unframe(
        self, frame_array: np.ndarray, interpolation: str = "auto", background: np.ndarray | None = None
    ) -> np.ndarray:
        """(frame_height, frame_width[, C]) -> (original_height, original_width[, C]) on the original grid.

        Pixels of the original outside the crop come from `background` (same shape as the result) or are 0.
        """
        self._check_shape(frame_array, (self.frame_height, self.frame_width), "unframe")
        crop = _resize(frame_array, (self.width, self.height), interpolation)
        shape = (self.original_height, self.original_width) + frame_array.shape[2:]
        if background is not None:
            if background.shape != shape:
                raise ValueError(f"background has shape {background.shape}, expected {shape}")
            out = background.astype(crop.dtype, copy=True)
        else:
            out = np.zeros(shape, dtype=crop.dtype)
        pad_l, pad_t, pad_r, pad_b = self.padding
        out[
            max(0, self.top) : min(self.original_height, self.top + self.height),
            max(0, self.left) : min(self.original_width, self.left + self.width),
        ] = crop[pad_t : self.height - pad_b, pad_l : self.width - pad_r]
        return out

    def frame_image(self, image: Image.Image) -> Image.Image:
        """The RGB frame of a PIL photo: Pillow's BICUBIC resize of the crop, as the official loader resizes.

        BICUBIC in `Image.resize` widens its kernel when shrinking (it filters, unlike a plain bilinear
        warp, which aliases fine knits and prints). Crops more than `REDUCING_GAP` times the frame's height
        are first box-reduced by a whole factor that keeps them at least that much larger (Pillow's
        `reducing_gap`): 12 MP in ~100 ms instead of ~220 ms (shared 2-core machine). Where the crop sticks out of the photo the
        edge colour is repeated, as in `frame`.
        """
        if image.size != (self.original_width, self.original_height):
            raise ValueError(
                f"image is {image.size}, the transform is for {self.original_width}x{self.original_height}"
            )
        image = to_rgb(image)
        size = (self.frame_width, self.frame_height)
        pad_l, pad_t, pad_r, pad_b = self.padding
        x0, y0 = max(0, self.left), max(0, self.top)
        x1, y1 = min(self.original_width, self.left + self.width), min(self.original_height, self.top + self.height)
        if not any(self.padding):
            return image.resize(size, Image.Resampling.BICUBIC, box=(x0, y0, x1, y1), reducing_gap=REDUCING_GAP)
        # Pillow's box cannot leave the image: repeat the edge pixels first (narrow photos only).
        inside = np.asarray(image.crop((x0, y0, x1, y1)))
        padded = np.pad(inside, ((pad_t, pad_b), (pad_l, pad_r), (0, 0)), mode="edge")
        return Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)

    @staticmethod
    def _check_shape(array: np.ndarray, expected: tuple[int, int], what: str) -> None:
        if array.ndim not in (2, 3) or array.shape[:2] != expected:
            raise ValueError(f"{what} expects an array of shape {expected}[+channels], got {array.shape}")


def _place(start: int, size: int, limit: int, keep: tuple[float, float]) -> int:
    """Shift a span [start, start+size) to hold `keep` (never wider than `size`), then to lie inside
    [0, limit) when it fits, else to cover it (padding on both sides, as centred as `keep` allows)."""
    start = min(max(start, math.ceil(keep[1]) - size), math.floor(keep[0]))
    if size <= limit:
        return min(max(start, 0), limit - size)
    return min(max(start, limit - size), 0)


def _resize(array: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """cv2.resize for any channel count and for bool / integer label arrays. `size` is (width, height)."""
    source_h, source_w = array.shape[:2]
    target_w, target_h = size
    if interpolation == "auto":
        interpolation = _auto_interpolation(array.dtype, target_w * target_h < source_w * source_h)
        if (source_w, source_h) == (target_w, target_h):
            interpolation = "nearest"
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation {interpolation!r}: use 'auto' or one of {', '.join(INTERPOLATIONS)}")
    flag = INTERPOLATIONS[interpolation]
    dtype = array.dtype
    work = array
    if dtype == np.bool_:
        work = array.astype(np.uint8 if interpolation == "nearest" else np.float32)
    elif dtype.kind in "iu" and dtype not in (np.uint8, np.uint16, np.int16, np.int32):
        if interpolation != "nearest":
            raise ValueError(f"{dtype} arrays can only be resized with 'nearest'")
        work = array.astype(np.int32)
    elif dtype == np.float16:
        work = array.astype(np.float32)
    if work.ndim == 3 and work.shape[2] > 4:
        # cv2.resize handles at most 4 channels for some filters: resize in groups of 4.
        parts = [_cv_resize(work[:, :, i : i + 4], size, flag) for i in range(0, work.shape[2], 4)]
        out = np.concatenate([p if p.ndim == 3 else p[:, :, None] for p in parts], axis=2)
    else:
        out = _cv_resize(work, size, flag)
    if dtype == np.bool_:
        return out >= 0.5
    return out.astype(dtype, copy=False)


def _cv_resize(array: np.ndarray, size: tuple[int, int], flag: int) -> np.ndarray:
    out = cv2.resize(np.ascontiguousarray(array), size, interpolation=flag)
    if array.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
        out = out[:, :, None]
    return out


def _auto_interpolation(dtype: np.dtype, shrinking: bool) -> str:
    if dtype == np.bool_ or (dtype.kind in "iu" and dtype not in (np.uint8, np.uint16)):
        return "nearest"
    if shrinking:
        return "area"
    return "cubic" if dtype in (np.uint8, np.uint16) else "linear"
