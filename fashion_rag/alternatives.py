"""Alternatives side by side: one edit per garment (or garment set) on the same person, mask and seed.

    results = edit_alternatives(editor, person, [(("top-001",), ()), (("top-002",), ())], seed=7, options=options)

The alternatives differ only in their prompt (the garment tokens), so they run as ONE denoising batch
(`FashionRAGPipeline.alternatives`): n alternatives are a UNet batch of 2n with guidance, which for n <= 4 is a
CUDA graph captured at start-up (generation/graphs.py). Every image starts from the seed's noise, so
alternative i is the edit `Editor.edit` makes with garment i and that seed: its recipe repeats it alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from fashion_rag.config import GenerationSettings
from fashion_rag.errors import GpuOutOfMemoryError, InputError
from fashion_rag.generation.compose import feathered_alpha, paste_back, raw_output
from fashion_rag.generation.limits import MAX_IMAGES
from fashion_rag.results import EditResult, check_seed

MAX_ALTERNATIVES = MAX_IMAGES  # one batch: 2 x 4 with guidance is the largest CUDA graph captured
Alternative = tuple[tuple[str, ...], tuple[Image.Image, ...]]  # (catalog ids, uploaded garment images)


def check_alternatives(editor, person, alternatives: Sequence[Alternative], options: GenerationSettings) -> None:
    """InputError for an empty or too long list, or an alternative that `Editor.edit` would refuse."""
    if not 1 <= len(alternatives) <= MAX_ALTERNATIVES:
        raise InputError(f"{len(alternatives)} alternatives: compare 1 to {MAX_ALTERNATIVES} garments at a time")
    for ids, images in alternatives:
        if not ids and not images:
            raise InputError("an alternative without a garment: each alternative needs a catalog id or an image")
        # The editor's own check (count, repeats, category, options), so an alternative is exactly an edit.
        editor._check_edit(person, list(ids), len(ids) + len(images), "", options)


def edit_alternatives(
    editor,
    person,
    alternatives: Sequence[Alternative],
    seed: int | None = None,
    options: GenerationSettings | None = None,
    progress=None,
) -> list[EditResult]:
    """One EditResult per alternative (one image each), all with the same seed, made in one denoising batch."""
    import torch

    editor.check_generation_ready()
    options = replace(options or GenerationSettings(), num_images=1)
    check_alternatives(editor, person, alternatives, options)
    seed = check_seed(seed)
    if hasattr(editor, "run_many"):  # serve mode (serve/pool.py): one request each, spread over the edit workers
        return pooled(editor, person, alternatives, seed, options)
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
        pipeline.use_scheduler(options.scheduler)
        generator = torch.Generator("cpu").manual_seed(seed)
        denoise_start = time.perf_counter()
        try:
            frames = pipeline.alternatives(
                person.frame,
                person.mask,
                conditionals,
                prompts[0][0],
                pose_map=person.pose_map,
                num_inference_steps=options.steps,
                guidance_scale=options.guidance,
                generator=generator,
                callback=progress,
            )
        except torch.OutOfMemoryError as error:
            raise GpuOutOfMemoryError(
                f"the GPU ran out of memory comparing {len(alternatives)} garments: compare fewer at a time"
            ) from error
        timings["pipeline_s"] = time.perf_counter() - denoise_start
    compose_start = time.perf_counter()
    images = compose(person, frames, options)
    timings["compose_s"] = time.perf_counter() - compose_start
    timings["total_s"] = time.perf_counter() - started
    rounded = {key: round(value, 4) for key, value in timings.items()}
    results = []
    for (ids, uploaded), image, frame in zip(alternatives, images, frames, strict=True):
        recipe = editor.recipe(person, list(ids), len(uploaded), "", seed, options)
        raw = Image.fromarray(np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8))
        results.append(EditResult([image], [raw], seed, {**rounded, "batch": len(alternatives)}, recipe))
    return results


def compose(person, frames: np.ndarray, options: GenerationSettings) -> list[Image.Image]:
    """Each (512, 384, 3) frame back at the photo's size: pasted into the original outside the mask, as
    `Editor.edit` composes its images (generation/compose.py)."""
    original = np.asarray(person.original.convert("RGB"))
    alpha = feathered_alpha(person.mask, options.feather_px)
    if options.paste_back:
        return [Image.fromarray(paste_back(original, frame, alpha, person.transform.unframe)) for frame in frames]
    return [Image.fromarray(raw_output(original.shape, frame, person.transform.unframe)) for frame in frames]


def pooled(editor, person, alternatives: Sequence[Alternative], seed: int, options: GenerationSettings):
    """The alternatives as separate requests with one seed, run at once on the worker pool (each the same
    edit as its place in the batch: see the module docstring); the first refusal is raised."""
    from fashion_rag.request import request_of

    requests = [request_of(person, ids, images, "", seed, options) for ids, images in alternatives]
    results: list[EditResult | None] = [None] * len(requests)
    for index, result, error in editor.run_many(requests):
        if error is not None:
            raise InputError(f"alternative {index + 1} ({', '.join(alternatives[index][0]) or 'image'}): {error}")
        results[index] = result
    return results
