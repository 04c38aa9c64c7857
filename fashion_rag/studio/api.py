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
from fashion_rag.request import EditRequest
from fashion_rag.studio import handlers, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.gpu import run_on_gpu
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
    keypoints = [
        None if np.isnan(p).any() else [round(float(p[0]), 1), round(float(p[1]), 1)] for p in prepared.keypoints
    ]
    info = {
        "mask_source": prepared.mask_source,
        "notes": prepared.notes,
        "keypoints": keypoints,
        "transform": prepared.transform.to_dict(),
        "category": prepared.category,
    }
    return tuple(file_data(files[name]) for name in ("frame", "mask", "overlay", "pose")) + (info,)


def search(editor, text: str, category: str, k: Any) -> dict[str, Any]:
    """Top-k catalog garments of a category for a description."""
    text = values.description(text, editor.settings.limits.description_chars)
    category = values.choice("category", category, None)
    hits = editor.search(text, category, values.whole("k", k, 6))  # an explicit 0 is refused, not replaced by 6
    return {"mode": editor.searcher.mode, "hits": [hit.to_dict() for hit in hits]}


def edit(
    editor,
    photo,
    category,
    garment_ids,
    garment_image,
    mask,
    description,
    seed,
    steps,
    guidance,
    sampler,
    num_images,
    paste_back,
    session,
):
    """(gallery, seed used, recipe file) of one edit, run as one EditRequest: in serve mode one call to one worker
    (prepare and edit there); locally the person is prepared before the GPU function (studio/gpu.py)."""
    checked = handlers.controls(seed, steps, guidance, sampler, num_images, paste_back)  # before any work
    text = values.description(description, editor.settings.limits.description_chars)
    ids = parse_ids(garment_ids)
    category = values.choice("category", category, None)
    photo, scaled = person_photo(editor, photo)
    mask_path = uploaded_file(mask, "mask")
    garment_path = uploaded_file(garment_image, "garment image")
    garments = (load_photo(garment_path, name=Path(garment_path).name),) if garment_path else ()
    request = EditRequest(
        category,
        photo=photo,
        mask=np.asarray(load_mask(mask_path)) if mask_path else None,
        garment_ids=tuple(ids),
        garment_images=garments,
        description=text,
        **checked,
    )
    try:
        result = run_on_gpu(editor, request)
        if scaled:
            result.recipe["notes"] = [scaled]  # said with the result and kept in its recipe
        saved = editor.save_result(result, session)
    finally:
        hand_back_freed_heap()  # the edit's and the PNG encoder's freed buffers (studio/memory.py)
    gallery = [{"image": file_data(image), "caption": None} for image in saved.images]
    return gallery, result.seed, file_data(saved.recipe)


def person_photo(editor, value: Any):
    """(photo, note or None): the uploaded person photo, upright RGB, scaled to the editing limit."""
    path = uploaded_file(value, "photo")
    if not path:
        raise InputError("no photo given: send a PNG or JPEG of a person")
    return handlers.photo_for_editing(editor, path)


def parse_ids(text: str | list | None, name: str = "garment_ids") -> list[str]:
    """Catalog ids from a list or a comma-separated string (never file paths: unknown ids are refused later).
    `name` is the endpoint's parameter, which the refusal names (/outfit has upper_ids and lower_ids)."""
    if not text:
        return []
    if not isinstance(text, str | list) or len(text) > MAX_ID_TEXT:
        raise InputError(f"{name}={values.shown(text)}: give up to 3 catalog ids, comma-separated")
    items = text if isinstance(text, list) else text.split(",")
    if not all(isinstance(item, str) for item in items):
        raise InputError(f"{name}={values.shown(text)}: catalog ids are strings")
    return [item.strip() for item in items if item.strip()]


def register(editor) -> None:
    """Declare the endpoints inside the current gr.Blocks. With `python app.py --mcp` each one is also an MCP
    tool named after its endpoint; its docstring (a summary, `Args:` and `Returns:`) is what an agent reads."""
    for endpoint, name, lane in (
        (prepare_tool(editor), "prepare", "prepare"),
        (search_tool(editor), "search", "search"),
        (edit_tool(editor), "edit", "gpu"),
    ):
        endpoint.__name__ = name  # the MCP tool name (Gradio names tools after the function)
        gr.api(endpoint, api_name=name, concurrency_id=lane, concurrency_limit=LANE_LIMITS[lane])
    from fashion_rag.studio.batch import register_batch  # many edits in one call (issue 22)

    register_batch(editor)


def prepare_tool(editor):
    def prepare_endpoint(
        photo: FileData | None, category: str = "upper_body", mask_variant: str = "box", request: gr.Request = None
    ) -> tuple[FileData, FileData, FileData, FileData, dict]:
        """Find the person in a photo and the garment region to repaint, before an edit (step 1 of 3).
        Optional: `edit` prepares the photo itself; call this to show or check the mask first.

        Args:
            photo: a photo of one person (PNG, JPEG, WebP …), uploaded to this server.
            category: the garment region: "upper_body" (tops, jackets), "lower_body" (trousers, skirts) or "dresses" (the whole body). A half-body photo cannot take lower_body or dresses: the answer says why.
            mask_variant: "box" (the region's bounding shape, best for a garment of another cut) or "precise" (the current garment's outline).

        Returns:
            frame: the person's 3:4 frame the model edits (PNG)
            mask: the region to repaint in that frame, white on black (PNG)
            overlay: the mask drawn over the frame (PNG), to show a person
            pose: the detected body keypoints drawn over the frame (PNG)
            info: {"category", "mask_source", "notes" (plain-language remarks), "keypoints" (x, y or null), "transform" (frame to photo)}
        """  # noqa: E501
        with user_errors_as_gradio():
            return prepare(editor, photo, category, mask_variant, session_of(request))

    return prepare_endpoint


def search_tool(editor):
    def search_endpoint(text: str, category: str = "upper_body", k: int = 6) -> dict:
        """Search the garment catalog with a description and get the best matching garments' ids (step 2 of 3).

        Args:
            text: what the garment looks like, in English, e.g. "navy double-breasted blazer with gold buttons".
            category: "upper_body", "lower_body" or "dresses": only garments of this category are searched.
            k: how many garments to return, from 1 to the catalog's garments of that category (6 is usual).

        Returns:
            {"mode": how the catalog was searched, "hits": [{"id", "category", "caption", "score", …}, best first]}. Pass up to 3 hit ids to `edit` as garment_ids. An empty list: nothing matches.
        """  # noqa: E501
        with user_errors_as_gradio():
            return search(editor, text, category, k)

    return search_endpoint


def edit_tool(editor):
    def edit_endpoint(
        photo: FileData | None,
        category: str = "upper_body",
        garment_ids: str = "",
        garment_image: FileData | None = None,
        mask: FileData | None = None,
        description: str = "",
        seed: int = -1,
        steps: int = 50,
        guidance: float = 7.5,
        sampler: str = "ddim",
        num_images: int = 1,
        paste_back: bool = True,
        request: gr.Request = None,
    ) -> tuple[list[dict], int, FileData]:
        """Dress the person of a photo in new garments: the garment region is repainted (step 3 of 3). Slow:
        seconds on a GPU, minutes on a CPU. Garments come from catalog ids (from `search`) and/or one image of
        a garment; with neither, the description alone drives the edit (a text-only edit).

        Args:
            photo: a photo of one person (PNG, JPEG, WebP …), uploaded to this server.
            category: "upper_body", "lower_body" or "dresses": the region to repaint and the garments' category.
            garment_ids: up to 3 catalog ids from `search`, comma-separated, e.g. "top-001,top-004"; "" for none.
            garment_image: optional image of one garment of your own (a product photo), used like a catalog garment.
            mask: optional mask of the region to repaint (white = repaint), in the photo's size or the frame of `prepare`; none: the automatic mask.
            description: the garment in words; used with the garments, and alone for a text-only edit.
            seed: a whole number to repeat a result; -1 picks a random one (the seed used is returned).
            steps: denoising steps, 1 to 150; 50 is the model's recipe, fewer is faster and rougher.
            guidance: how strongly the description and garments steer the picture, 0 to 30 (7.5 usual).
            sampler: "ddim" (the recipe) or "dpm++" (good at 25 steps).
            num_images: how many pictures to make, 1 to 4.
            paste_back: true keeps the photo's own pixels outside the mask.

        Returns:
            images: the edited photos at full resolution (a gallery)
            seed: the seed used
            recipe: a JSON file that repeats this edit (`python -m fashion_rag edit --recipe FILE`)
        """  # noqa: E501
        with user_errors_as_gradio():
            return edit(
                editor,
                photo,
                category,
                garment_ids,
                garment_image,
                mask,
                description,
                seed,
                steps,
                guidance,
                sampler,
                num_images,
                paste_back,
                session_of(request),
            )

    return edit_endpoint


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)
