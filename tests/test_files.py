"""fashion_rag/files.py: the one atomic write, fingerprint and file hash of the project."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fashion_rag.files import atomic_write, fingerprint, sha256_file


def test_atomic_write_replaces_the_whole_file_and_leaves_nothing_beside_it(tmp_path: Path):
    path = tmp_path / "lock.json"
    path.write_text("old")
    atomic_write(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓" and os.listdir(tmp_path) == ["lock.json"]
    atomic_write(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "lock.json"
    path.write_text("old")

    def refuse(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["lock.json"]  # no partial file left


def test_fingerprint_and_sha256(tmp_path: Path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1000)
    stat = path.stat()
    assert fingerprint(path) == fingerprint(stat) == (3000, stat.st_mtime_ns)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fingerprint(path) != (3000, stat.st_mtime_ns)
