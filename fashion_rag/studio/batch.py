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
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData

from fashion_rag.batch import plan_jobs, run_batch
from fashion_rag.config import DEFAULT_GUIDANCE, DEFAULT_SCHEDULER, DEFAULT_STEPS
from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.request import RANDOM
from fashion_rag.studio import values
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
    """A generator of progress updates: {"done", "total", "results"}, one update per finished job."""
    if not isinstance(photos, list) or not photos:
        raise InputError("photos must be a list of uploaded person photos (gradio_client.handle_file(...))")
    paths = [uploaded_file(photo, f"photo {i + 1}") for i, photo in enumerate(photos)]
    images = [load_photo(path, name=Path(path).name) for path in paths if path]
    ids = parse_ids(garment_ids)
    requests = plan_jobs(
        images,
        values.choice("category", category, None),
        ids,
        each_garment=values.flag("each_garment", each_garment, False),
        description=values.description(description, editor.settings.limits.description_chars),
        seed=values.whole("seed", seed, RANDOM),
        steps=values.whole("steps", steps, DEFAULT_STEPS),
        guidance=values.real("guidance", guidance, DEFAULT_GUIDANCE),
        scheduler=values.choice("sampler", sampler, DEFAULT_SCHEDULER),
        paste_back=values.flag("paste_back", paste_back, True),
    )
    groups = len(requests) // len(images)
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
