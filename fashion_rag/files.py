"""Small file helpers shared by every package: one of each, so that every part of the project writes,
recognises and hashes files the same way.

    atomic_write(path, data)   the whole new content or the old one, never half (temporary file + rename)
    atomic_path(path)          the same for writers that take a file name (safetensors, numpy): a block
                               writes to the temporary name it yields
    staged_folder(folder)      the same for a whole folder: a block fills a new folder, swapped into place
    fingerprint(path | stat)   (size, mtime_ns): a file with the same fingerprint is taken as unchanged
    sha256_file(path)          hex sha256 of the bytes (hashlib.file_digest)
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Fingerprint = tuple[int, int]  # (size in bytes, modification time in ns)


def _beside(path: Path, kind: str) -> Path:
    """A hidden name beside `path`, unique per call (process id and random), so that two writers of the same
    file (serve replicas share folders) never write into one temporary file. It keeps the suffix: numpy's
    `save` adds `.npy` to a name without it."""
    return path.with_name(f".{path.stem}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary file name beside `path` for the block to write the new file to; renamed onto `path` when
    the block ends without an error, else removed. A reader, or a crash, sees the previous file or the new
    one, never half of one."""
    path = Path(path)
    partial = _beside(path, "partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write `data` (str as UTF-8) to `path` through atomic_path."""
    with atomic_path(path) as partial:
        partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


@contextmanager
def staged_folder(folder: Path | str) -> Iterator[Path]:
    """A new empty folder beside `folder` for the block to fill; when the block ends without an error it
    replaces `folder` (swap_into_place), else it is deleted and the previous folder is kept."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = _beside(folder, "tmp")
    staged.mkdir()
    try:
        yield staged
        swap_into_place(staged, folder)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def swap_into_place(staged: Path, folder: Path) -> None:
    """Rename the finished `staged` folder to `folder`, moving any previous one aside first (a folder cannot
    be replaced in one atomic rename; between the two renames there is no folder, never half of one)."""
    if not folder.exists():
        os.rename(staged, folder)
        return
    old = _beside(folder, "old")
    os.rename(folder, old)
    try:
        os.rename(staged, folder)
    except OSError:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def fingerprint(path: Path | str | os.stat_result) -> Fingerprint:
    """(size, mtime_ns) of a file, or of its stat already taken (os.scandir gives them for a whole
    folder): what is recorded to recognise it unchanged without reading it."""
    stat = path if isinstance(path, os.stat_result) else os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in blocks (hashlib.file_digest)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
