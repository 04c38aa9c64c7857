"""One edit described once: `EditRequest` (what to do) and `EditResult` (what came out), both to and from
JSON-able dicts. The recipe an edit writes is the request's dict without pixels.

    request = EditRequest("upper_body", photo=photo, garment_ids=("top-001",), seed=7, steps=20)
    result = editor.run(request)            # local mode: this process (Editor.run -> run_request)
    result = editor.edit(EditRequest.of(prepared, seed=7))  # a person prepared already (Editor.prepare)
    result = pool.run(request)              # serve mode: the same request on a replica (fashion_rag/serve/)
    again = EditRequest.from_dict(request.to_dict())   # pixels travel as base64 PNG

The person comes as a `photo` (prepared where the edit runs: framing, pose, automatic mask, then the optional
user `mask`) or as a `person` already prepared (the page has one, with the mask the user painted). One seed
convention: None (or -1 from a form) asks for a random seed; the result carries the seed used.
"""

from __future__ import annotations

import base64
import io
import math
import reprlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from fashion_rag.config import DEFAULT_GUIDANCE, DEFAULT_SCHEDULER, DEFAULT_STEPS
from fashion_rag.errors import InputError, check_category
from fashion_rag.generation.limits import MAX_GARMENTS
from fashion_rag.person.framing import FrameTransform
from fashion_rag.person.photo import load_photo

if TYPE_CHECKING:
    from fashion_rag.person.prepare import PreparedPerson

RANDOM = -1  # a form's "random seed"; the request holds None


# --------------------------------------------------------------------------------------------------
# Pixels as JSON: PNG in base64 (lossless, so a request sent through JSON edits the same pixels)


def image_to_text(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_text(text: Any, what: str) -> Image.Image:
    """An RGB image from base64 PNG/JPEG text, through load_photo's checks (pixel limit, decoding)."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a base64-encoded PNG or JPEG string, not {type(text).__name__}")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as error:
        raise InputError(f"{what} is not valid base64 ({error}): send a base64-encoded PNG or JPEG") from error
    return load_photo(data, name=what)


def mask_to_text(mask: np.ndarray) -> str:
    """A bool mask (or 8-bit mask values) as a base64 PNG."""
    return image_to_text(Image.fromarray(mask_values(mask), mode="L"))


def mask_from_text(text: Any, what: str) -> np.ndarray:
    """(H, W) bool from a base64 mask image (white = regenerate, > 127 on the brightest channel), or from the
    run-length form a recipe keeps (person/mask_codec.py)."""
    if isinstance(text, dict):
        from fashion_rag.person.mask_codec import decode_mask

        return decode_mask(text)
    return np.asarray(image_from_text(text, what)).max(axis=2) > 127


# --------------------------------------------------------------------------------------------------
# The person, prepared


@dataclass(frozen=True)
class PersonFrame:
    """A prepared person without its pose map (rebuilt from the keypoints in ~5 ms, where the edit runs)."""

    original: Image.Image  # the upright RGB photo at its own size (paste-back needs every pixel)
    frame: Image.Image  # 384x512 RGB
    transform: FrameTransform  # frame <-> original
    keypoints: np.ndarray  # (18, 2) frame pixels, NaN where missing
    mask: np.ndarray  # (512, 384) bool: what the edit regenerates
    mask_source: str  # "parser", "offline" or "user"

    @classmethod
    def of(cls, prepared) -> PersonFrame:
        """From a PreparedPerson (person/prepare.py)."""
        return cls(
            prepared.original,
            prepared.frame,
            prepared.transform,
            np.asarray(prepared.keypoints),
            np.asarray(prepared.mask, dtype=bool),
            prepared.mask_source,
        )

    def prepared(self, category: str):
        """The PreparedPerson the editor takes."""
        from fashion_rag.person.pose import pose_heatmaps
        from fashion_rag.person.prepare import PreparedPerson

        return PreparedPerson(
            original=self.original,
            frame=self.frame,
            transform=self.transform,
            keypoints=self.keypoints,
            pose_map=pose_heatmaps(self.keypoints),
            mask=self.mask,
            mask_precise=self.mask,
            mask_box=self.mask,
            mask_source=self.mask_source,
            category=category,
        )

    def to_dict(self) -> dict[str, Any]:
        points = [None if np.isnan(p).any() else [float(p[0]), float(p[1])] for p in self.keypoints]
        return {
            "original": image_to_text(self.original),
            "frame": image_to_text(self.frame),
            "transform": self.transform.to_dict(),
            "keypoints": points,
            "mask": mask_to_text(self.mask),
            "mask_source": self.mask_source,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PersonFrame:
        if not isinstance(data, dict):
            raise InputError(
                f"person must be an object with original, frame, transform, keypoints, mask; not {data!r:.40}"
            )
        try:
            transform = FrameTransform.from_dict(data["transform"])
            points = data["keypoints"]
            keypoints = np.array([[math.nan, math.nan] if p is None else p for p in points], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"person: bad or missing transform/keypoints ({error})") from error
        if keypoints.shape != (18, 2):
            raise InputError(f"person keypoints: 18 [x, y] pairs (or null) expected, got shape {keypoints.shape}")
        mask = mask_from_text(data.get("mask"), "person mask")
        frame = image_from_text(data.get("frame"), "person frame")
        if mask.shape != (frame.height, frame.width):
            raise InputError(f"person mask is {mask.shape[1]}x{mask.shape[0]}: it must match the frame, {frame.size}")
        return cls(
            image_from_text(data.get("original"), "person original"),
            frame,
            transform,
            keypoints,
            mask,
            str(data.get("mask_source", "user")),
        )


# --------------------------------------------------------------------------------------------------
# The request


@dataclass(frozen=True)
class EditRequest:
    """Everything one edit needs, and the only form its settings take: the page, the API, the CLI, the batch,
    the worker pool and `Editor.edit` all read this; the recipe is its `to_dict(pixels=False)` plus what the edit
    adds (results.edit_recipe). Defaults are the published recipe (docs/recipe.md, sampler rules 1-2)."""

    category: str
    photo: Image.Image | None = None  # a person photo, prepared where the edit runs …
    person: PersonFrame | None = None  # … or a person prepared already (exactly one of the two)
    mask: np.ndarray | None = None  # with `photo`: a user mask at frame or photo size, (H, W) bool or uint8 values
    mask_variant: str = "box"  # with `photo` and no mask: the automatic mask, "box" or "precise"
    garment_ids: tuple[str, ...] = ()  # catalog garments, in the order picked
    garment_images: tuple[Image.Image, ...] = ()  # uploaded garments, after the catalog ones
    description: str = ""  # drives a text-only edit when no garment is given (docs/recipe.md, garment tokens rule 8)
    seed: int | None = None  # None: a random one; the result says which
    steps: int = DEFAULT_STEPS  # denoising steps
    guidance: float = DEFAULT_GUIDANCE  # classifier-free guidance scale
    scheduler: str = DEFAULT_SCHEDULER  # "ddim" (published) or "dpm++" (faster, fewer steps)
    num_images: int = 1  # images per edit, 1 to 4, sampled in one UNet batch
    paste_back: bool = True  # paste the original pixels back outside a feathered mask

    def __post_init__(self) -> None:
        check_category(self.category)
        if (self.photo is None) == (self.person is None):
            raise InputError("an edit needs a person: give either a photo or a prepared person, not both or neither")
        if self.seed == RANDOM:
            object.__setattr__(self, "seed", None)
        object.__setattr__(self, "garment_ids", tuple(self.garment_ids))
        object.__setattr__(self, "garment_images", tuple(self.garment_images))

    @classmethod
    def of(cls, person: PreparedPerson, **fields: Any) -> EditRequest:
        """The request for a PreparedPerson (person/prepare.py, its mask painted or not): its category, frame,
        pose and mask variant; `fields` give the rest, e.g. `garment_ids=("top-001",), seed=7, steps=20`."""
        fields.setdefault("mask_variant", getattr(person, "mask_variant", "box"))
        return cls(person.category, person=PersonFrame.of(person), **fields)

    def to_dict(self, pixels: bool = True) -> dict[str, Any]:
        """JSON-able. Without pixels it is the recipe's part of the request: images are only counted."""
        data: dict[str, Any] = {name: getattr(self, name) for name in SETTINGS}
        data["garment_ids"] = list(self.garment_ids)
        data["uploaded_garments"] = len(self.garment_images)
        if pixels:
            data["garment_images"] = [image_to_text(image) for image in self.garment_images]
            if self.photo is not None:
                data["photo"] = image_to_text(self.photo)
            if self.person is not None:
                data["person"] = self.person.to_dict()
            if self.mask is not None:
                data["mask"] = mask_to_text(self.mask)
        return data

    @classmethod
    def from_dict(cls, data: Any, **given: Any) -> EditRequest:
        """From `to_dict`'s output or a recipe (its other keys are ignored). `given` fills or overrides fields,
        e.g. the photo and garment images a recipe does not hold."""
        if not isinstance(data, dict):
            raise InputError(f"an edit request must be a JSON object, not {type(data).__name__}")
        values = {name: check_setting(name, data[name]) for name in SETTINGS if data.get(name) is not None}
        values["garment_ids"] = tuple(check_ids(data.get("garment_ids", [])))
        if "garment_images" in data:
            images = data["garment_images"]
            if not isinstance(images, list):
                raise InputError("garment_images must be a list of base64-encoded images")
            values["garment_images"] = tuple(image_from_text(t, f"garment image {i + 1}") for i, t in enumerate(images))
        if data.get("photo") is not None:
            values["photo"] = image_from_text(data["photo"], "photo")
        if data.get("person") is not None:
            values["person"] = PersonFrame.from_dict(data["person"])
        if data.get("mask") is not None:
            values["mask"] = mask_from_text(data["mask"], "mask")
        values.update(given)
        uploaded = uploaded_count(data)
        if uploaded and len(values.get("garment_images", ())) != uploaded:
            raise InputError(f"this recipe used {uploaded} uploaded garment image(s): pass them again (--garment)")
        if "category" not in values:
            raise InputError("the edit request has no category: give upper_body, lower_body or dresses")
        return cls(**values)


# The plain settings of a request, each with the JSON type it takes (bool is not a number here).
SETTINGS: dict[str, tuple[type, ...]] = {
    "category": (str,), "description": (str,), "mask_variant": (str,), "seed": (int,), "steps": (int,),
    "guidance": (int, float), "scheduler": (str,), "num_images": (int,), "paste_back": (bool,),
}  # fmt: skip


def check_setting(name: str, value: Any) -> Any:
    kinds = SETTINGS[name]
    whole_float = isinstance(value, float) and int in kinds and value.is_integer()
    if (isinstance(value, bool) and bool not in kinds) or not (isinstance(value, kinds) or whole_float):
        accepted = " or ".join("a whole number" if k is int else k.__name__ for k in kinds)
        raise InputError(f"{name}={reprlib.repr(value)}: use {accepted}")  # a 1 MB string is not echoed back
    return int(value) if whole_float else value


def uploaded_count(data: dict) -> int:
    """How many uploaded garment images a recipe (or an outfit step) used: a whole number from 0 to 3."""
    count = data.get("uploaded_garments") or 0
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_GARMENTS:
        raise InputError(f"uploaded_garments={reprlib.repr(count)}: use a whole number from 0 to {MAX_GARMENTS}")
    return count


def check_ids(ids: Any) -> list[str]:
    if isinstance(ids, str):
        ids = [part for part in ids.split(",")]
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        raise InputError(f"garment_ids={ids!r}: use a list of catalog ids such as ['top-001']")
    return [i.strip() for i in ids if i.strip()]


# --------------------------------------------------------------------------------------------------
# Running one, and the result as JSON


def with_person(editor, request: EditRequest) -> tuple[EditRequest, list[str]]:
    """(the request with a prepared person, what preparing it noted): itself when it holds one already, else its
    photo prepared here (framing, pose, the automatic `mask_variant` mask, then its own mask if it has one)."""
    if request.person is not None:
        return request, []
    person = editor.prepare(request.photo, request.category, mask_variant=request.mask_variant)
    if request.mask is not None:
        person = editor.with_user_mask(person, mask_values(request.mask))
    return replace(request, photo=None, mask=None, person=PersonFrame.of(person)), list(person.notes)


def recipe_mask(editor, person, recipe: dict):
    """`person` with the recipe's mask when it differs from the automatic one (painted, grown, or another
    mask path); InputError when the photo is framed differently from the recipe's (another photo)."""
    from fashion_rag.person.mask_codec import decode_mask

    if "mask" not in recipe:  # recipes written before the mask was recorded
        return person
    if recipe.get("transform") and recipe["transform"] != person.transform.to_dict():
        raise InputError(
            f"{person.transform.original_width}x{person.transform.original_height} photo framed differently "
            "from the recipe's: pass the photo the recipe was made from (or --mask for a mask of this photo)"
        )
    mask = decode_mask(recipe["mask"])
    if mask.shape != person.mask.shape:
        raise InputError(
            f"the recipe's mask is {mask.shape[1]}x{mask.shape[0]}, the frame is {person.mask.shape[1]}x{person.mask.shape[0]}"
        )
    return person if np.array_equal(mask, person.mask) else editor.with_user_mask(person, mask)


def mask_values(mask: np.ndarray) -> np.ndarray:
    """A request's mask as 8-bit values (apply_user_mask's form): uint8 as given, bool as 0/255."""
    mask = np.asarray(mask)
    return mask if mask.dtype == np.uint8 else mask.astype(np.uint8) * 255


def run_request(editor, request: EditRequest, progress=None):
    """Editor.run: prepare (when given a photo), then `editor.edit`. The result's timings include `prepare_s`."""
    started = time.perf_counter()
    request, notes = with_person(editor, request)
    prepare_s = time.perf_counter() - started
    result = editor.edit(request, progress=progress)
    result.timings["prepare_s"] = round(prepare_s, 4)
    result.notes.extend(notes)  # e.g. "2 people found; used the largest"
    return result


def result_to_dict(result) -> dict[str, Any]:
    """An EditResult as JSON: images (base64 PNG at the photo's size), seed, recipe, timings, notes."""
    return {
        "images": [image_to_text(image) for image in result.images],
        "seed": result.seed,
        "recipe": result.recipe,
        "timings": result.timings,
        "notes": list(result.notes),
    }


def result_from_dict(data: dict[str, Any]):
    from fashion_rag.results import EditResult

    images = [image_from_text(text, f"result image {i + 1}") for i, text in enumerate(data["images"])]
    return EditResult(
        images, [], int(data["seed"]), dict(data.get("timings", {})), dict(data["recipe"]), list(data.get("notes", []))
    )


__all__ = ["EditRequest", "PersonFrame", "result_from_dict", "result_to_dict", "run_request", "with_person"]
