"""Embedding a catalog's images for the index: decoding in worker threads while the encoder runs, and a
checkpoint of the vectors so far, so that a killed build resumes where it stopped.

Decoding (PIL releases the GIL while it decodes and resizes) and the encoder's preprocessing run in a
thread pool a few batches ahead of the encoder; the encoder runs in the calling thread (on a GPU in
fp16, encoder.py). Every `checkpoint_every` images the new vectors are saved as one `part-NNNNNN.npz`
(sha256s and vectors) in `.<index name>.partial/` beside the index folder, tagged with the encoder
identity; the next build of the same index with the same encoder takes them instead of embedding again,
and a finished build deletes them.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fashion_rag.catalog.catalog import CatalogProblem
from fashion_rag.files import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 2048  # images between checkpoints: ~2 min of ViT-L-14 on a CPU, seconds on a GPU
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)  # decoding threads
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)

ProgressCallback = Callable[[int, int], None]  # (images embedded so far, images to embed)


class Checkpoint:
    """The vectors of an unfinished build of `index_dir` with the encoder `identity`."""

    def __init__(self, index_dir: Path, identity: str) -> None:
        self.directory = index_dir.parent / f".{index_dir.name}.partial"
        self.identity = identity
        self._parts = 0

    def load(self) -> dict[str, np.ndarray]:
        """sha256 -> (D,) vector of every saved part; {} when there is none or it is another encoder's."""
        tag = self.directory / "encoder.txt"
        if not tag.is_file():
            return {}
        if tag.read_text(encoding="utf-8") != self.identity:
            logger.info("discarding the checkpoint at %s: it was made with another encoder", self.directory)
            self.clear()
            return {}
        vectors: dict[str, np.ndarray] = {}
        for part in sorted(self.directory.glob("part-*.npz")):
            try:
                with np.load(part, allow_pickle=False) as data:
                    vectors.update(zip(data["sha256"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as error:  # a part cut short by the kill: embed those again
                logger.warning("ignoring the unreadable checkpoint part %s (%s)", part, error)
            self._parts += 1
        if vectors:
            logger.info("resuming: %d vectors from the checkpoint at %s", len(vectors), self.directory)
        return vectors

    def save(self, vectors: dict[str, np.ndarray]) -> None:
        """Add one part (written to a temporary name, then renamed: a part is whole or absent)."""
        if not vectors:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "encoder.txt").write_text(self.identity, encoding="utf-8")
        self._parts += 1
        final = self.directory / f"part-{self._parts:06d}.npz"
        shas = np.array(list(vectors), dtype="U64")
        buffer = io.BytesIO()  # a few MB: 2,048 vectors of 768 floats
        np.savez(buffer, sha256=shas, vectors=np.stack(list(vectors.values())).astype(np.float32))
        atomic_write(final, buffer.getvalue())

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def decode_image(path: Path) -> Image.Image:
    """The image at `path`, fully decoded now (a truncated file fails here, not inside the encoder)."""
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _decoded_batches(
    pending: list[tuple[str, Path]], size: int, workers: int, prepare: Callable[[Image.Image], object]
) -> Iterator[tuple[list[str], list[object], list[tuple[str, Path, Exception]]]]:
    """(sha256s, prepared images, failures) per batch of `size`, in order, decoded `workers` batches ahead."""

    def work(batch: list[tuple[str, Path]]):
        shas, prepared, failures = [], [], []
        for sha, path in batch:
            try:
                prepared.append(prepare(decode_image(path)))
                shas.append(sha)
            except DECODE_ERRORS as error:
                failures.append((sha, path, error))
        return shas, prepared, failures

    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    if workers < 1:
        yield from (work(batch) for batch in batches)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        ahead: deque[Future] = deque()
        for batch in batches:
            ahead.append(pool.submit(work, batch))
            if len(ahead) > workers:  # bounded: only a few batches of pixels wait in memory
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def embed_images(
    pending: list[tuple[str, Path]],
    encoder,
    *,
    batch_size: int,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    problems: list[CatalogProblem] | None = None,
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Embed the images of `pending` ((sha256, path) pairs): sha256 -> (D,) vector, and the sha256s of
    images that could not be decoded (each reported in `problems`).

    An encoder with `prepare_image` / `encode_prepared` (RetrievalEncoder) has its preprocessing done in
    the decoding threads too; any other (a test stand-in) gets decoded images through `encode_images`.
    """
    workers = DEFAULT_WORKERS if workers is None else workers
    prepare = getattr(encoder, "prepare_image", None)
    vectors: dict[str, np.ndarray] = {}
    unsaved: dict[str, np.ndarray] = {}
    failed: set[str] = set()
    done = 0
    if progress is not None:
        progress(0, len(pending))
    try:
        for shas, prepared, failures in _decoded_batches(pending, batch_size, workers, prepare or (lambda im: im)):
            for sha, path, error in failures:
                failed.add(sha)
                if problems is not None:
                    where = f"{path.parent.name}/{path.name}"
                    problems.append(CatalogProblem("corrupt-image", where, f"cannot be decoded ({error})"))
            if prepared:
                if prepare is not None:
                    batch = encoder.encode_prepared(prepared)
                else:
                    batch = encoder.encode_images(prepared, batch_size=batch_size)
                for sha, vector in zip(shas, batch, strict=True):
                    vectors[sha] = unsaved[sha] = vector
            done += len(shas) + len(failures)
            if checkpoint is not None and len(unsaved) >= checkpoint_every:
                checkpoint.save(unsaved)
                unsaved = {}
            if progress is not None:
                progress(done, len(pending))
    except BaseException:
        if checkpoint is not None:  # interrupted (Ctrl-C, an error): keep what was embedded
            checkpoint.save(unsaved)
        raise
    return vectors, failed
