"""Person preprocessing end to end: any photo -> frame, keypoints, pose map and garment mask.

    photo ─► load_photo (EXIF, RGB, pixel limit) ─► detect people on a <=512 px copy (segmentation)
          ─► FrameTransform.fit (3:4 around the largest) ─► 384x512 frame
          ─► pose on the frame ─► 18 keypoints ─► pose map
          ─► mask: clothes parser + Dress Code recipe, or the offline geometry mask

`PersonPreparer` holds the built models (pose graph, person segmenter, optional parser) and is reused
across photos; `apply_user_mask` swaps in a mask the user edited.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from fashion_rag.errors import InputError, check_category
from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH, FrameTransform, PersonBox, find_people
from fashion_rag.person.masks import (
    GARMENT_LABELS,
    LEFT_SHOULDER,
    RIGHT_SHOULDER,
    MaskResult,
    check_body_visible,
    garment_mask_from_labels,
)
from fashion_rag.person.offline_mask import PersonSegmenter, offline_garment_mask
from fashion_rag.person.photo import DEFAULT_MAX_PIXELS, PhotoSource, load_photo
from fashion_rag.person.pose import NECK, PoseEstimator, pose_heatmaps

if TYPE_CHECKING:
    import torch

    from fashion_rag.person.parser import ClothesParser
    from fashion_rag.weights import ModelSources

logger = logging.getLogger(__name__)

DETECTION_SIZE = 512  # longest side of the copy people are detected on (the segmenter works at 256x256)
MIN_PERSON_HEIGHT_PX = 100  # a person shorter than this (original pixels) is too small to edit
MIN_PARSED_GARMENT_SHARE = 0.002  # below this share of the frame, the parser "found no garment"
MAX_USER_MASK_SHARE = 0.95  # an edited mask covering more of the frame than this is refused
MASK_VARIANTS = ("box", "precise")
MASK_SOURCES = ("parser", "offline", "user")


@dataclass(frozen=True)
class PreparedPerson:
    """Everything the generation stage needs from the person photo. Arrays are at frame size (512, 384)."""

    original: Image.Image  # the photo as loaded: upright RGB at its own resolution
    frame: Image.Image  # 384x512 RGB
    transform: FrameTransform  # frame <-> original
    keypoints: np.ndarray  # (18, 2) COCO-18 frame pixels, NaN for missing
    pose_map: np.ndarray  # (18, 512, 384) float32 (docs/recipe.md, UNet input rule 5)
    mask: np.ndarray  # (512, 384) bool: what the edit regenerates (the chosen variant, or the user's mask)
    mask_precise: np.ndarray  # (512, 384) bool: the automatic precise mask
    mask_box: np.ndarray  # (512, 384) bool: the automatic bounding-box mask
    mask_source: str  # "parser", "offline" or "user"
    category: str
    mask_variant: str = "box"
    person_box: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) in original pixels
    notes: list[str] = field(default_factory=list)  # e.g. "2 people found; used the largest"
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds


class PersonPreparer:
    """Turns person photos into `PreparedPerson`s with built models (see `from_sources`)."""

    def __init__(
        self,
        pose: PoseEstimator,
        segmenter: PersonSegmenter,
        parser: ClothesParser | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        detection_size: int = DETECTION_SIZE,
        min_person_height: int = MIN_PERSON_HEIGHT_PX,
    ):
        self.pose = pose
        self.segmenter = segmenter
        self.parser = parser
        self.max_pixels = max_pixels
        self.detection_size = detection_size
        self.min_person_height = min_person_height

    @classmethod
    def from_sources(cls, sources: ModelSources | None = None, device: str | torch.device = "auto") -> PersonPreparer:
        """Mediapipe pose and segmentation (bundled), plus the clothes parser when `sources` has it."""
        parser = None
        if sources is not None and sources.locate("clothes-parser").found:
            from fashion_rag.person.parser import ClothesParser

            parser = ClothesParser.from_pretrained(sources.require("clothes-parser"), device)
        else:
            logger.info("no clothes parser weights: garment masks use the offline path")
        return cls(PoseEstimator(), PersonSegmenter(), parser)

    @property
    def mask_source(self) -> str:
        """The path masks take by default: 'parser' with parser weights, else 'offline'."""
        return "parser" if self.parser is not None else "offline"

    def prepare(self, photo: PhotoSource, category: str, mask_variant: str = "box") -> PreparedPerson:
        """Frame, keypoints, pose map and garment mask of one photo; InputError for unusable photos."""
        check_category(category)
        if mask_variant not in MASK_VARIANTS:
            raise InputError(f"mask variant {mask_variant!r}: use one of {', '.join(MASK_VARIANTS)}")
        timings: dict[str, float] = {}
        start = clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round((now - clock) * 1000, 2)
            clock = now

        original = load_photo(photo, max_pixels=self.max_pixels)
        lap("load")
        notes: list[str] = []
        small, factor = self._detection_copy(original)
        box = self._find_person(small, factor, original.size, notes)
        lap("detect")
        transform = FrameTransform.fit(box, original.size)
        frame = transform.frame_image(original)
        frame_array = np.asarray(frame)
        lap("frame")
        keypoints = self._keypoints(frame_array, small, factor, transform)
        check_body_visible(keypoints, category)
        pose_map = pose_heatmaps(keypoints)
        lap("pose")
        result, source = self._mask(frame, frame_array, keypoints, category, notes)
        lap("mask")
        notes.extend(result.notes)
        if not result.variant(mask_variant).any():
            notes.append("the automatic mask is empty: paint the area to change with the mask editor")
        timings["total"] = round((time.perf_counter() - start) * 1000, 2)
        return PreparedPerson(
            original=original,
            frame=frame,
            transform=transform,
            keypoints=keypoints,
            pose_map=pose_map,
            mask=result.variant(mask_variant).copy(),
            mask_precise=result.precise,
            mask_box=result.box,
            mask_source=source,
            category=category,
            mask_variant=mask_variant,
            person_box=(box.x0, box.y0, box.x1, box.y1),
            notes=notes,
            timings=timings,
        )

    def apply_user_mask(self, prepared: PreparedPerson, mask_image: Image.Image | np.ndarray) -> PreparedPerson:
        """See the module function `apply_user_mask`."""
        return apply_user_mask(prepared, mask_image)

    # ---------------------------------------------------------------------------------------------

    def _detection_copy(self, original: Image.Image) -> tuple[Image.Image, int]:
        """The photo box-reduced by the smallest whole factor that brings it to `detection_size` px or less."""
        factor = max(1, -(-max(original.size) // self.detection_size))
        return (original.reduce(factor) if factor > 1 else original), factor

    def _find_person(
        self, small: Image.Image, factor: int, original_size: tuple[int, int], notes: list[str]
    ) -> PersonBox:
        """The largest person's box in original pixels, detected on the reduced copy."""
        people = find_people(self.segmenter(np.asarray(small)))
        if not people:
            raise InputError(
                "no person found in the photo; use a photo of one person (if they are small in the picture, "
                "crop it closer around them first)"
            )
        if len(people) > 1:
            notes.append(f"{len(people)} people found; used the largest")
        # Reduced pixel j covers original pixels [j*factor, (j+1)*factor): scale the box edges by factor.
        box = people[0].scaled(factor)
        width, height = original_size
        box = PersonBox(box.x0, box.y0, min(box.x1, width), min(box.y1, height), box.area, box.centre_x)
        if box.height < self.min_person_height:
            raise InputError(
                f"the person is too small to edit: {box.height:.0f} pixels tall in the photo, at least "
                f"{self.min_person_height} are needed; use a larger or closer photo"
            )
        return box

    def _keypoints(
        self, frame_array: np.ndarray, small: Image.Image, factor: int, transform: FrameTransform
    ) -> np.ndarray:
        """Pose on the frame; if BlazePose's detector misses the person there, on the whole (reduced) photo."""
        keypoints = self.pose(frame_array)
        if keypoints is None:
            found = self.pose(np.asarray(small))
            if found is not None:
                # Reduced pixel centre j is original pixel centre (j + 0.5) * factor - 0.5.
                keypoints = transform.to_frame((found + 0.5) * factor - 0.5)
                outside = ~(
                    (keypoints[:, 0] >= -0.5)
                    & (keypoints[:, 0] < transform.frame_width - 0.5)
                    & (keypoints[:, 1] >= -0.5)
                    & (keypoints[:, 1] < transform.frame_height - 0.5)
                )
                keypoints[outside] = np.nan
                keypoints[NECK] = (keypoints[RIGHT_SHOULDER] + keypoints[LEFT_SHOULDER]) / 2
        if keypoints is None:
            raise InputError(
                "no person found in the photo (the pose model found no body); use a photo of one person, "
                "seen from the front, with the upper body visible"
            )
        return outside_photo_missing(keypoints, transform)

    def _mask(
        self, frame: Image.Image, frame_array: np.ndarray, keypoints: np.ndarray, category: str, notes: list[str]
    ) -> tuple[MaskResult, str]:
        if self.parser is not None:
            labels = self.parser(frame)
            # The recipe always adds the arms and the neck, so judge the parser by the garment labels alone.
            if np.isin(labels, GARMENT_LABELS[category]).mean() >= MIN_PARSED_GARMENT_SHARE:
                result = garment_mask_from_labels(labels, keypoints, category)
                if result.precise.any():
                    return result, "parser"
            notes.append(f"the clothes parser found no {category} garment; used the offline mask instead")
        person = self.segmenter(frame_array)
        return offline_garment_mask(keypoints, person, category), "offline"


def outside_photo_missing(keypoints: np.ndarray, transform: FrameTransform) -> np.ndarray:
    """(18, 2) frame keypoints with those in the frame's padding set missing (NaN), the neck recomputed.

    Where the crop sticks out of the photo the frame repeats the edge pixels; a hip or knee found there is
    a body invented beyond the photo's edge (a half-body portrait would pass lower_body's check).
    """
    out = np.array(keypoints, dtype=np.float64, copy=True)
    out[~transform.in_photo(keypoints)] = np.nan  # NaN keypoints stay NaN
    out[NECK] = (out[RIGHT_SHOULDER] + out[LEFT_SHOULDER]) / 2  # NaN unless both shoulders are in the photo
    return out


# --------------------------------------------------------------------------------------------------
# The user's own mask, and previews


def apply_user_mask(prepared: PreparedPerson, mask_image: Image.Image | np.ndarray) -> PreparedPerson:
    """`prepared` with `mask` replaced by an edited mask (mask_source 'user'); the automatic ones are kept.

    `mask_image` is a PIL image or an array at the frame's size (384x512) or at the original photo's size
    (mapped onto the frame through the transform); the frame's size wins when both are the same. A
    painted layer with transparency counts where it is painted (alpha); otherwise the brightest channel
    counts (white, or any bright colour, on black). The mask is binarised at 0.5 (> 127 for 8-bit values). Empty masks, and masks covering more than 95% of
    the frame, are refused.
    """
    values = _mask_values(mask_image)
    frame_shape = (prepared.transform.frame_height, prepared.transform.frame_width)
    original_shape = (prepared.transform.original_height, prepared.transform.original_width)
    if values.shape == frame_shape:
        framed = values
    elif values.shape == original_shape:
        framed = prepared.transform.frame(values, interpolation="area" if prepared.transform.scale < 1 else "linear")
    else:
        raise InputError(
            f"the edited mask is {values.shape[1]}x{values.shape[0]}; use the frame's size "
            f"{frame_shape[1]}x{frame_shape[0]} or the photo's size {original_shape[1]}x{original_shape[0]}"
        )
    mask = framed >= 0.5
    share = float(mask.mean())
    if not mask.any():
        raise InputError("the edited mask is empty: paint over the garment area that should change")
    if share > MAX_USER_MASK_SHARE:
        raise InputError(
            f"the edited mask covers {share:.0%} of the picture; at most {MAX_USER_MASK_SHARE:.0%} is accepted: "
            "leave the face and the background out of it"
        )
    notes = [*prepared.notes, "mask edited by the user"]
    return replace(prepared, mask=mask, mask_source="user", notes=notes)


def _mask_values(mask_image: Image.Image | np.ndarray) -> np.ndarray:
    """A float32 (H, W) map in 0..1 from a mask image or array (alpha of a painted layer, else brightness)."""
    if isinstance(mask_image, Image.Image):
        image = mask_image
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
            if alpha.min() < 255:  # a painted layer: transparent = not painted
                return alpha.astype(np.float32) / 255.0
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(image.convert("I"), dtype=np.float32) / 65535.0
        if image.mode == "F":
            return np.asarray(image, dtype=np.float32)
        return np.asarray(image.convert("RGB")).max(axis=2).astype(np.float32) / 255.0
    array = np.asarray(mask_image)
    if array.ndim == 3 and array.shape[2] == 4 and array[:, :, 3].min() < array[:, :, 3].max():
        array = array[:, :, 3]
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, :3].max(axis=2) if array.shape[2] != 1 else array[:, :, 0]
    if array.ndim != 2:
        raise InputError(f"the edited mask has shape {array.shape}; use an (H, W) array or an image")
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype.kind == "f":
        return np.nan_to_num(array.astype(np.float32))
    raise InputError(f"the edited mask has dtype {array.dtype}; use bool, uint8, uint16 or float in 0..1")


def overlay_preview(prepared: PreparedPerson, colour: tuple[int, int, int] = (255, 0, 64)) -> Image.Image:
    """The frame with the mask tinted (45%) in `colour` and its outline drawn: what will be regenerated."""
    import cv2

    frame = np.asarray(prepared.frame, dtype=np.float32)
    mask = prepared.mask
    tinted = frame.copy()
    tinted[mask] = 0.55 * frame[mask] + 0.45 * np.asarray(colour, dtype=np.float32)
    out = np.clip(np.rint(tinted), 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, 2)
    return Image.fromarray(out)


def mask_image(mask: np.ndarray) -> Image.Image:
    """A bool (H, W) mask as an 'L' image: 255 where regenerated."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))


__all__ = [
    "FRAME_HEIGHT",
    "FRAME_WIDTH",
    "MASK_SOURCES",
    "MASK_VARIANTS",
    "PersonPreparer",
    "PreparedPerson",
    "apply_user_mask",
    "mask_image",
    "overlay_preview",
]
