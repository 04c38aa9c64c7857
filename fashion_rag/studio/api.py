"""The named API endpoints `prepare`, `search` and `edit`, declared with gr.api from typed functions.

They take plain values (uploaded files, text, numbers) so that gradio_client scripts can call them:

    client.predict(handle_file("person.png"), "upper_body", "box", api_name="/prepare")
    client.predict("red striped shirt", "upper_body", 3, api_name="/search")
    client.predict(handle_file("person.png"), "upper_body", "top-001,top-002", None, None, "", -1, 50, 7.5,
                   "ddim", 1, True, api_name="/edit")

An edit with no garment id and no garment image is a text-only edit from the description (docs/recipe.md,
garment tokens rule 8); its recipe says `"prompt": "text-only"`. Files come in as uploads only: each file
input must resolve inside Gradio's upload folder (`uploads.py`), whatever shape the value has. Every
number and flag is parsed strictly (`values.py`) before any work.
"""

# No `from __future__ import annotations` here: gr.api reads the return annotation as an object (a
# tuple of N types means N outputs), which postponed annotations would turn into a string.
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio import FileData

from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.studio import handlers, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.masks import load_mask
from fashion_rag.studio.memory import hand_back_freed_heap
from fashion_rag.studio.uploads import uploaded_file

MAX_ID_TEXT = 512  # three catalog ids with room to spare; longer id lists are refused unread
Gallery = list[dict[str, Any]]  # [{"image": FileData, "caption": None}, …], the shape gr.Gallery returns


def file_data(path: str) -> dict[str, Any]:
    """A file the server hands out (Gradio copies it into its cache and adds the URL)."""
    return FileData(path=path, orig_name=Path(path).name).model_dump()


def prepare(editor, photo: Any, category: str, mask_variant: str, session: str | None):
    """Frame, mask, overlay and pose preview files, and the keypoints, transform and notes."""
    try:
        photo, scaled = person_photo(editor, photo)
        category = values.choice("category", category, None)
        prepared = editor.prepare(photo, category, mask_variant=values.choice("mask_variant", mask_variant, "box"))
        del photo
    finally:
        hand_back_freed_heap()  # the photo's decode and resize buffers (studio/memory.py)
    if scaled:
        prepared.notes.insert(0, scaled)
    files = editor.save_previews(prepared, session)
    keypoints = [None if np.isnan(p).any() else [round(float(p[0]), 1), round(float(p[1]), 1)]
                 for p in prepared.keypoints]  # fmt: skip
    info = {"mask_source": prepared.mask_source, "notes": prepared.notes, "keypoints": keypoints,
            "transform": prepared.transform.to_dict(), "category": prepared.category}  # fmt: skip
    return tuple(file_data(files[name]) for name in ("frame", "mask", "overlay", "pose")) + (info,)


def search(editor, text: str, category: str, k: Any) -> dict[str, Any]:
    """Top-k catalog garments of a category for a description."""
    text = values.description(text, editor.settings.limits.description_chars)
    category = values.choice("category", category, None)
    hits = editor.search(text, category, values.whole("k", k, 6))  # an explicit 0 is refused, not replaced by 6
    return {"mode": editor.searcher.mode, "hits": [hit.to_dict() for hit in hits]}


def edit(editor, photo, category, garment_ids, garment_image, mask, description, seed, steps, guidance, sampler,
         num_images, paste_back, session):  # fmt: skip
    """(gallery, seed used, recipe file) of one edit; person preparation runs before the GPU function."""
    checked = handlers.controls(seed, steps, guidance, sampler, num_images, paste_back)  # before any work
    text = values.description(description, editor.settings.limits.description_chars)
    ids = parse_ids(garment_ids)
    photo, scaled = person_photo(editor, photo)
    person = editor.prepare(photo, values.choice("category", category, None))
    mask_path = uploaded_file(mask, "mask")
    if mask_path:
        person = editor.with_user_mask(person, load_mask(mask_path))
    garment_path = uploaded_file(garment_image, "garment image")
    garments = [load_photo(garment_path, name=Path(garment_path).name)] if garment_path else []
    request = handlers.edit_request(person, ids, garments, text, checked)
    entry, _ = handlers.generate(editor, request, [], session, notes=(scaled,) if scaled else ())
    gallery = [{"image": file_data(image), "caption": None} for image in entry.images]
    return gallery, entry.seed, file_data(entry.recipe)


def person_photo(editor, value: Any):
    """(photo, note or None): the uploaded person photo, upright RGB, scaled to the editing limit."""
    path = uploaded_file(value, "photo")
    if not path:
        raise InputError("no photo given: send a PNG or JPEG of a person")
    return handlers.photo_for_editing(editor, path)


def parse_ids(text: str | list | None) -> list[str]:
    """Catalog ids from a list or a comma-separated string (never file paths: unknown ids are refused later)."""
    if not text:
        return []
    if not isinstance(text, str | list) or len(text) > MAX_ID_TEXT:
        raise InputError(f"garment_ids={values.shown(text)}: give up to 3 catalog ids, comma-separated")
    items = text if isinstance(text, list) else text.split(",")
    if not all(isinstance(item, str) for item in items):
        raise InputError(f"garment_ids={values.shown(text)}: catalog ids are strings")
    return [item.strip() for item in items if item.strip()]


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

    for endpoint, name, lane in ((prepare_endpoint, "prepare", "prepare"), (search_endpoint, "search", "search"),
                                 (edit_endpoint, "edit", "gpu")):  # fmt: skip
        gr.api(endpoint, api_name=name, concurrency_id=lane, concurrency_limit=LANE_LIMITS[lane])
    from fashion_rag.studio.batch import register_batch  # many edits in one call (issue 22)

    register_batch(editor)


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)
