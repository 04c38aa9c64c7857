"""Where the models run: the one device choice and the dtype that goes with it.

A module of its own so that `person` (the clothes parser), `catalog` (the retrieval encoder) and
`generation` choose the same device without importing one another. It imports torch: modules that must
stay light import it inside the function that loads a model.
"""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """The device to run on: `requested`, or with 'auto' the first of cuda, mps, cpu available."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on an accelerator (the published setting), fp32 on the CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32
