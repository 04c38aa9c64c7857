"""fashion_rag/files.py: the one atomic write (of bytes, of a file a library writes, of a folder), fingerprint and
file hash of the project."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fashion_rag.files import atomic_path, atomic_write, fingerprint, sha256_file, staged_folder


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


def test_a_library_writes_through_atomic_path_and_a_failure_keeps_the_old_file(tmp_path: Path):
    import numpy as np

    path = tmp_path / "vectors.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(RuntimeError, match="cut"), atomic_path(path) as partial:
        np.save(partial, np.ones(3))
        raise RuntimeError("cut")
    assert np.load(path).tolist() == [0.0, 0.0, 0.0] and os.listdir(tmp_path) == ["vectors.npy"]
    with atomic_path(path) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".vectors.") and partial.suffix == ".npy"
        np.save(partial, np.ones(3))
    assert np.load(path).tolist() == [1.0, 1.0, 1.0] and os.listdir(tmp_path) == ["vectors.npy"]


def test_a_staged_folder_replaces_the_folder_whole_or_not_at_all(tmp_path: Path):
    folder = tmp_path / "index"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="cut"), staged_folder(folder) as staged:
        (staged / "new.txt").write_text("new")
        raise RuntimeError("cut")
    assert os.listdir(folder) == ["old.txt"] and os.listdir(tmp_path) == ["index"]
    with staged_folder(folder) as staged:
        (staged / "new.txt").write_text("new")
        assert os.listdir(folder) == ["old.txt"]  # readers see the old folder until the block ends
    assert os.listdir(folder) == ["new.txt"] and os.listdir(tmp_path) == ["index"]
    with staged_folder(tmp_path / "fresh" / "bundle") as staged:  # no folder before, nor its parent
        (staged / "a").write_text("a")
    assert os.listdir(tmp_path / "fresh") == ["bundle"]
