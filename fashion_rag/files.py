"""Small file helpers shared by the catalog index and the weights: one of each, so that every part of the
project writes, recognises and hashes files the same way.

    atomic_write(path, data)   the whole new content or the old one, never half (temporary file + rename)
    fingerprint(path | stat)   (size, mtime_ns): a file with the same fingerprint is taken as unchanged
    sha256_file(path)          hex sha256 of the bytes (hashlib.file_digest)
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

Fingerprint = tuple[int, int]  # (size in bytes, modification time in ns)


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write `data` (str as UTF-8) to `path` through a temporary file beside it, then rename it into place:
    a reader, or a crash, sees the previous file or the new one, never half of one. The temporary name is
    unique per call, so two writers of the same file cannot interleave their bytes."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def fingerprint(path: Path | str | os.stat_result) -> Fingerprint:
    """(size, mtime_ns) of a file, or of its stat already taken (os.scandir gives them for a whole
    folder): what is recorded to recognise it unchanged without reading it."""
    stat = path if isinstance(path, os.stat_result) else os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in blocks (hashlib.file_digest)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
