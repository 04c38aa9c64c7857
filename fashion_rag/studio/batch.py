"""The `batch` API endpoint: many edits in one call, each result streamed back as it finishes.

    job = client.submit([handle_file("a.png"), handle_file("b.png")], "upper_body", "top-001", False, "", 7, 20,
                        7.5, "ddim", True, api_name="/batch")
    for update in job:   # {"done": 1, "total": 2, "results": [...]} after each finished job
        ...

Jobs are every photo with all the garment ids, or (each_garment) every photo with each id in turn: one garment
on 20 model photos, or the top 6 search results each on one photo. In serve mode they spread over the worker
pool; locally they run in turn (fashion_rag/batch.py).
"""

# No `from __future__ import annotations`: gr.api reads the annotations as objects (see api.py).
from typing import Any

import gradio as gr
from gradio import FileData
from PIL import Image

from fashion_rag.batch import MAX_JOBS, plan_jobs, run_batch
from fashion_rag.errors import InputError
from fashion_rag.generation.limits import check_options
from fashion_rag.results import check_seed
from fashion_rag.studio import handlers, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.api import file_data, parse_ids, session_of
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.uploads import uploaded_file


def batch(
    editor,
    photos,
    category,
    garment_ids,
    each_garment,
    description,
    seed,
    steps,
    guidance,
    sampler,
    paste_back,
    session,
):
    """A generator of progress updates: {"done", "total", "results"}, one update per finished job.

    Everything is checked as /edit checks it, before any photo is decoded: the settings (their ranges too, so that
    a bad one is one refusal, not one error per job), the number of photos, and each photo's place in the list.
    """
    checked = handlers.controls(seed, steps, guidance, sampler, 1, paste_back)
    check_options(checked["steps"], checked["guidance"], checked["num_images"])
    if checked["seed"] is not None:  # None: each job picks its own
        check_seed(checked["seed"])
    ids = parse_ids(garment_ids)
    requests = plan_jobs(
        batch_photos(editor, photos),
        values.choice("category", category, None),
        ids,
        each_garment=values.flag("each_garment", each_garment, False),
        description=values.description(description, editor.settings.limits.description_chars),
        **checked,
    )
    groups = len(requests) // len(photos)  # photos: a checked list, one image per item
    results: list[dict[str, Any]] = []
    for index, result, error in run_batch(editor, requests):
        job = {"job": index, "photo": index // groups, "garment_ids": list(requests[index].garment_ids)}
        if error is not None:
            job["error"] = error
        else:
            saved = editor.save_result(result, session)
            job.update(
                images=[file_data(path) for path in saved.images], seed=result.seed, recipe=file_data(saved.recipe)
            )
        results.append(job)
        yield {"done": len(results), "total": len(requests), "results": results}


def batch_photos(editor, photos) -> list[Image.Image]:
    """The uploaded person photos, each upright and scaled to the editing limit as /edit scales its photo.

    The count is checked first (at most MAX_JOBS photos: a call of 1,000 photos is refused unread) and a missing
    photo is refused, not skipped: skipping it would shift every later result's `photo` index.
    """
    if not isinstance(photos, list) or not photos:
        raise InputError("photos must be a list of uploaded person photos (gradio_client.handle_file(...))")
    if len(photos) > MAX_JOBS:
        raise InputError(f"{len(photos)} photos: a batch takes 1 to {MAX_JOBS} photos")
    paths = [uploaded_file(photo, f"photo {i + 1}") for i, photo in enumerate(photos)]
    if None in paths:
        raise InputError(
            f"photo {paths.index(None) + 1} of {len(paths)} is empty: every item must be an uploaded photo"
        )
    return [handlers.photo_for_editing(editor, path)[0] for path in paths]


def register_batch(editor) -> None:
    """Declare the `batch` endpoint inside the current gr.Blocks (called from api.register)."""

    def batch_endpoint(
        photos: list[FileData],
        category: str = "upper_body",
        garment_ids: str = "",
        each_garment: bool = False,
        description: str = "",
        seed: int = -1,
        steps: int = 50,
        guidance: float = 7.5,
        sampler: str = "ddim",
        paste_back: bool = True,
        request: gr.Request = None,
    ) -> dict:
        """Edit many photos and/or garments in one call; yields {"done", "total", "results"} as jobs finish.
        Each result: job, photo (index), garment_ids, and images + seed + recipe, or error."""
        with user_errors_as_gradio():
            yield from batch(
                editor,
                photos,
                category,
                garment_ids,
                each_garment,
                description,
                seed,
                steps,
                guidance,
                sampler,
                paste_back,
                session_of(request),
            )

    batch_endpoint.__name__ = "batch"  # its MCP tool name (api.register)
    # One batch at a time per concurrency slot of the pool: its jobs already fill every worker.
    gr.api(batch_endpoint, api_name="batch", concurrency_id="gpu", concurrency_limit=LANE_LIMITS["gpu"])
