"""Alternatives side by side: one edit per garment (or garment set) on the same person, mask and seed.

    request = EditRequest.of(person, seed=7, steps=20)   # the person, mask, seed and sampling they share
    results = edit_alternatives(editor, request, [(("top-001",), ()), (("top-002",), ())])

The alternatives differ only in their prompt (the garment tokens), so they run as ONE denoising batch
(`FashionRAGPipeline.alternatives`): n alternatives are a UNet batch of 2n with guidance, which for n <= 4 is a
CUDA graph captured at start-up (generation/graphs.py). Every image starts from the seed's noise, so
alternative i is the edit `Editor.edit` makes of `alone(request, alternative i)`: its recipe repeats it alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from PIL import Image

from fashion_rag.errors import GpuOutOfMemoryError, InputError
from fashion_rag.generation.limits import MAX_IMAGES
from fashion_rag.results import EditResult, check_seed, compose_images

if TYPE_CHECKING:
    from fashion_rag.request import EditRequest

MAX_ALTERNATIVES = MAX_IMAGES  # one batch: 2 x 4 with guidance is the largest CUDA graph captured
Alternative = tuple[tuple[str, ...], tuple[Image.Image, ...]]  # (catalog ids, uploaded garment images)


def alone(request: EditRequest, alternative: Alternative) -> EditRequest:
    """The single edit an alternative is: `request` with the alternative's garments, no description, one image."""
    ids, images = alternative
    return replace(request, garment_ids=tuple(ids), garment_images=tuple(images), description="", num_images=1)


def check_alternatives(editor, request: EditRequest, alternatives: Sequence[Alternative]) -> None:
    """InputError for an empty or too long list, or an alternative that `Editor.edit` would refuse."""
    if not 1 <= len(alternatives) <= MAX_ALTERNATIVES:
        raise InputError(f"{len(alternatives)} alternatives: compare 1 to {MAX_ALTERNATIVES} garments at a time")
    for ids, images in alternatives:
        if not ids and not images:
            raise InputError("an alternative without a garment: each alternative needs a catalog id or an image")
        # The editor's own check (count, repeats, category, options), so an alternative is exactly an edit.
        editor._check_edit(alone(request, (ids, images)))


def edit_alternatives(
    editor, request: EditRequest, alternatives: Sequence[Alternative], progress=None
) -> list[EditResult]:
    """One EditResult per alternative (one image each) of `request`'s prepared person, mask, seed and sampling,
    all with the same seed (random when None), made in one denoising batch. The request's own garments and
    description are not used."""
    import torch

    editor.check_generation_ready()
    if request.person is None:
        raise InputError("alternatives need a prepared person (EditRequest.of(person, ...))")
    check_alternatives(editor, request, alternatives)
    request = replace(request, seed=check_seed(request.seed), num_images=1)
    if hasattr(editor, "run_many"):  # serve mode (serve/pool.py): one request each, spread over the edit workers
        return pooled(editor, request, alternatives)
    person = request.person.prepared(request.category)  # the pose map, from the keypoints
    timings: dict[str, float] = {}
    # The editor's lock: one GPU job at a time, whether an edit or a comparison (editor.py).
    with editor._generation_lock:
        started = time.perf_counter()
        pipeline = editor.pipeline
        prompts = [
            pipeline.encode_prompts(person.category, editor.garment_tokens(list(ids), list(images)))
            for ids, images in alternatives
        ]
        conditionals = torch.cat([conditional for _, conditional in prompts])  # (n, 77, width)
        timings["garments_s"] = time.perf_counter() - started
        pipeline.use_scheduler(request.scheduler)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        denoise_start = time.perf_counter()
        try:
            frames = pipeline.alternatives(
                person.frame,
                person.mask,
                conditionals,
                prompts[0][0],
                pose_map=person.pose_map,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                generator=generator,
                callback=progress,
            )
        except torch.OutOfMemoryError as error:
            raise GpuOutOfMemoryError(
                f"the GPU ran out of memory comparing {len(alternatives)} garments: compare fewer at a time"
            ) from error
        timings["pipeline_s"] = time.perf_counter() - denoise_start
    compose_start = time.perf_counter()
    images, raw_frames = compose_images(person, frames, request)  # as Editor.edit composes its images
    timings["compose_s"] = time.perf_counter() - compose_start
    timings["total_s"] = time.perf_counter() - started
    rounded = {key: round(value, 4) for key, value in timings.items()}
    return [
        EditResult([image], [raw], request.seed, {**rounded, "batch": len(alternatives)}, editor.recipe(one))
        for one, image, raw in zip((alone(request, a) for a in alternatives), images, raw_frames, strict=True)
    ]


def pooled(editor, request: EditRequest, alternatives: Sequence[Alternative]):
    """The alternatives as separate requests with one seed, run at once on the worker pool (each the same
    edit as its place in the batch: see the module docstring); the first refusal is raised."""
    requests = [alone(request, alternative) for alternative in alternatives]
    results: list[EditResult | None] = [None] * len(requests)
    for index, result, error in editor.run_many(requests):
        if error is not None:
            raise InputError(f"alternative {index + 1} ({', '.join(alternatives[index][0]) or 'image'}): {error}")
        results[index] = result
    return results
