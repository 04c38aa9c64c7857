"""The staged-folder swap: a new index is written into a temporary folder beside the target and renamed
into place, so that a crash leaves the previous index or none, never a half-written one. Files that did
not change are hard-linked from the previous index (no bytes written, same inode and mtime).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(index_dir: Path) -> Iterator[Path]:
    """A new empty folder beside `index_dir` to write the next index into; when the block ends without an
    error it replaces `index_dir` (swap_into_place), else it is deleted and the previous index is kept."""
    tmp = index_dir.parent / f".{index_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
        swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_into_place(tmp: Path, index_dir: Path) -> None:
    """Rename the finished `tmp` folder to `index_dir`, moving any previous index aside first (a folder
    cannot be replaced in one atomic rename; between the two renames there is no index, never half of one)."""
    if not index_dir.exists():
        os.rename(tmp, index_dir)
        return
    old = index_dir.parent / f".{index_dir.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(index_dir, old)
    try:
        os.rename(tmp, index_dir)
    except OSError:
        os.rename(old, index_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no bytes written, same inode and mtime), or a copy where links are not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def link_tree(source: Path, target: Path) -> None:
    """A copy of the folder `source` at `target` made of hard links (copies where links are refused)."""

    def link(src: str, dst: str) -> None:
        link_or_copy(Path(src), Path(dst))

    shutil.copytree(source, target, copy_function=link)
