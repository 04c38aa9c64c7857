"""The one function that needs the GPU, and how long to ask ZeroGPU for it.

On a Hugging Face ZeroGPU Space a GPU is attached only while a function marked with `spaces.GPU` runs,
and the Space's quota is charged for the duration asked, so the duration is computed from the request:
a fixed part (attaching the GPU, moving weights onto it on the first call of a process, encoding the
garments, decoding the latents) plus a part per denoising step and image. Person preparation, search,
file writing and the page's previews run outside it, on the CPU.

Per step and image: the eager fp16 UNet step at batch 2 (one image with classifier-free guidance) takes
28 ms on an H200 and 38 ms on an H100 (docs/PERFORMANCE.md); a ZeroGPU slice is given 0.1 s, a margin of
~2.5x for sharing and for the VAE decode of each image.
"""

from __future__ import annotations

import math
import time

FIXED_S = 20  # attach, first-call weight transfer, garment encoding, VAE decode
PER_STEP_IMAGE_S = 0.1  # one denoising step of one image, with margin


def gpu_seconds(steps: int, num_images: int) -> int:
    """Seconds to ask ZeroGPU for an edit of `steps` steps and `num_images` images."""
    return FIXED_S + math.ceil(PER_STEP_IMAGE_S * max(1, int(steps)) * max(1, int(num_images)))


def edit_duration(editor, request, progress=None) -> int:
    """spaces.GPU's duration callable: it receives the arguments of `edit_on_gpu` (an EditRequest)."""
    return gpu_seconds(request.steps, request.num_images)


def gpu_function(fn, duration=edit_duration):
    """`fn` marked for ZeroGPU with a computed `duration` (a callable of fn's arguments) where the `spaces`
    package is installed; else `fn`."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _edit_on_gpu(editor, request, progress=None):
    """Editor.run of a request with a prepared person: garment encoding, denoising and decoding (GPU), then the
    paste-back (cheap, CPU)."""
    return editor.run(request, progress=progress)


edit_on_gpu = gpu_function(_edit_on_gpu)


def run_on_gpu(editor, request, progress=None):
    """One EditRequest (fashion_rag/request.py) with only its edit in the GPU function: a photo is prepared
    before it, on the CPU. A worker pool (serve mode, `editor.remote`) takes the whole request in one call."""
    if getattr(editor, "remote", False):
        return editor.run(request, progress)
    from fashion_rag.request import with_person

    started = time.perf_counter()
    request, notes = with_person(editor, request)  # the photo and its painted mask, or the frame it already holds
    prepare_s = time.perf_counter() - started
    result = edit_on_gpu(editor, request, progress)
    result.timings["prepare_s"] = round(prepare_s, 4)
    result.notes.extend(notes)  # e.g. "2 people found; used the largest"
    return result
