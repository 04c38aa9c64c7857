"""Writing the next index beside the current one: the folder is staged and swapped into place
(`fashion_rag.files.staged_folder`, so that a crash leaves the previous index or none, never a half-written
one), and files that did not change are hard-linked from the previous index (no bytes written, same inode
and mtime).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fashion_rag.files import staged_folder

__all__ = ["link_or_copy", "link_tree", "staged_folder"]


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
