"""The named API endpoints `prepare`, `search` and `edit`, declared with gr.api from typed functions.

They take plain values (uploaded files, text, numbers) so that gradio_client scripts can call them:

    client.predict(handle_file("person.png"), "upper_body", "box", api_name="/prepare")
    client.predict("red striped shirt", "upper_body", 3, api_name="/search")
    client.predict(handle_file("person.png"), "upper_body", "top-001,top-002", None, None, "", -1, 50, 7.5,
                   "ddim", 1, True, api_name="/edit")

An edit with no garment id and no garment image is a text-only edit from the description (recipe garment tokens rule 8);
its recipe says `"prompt": "text-only"`. Files come in as uploads only: Gradio checks that each was
uploaded to this server, and a plain string where a file belongs is refused (it could name a server path).
"""

# No `from __future__ import annotations` here: gr.api reads the return annotation as an object (a
# tuple of N types means N outputs), which postponed annotations would turn into a string.
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio import FileData

from fashion_rag.config import GenerationSettings
from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.studio import handlers
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.masks import load_mask
from fashion_rag.studio.session import Settings

Gallery = list[dict[str, Any]]  # [{"image": FileData, "caption": None}, …], the shape gr.Gallery returns


def upload_path(value: Any, what: str) -> str | None:
    """The server path of an uploaded file (a FileData dict), None when absent; refuses anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return value["path"]
    raise InputError(
        f"the {what} must be an uploaded file (gradio_client.handle_file(...)), not {type(value).__name__}"
    )


def file_data(path: str) -> dict[str, Any]:
    """A file the server hands out (Gradio copies it into its cache and adds the URL)."""
    return FileData(path=path, orig_name=Path(path).name).model_dump()


def whole(name: str, value: Any, default: int) -> int:
    """A whole number from JSON (2 and 2.0 both), the default when missing; ranges are checked downstream."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise InputError(f"{name}={value!r}: use a whole number")
    return int(value)


def prepare(editor, photo: Any, category: str, mask_variant: str, session: str | None):
    """Frame, mask, overlay and pose preview files, and the keypoints, transform and notes."""
    path = upload_path(photo, "photo")
    if not path:
        raise InputError("no photo given: send a PNG or JPEG of a person")
    prepared = editor.prepare(load_photo(path, name=Path(path).name), category, mask_variant=mask_variant or "box")
    files = editor.save_previews(prepared, session)
    keypoints = [None if np.isnan(p).any() else [round(float(p[0]), 1), round(float(p[1]), 1)]
                 for p in prepared.keypoints]  # fmt: skip
    info = {"mask_source": prepared.mask_source, "notes": prepared.notes, "keypoints": keypoints,
            "transform": prepared.transform.to_dict(), "category": prepared.category}  # fmt: skip
    return tuple(file_data(files[name]) for name in ("frame", "mask", "overlay", "pose")) + (info,)


def search(editor, text: str, category: str, k: Any) -> dict[str, Any]:
    """Top-k catalog garments of a category for a description."""
    hits = editor.search(text, category, whole("k", k, 6))  # an explicit 0 is refused, not replaced by 6
    return {"mode": editor.searcher.mode, "hits": [hit.to_dict() for hit in hits]}


def edit(editor, photo, category, garment_ids, garment_image, mask, description, seed, steps, guidance, sampler,
         num_images, paste_back, session):  # fmt: skip
    """(gallery, seed used, recipe file) of one edit; person preparation runs before the GPU function."""
    path = upload_path(photo, "photo")
    if not path:
        raise InputError("no photo given: send a PNG or JPEG of a person")
    person = editor.prepare(load_photo(path, name=Path(path).name), category)
    mask_path = upload_path(mask, "mask")
    if mask_path:
        person = editor.with_user_mask(person, load_mask(mask_path))
    garment_path = upload_path(garment_image, "garment image")
    garments = [load_photo(garment_path, name=Path(garment_path).name)] if garment_path else []
    settings = Settings(
        seed=handlers.RANDOM_SEED if seed is None else whole("seed", seed, handlers.RANDOM_SEED),
        steps=whole("steps", steps, GenerationSettings.steps),  # 0 is refused, not replaced by 50
        guidance=GenerationSettings.guidance if guidance is None else float(guidance),
        scheduler=sampler or GenerationSettings.scheduler, num_images=whole("num_images", num_images, 1),
        paste_back=True if paste_back is None else bool(paste_back),
    )  # fmt: skip
    entry, _ = handlers.generate(editor, person, parse_ids(garment_ids), garments, description or "", settings, [],
                                 session)  # fmt: skip
    gallery = [{"image": file_data(image), "caption": None} for image in entry.images]
    return gallery, entry.settings.seed, file_data(entry.recipe)


def parse_ids(text: str | list | None) -> list[str]:
    """Catalog ids from a list or a comma-separated string (never file paths: unknown ids are refused later)."""
    if not text:
        return []
    items = text if isinstance(text, list) else str(text).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def register(editor) -> None:
    """Declare the three endpoints inside the current gr.Blocks."""

    def prepare_endpoint(photo: FileData | None, category: str = "upper_body", mask_variant: str = "box",
                         request: gr.Request = None) -> tuple[FileData, FileData, FileData, FileData, dict]:  # fmt: skip
        """Frame, mask, overlay and pose preview of a person photo, plus keypoints and notes."""
        with user_errors_as_gradio():
            return prepare(editor, photo, category, mask_variant, session_of(request))

    def search_endpoint(text: str, category: str = "upper_body", k: int = 6) -> dict:
        """Top-k catalog garments of a category for a description."""
        with user_errors_as_gradio():
            return search(editor, text, category, k)

    def edit_endpoint(photo: FileData | None, category: str = "upper_body", garment_ids: str = "",
                      garment_image: FileData | None = None, mask: FileData | None = None, description: str = "",
                      seed: int = -1, steps: int = 50, guidance: float = 7.5, sampler: str = "ddim",
                      num_images: int = 1, paste_back: bool = True,
                      request: gr.Request = None) -> tuple[list[dict], int, FileData]:  # fmt: skip
        """Edit a person photo with catalog garment ids (comma-separated) and/or one garment image; with
        neither, a text-only edit from the description. Seed -1: random."""
        with user_errors_as_gradio():
            return edit(editor, photo, category, garment_ids, garment_image, mask, description, seed, steps,
                        guidance, sampler, num_images, paste_back, session_of(request))  # fmt: skip

    gr.api(prepare_endpoint, api_name="prepare", concurrency_id="cpu", concurrency_limit=4)
    gr.api(search_endpoint, api_name="search", concurrency_id="cpu", concurrency_limit=4)
    gr.api(edit_endpoint, api_name="edit", concurrency_id="gpu", concurrency_limit=1)


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)
