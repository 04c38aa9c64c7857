"""Garment tokens computed once and reused.

Catalog garments are edited with again and again; their adapter tokens (16, width) depend only on
the image bytes and on the garment encoder + adapter weights. The cache key is the image's sha256
and an identity string of those weights, so a changed file or another encoder never hits a stale
entry. Entries live in memory and, when a folder is given, as safetensors files on disk.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashion_rag.files import atomic_path, fingerprint
from fashion_rag.images import to_rgb
from fashion_rag.weights.registry import ADAPTER_CHECKPOINT


def encoder_identity(encoder_dir: Path, fashion_dir: Path) -> str:
    """A short id of the garment encoder and adapter weights (file names and fingerprints)."""
    parts = []
    for path in sorted(Path(encoder_dir).glob("*.safetensors")) + [Path(fashion_dir) / ADAPTER_CHECKPOINT]:
        if path.is_file():
            size, mtime_ns = fingerprint(path)
            parts.append(f"{path.resolve()}:{size}:{mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def image_key(image: Image.Image) -> str:
    """sha256 of an image's RGB pixels (as the encoder sees them: transparency on white) and size."""
    rgb = to_rgb(image)
    digest = hashlib.sha256(f"{rgb.size}".encode())
    digest.update(np.asarray(rgb).tobytes())
    return digest.hexdigest()


class GarmentTokenCache:
    """(key, encoder identity) -> tokens (16, width), fp32 on the CPU."""

    def __init__(self, identity: str, directory: Path | None = None) -> None:
        self.identity = identity
        self.directory = Path(directory) / identity if directory is not None else None
        self._memory: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path | None:
        return self.directory / f"{key}.safetensors" if self.directory is not None else None

    def get(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        with self._lock:
            tokens = self._memory.get(key)
            path = self._path(key)
            if tokens is None and path is not None and path.is_file():
                tokens = load_file(str(path))["tokens"]
                self._memory[key] = tokens
            if tokens is None:
                self.misses += 1
            else:
                self.hits += 1
            return tokens

    def put(self, key: str, tokens: torch.Tensor) -> None:
        from safetensors.torch import save_file

        tokens = tokens.detach().float().cpu().contiguous()
        with self._lock:
            self._memory[key] = tokens
            path = self._path(key)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as partial:  # a name per process: serve replicas share the folder
                    save_file({"tokens": tokens}, str(partial))
