"""Where results go: per-session folders under one root, written and cleaned without racing each other.

    outputs = Outputs(root, max_age_s=24 * 3600)
    with outputs.session_folder(session_hash) as folder:   # in use: never cleaned while inside
        saved = save_result(result, folder)                 # PNGs at the photo's size + recipe JSON

Clean-up deletes folders whose last use is older than `max_age_s`. It runs under the same lock that marks a
folder as in use, and skips folders in use, so a session that was idle for a day and writes again never
finds its folder deleted between being handed the path and writing to it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

CLI_SESSION = "cli"  # the folder name when there is no browser session (CLI, library)


def folder_name(session: str | None) -> str:
    """A session hash as a folder name: letters and digits only, so it cannot leave the root."""
    return "".join(ch for ch in (session or CLI_SESSION) if ch.isalnum())[:64] or "anonymous"


class Outputs:
    """Per-session result folders under `root`, deleted `max_age_s` after their last use."""

    def __init__(self, root: Path, max_age_s: int) -> None:
        self.root = Path(root)
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._in_use: Counter[str] = Counter()  # folder name -> writers inside session_folder()

    @contextmanager
    def session_folder(self, session: str | None) -> Iterator[Path]:
        """The session's folder, created and marked in use (and fresh) until the block ends."""
        name = folder_name(session)
        folder = self.root / name
        with self._lock:
            self._clean_locked()
            self._in_use[name] += 1
            folder.mkdir(parents=True, exist_ok=True)
            os.utime(folder)  # its age counts from its last use
        try:
            yield folder
        finally:
            with self._lock:
                self._in_use[name] -= 1
                if not self._in_use[name]:
                    del self._in_use[name]
                if folder.is_dir():
                    os.utime(folder)

    def folder(self, session: str | None) -> Path:
        """The session's folder after a clean-up (for callers that write at once; prefer session_folder)."""
        with self.session_folder(session) as folder:
            return folder

    def clean(self) -> list[Path]:
        """Delete folders not in use whose last use is older than max_age_s; returns what was deleted."""
        with self._lock:
            return self._clean_locked()

    def _clean_locked(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        cutoff = time.time() - self.max_age_s
        deleted = []
        for folder in self.root.iterdir():
            if folder.name in self._in_use or not folder.is_dir():
                continue
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                deleted.append(folder)
        return deleted


@dataclass(frozen=True)
class SavedResult:
    """Files of one edit: one PNG per image at the photo's own size, and the recipe beside them."""

    images: list[str]
    recipe: str


def stamp() -> str:
    """A file-name prefix unique within a session folder: time to the millisecond."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"


def save_result(result, folder: Path) -> SavedResult:
    """Write an EditResult's images (PNG) and recipe (JSON) into `folder`."""
    prefix = f"{stamp()}-seed{result.seed}"
    paths = []
    for index, image in enumerate(result.images):
        path = folder / f"{prefix}-{index + 1}.png"
        image.save(path, compress_level=1)  # ~10% larger, ~3x faster to write than level 6
        paths.append(str(path))
    recipe = folder / f"{prefix}.recipe.json"
    recipe.write_text(json.dumps(result.recipe, indent=2) + "\n")
    return SavedResult(paths, str(recipe))


def save_previews(prepared, folder: Path) -> dict[str, str]:
    """Frame, mask, mask overlay and pose drawing of a PreparedPerson as PNGs in `folder` (name -> path)."""
    from fashion_rag.person.pose import draw_skeleton
    from fashion_rag.person.prepare import mask_image, overlay_preview

    prefix = stamp()
    images: dict[str, Image.Image] = {
        "frame": prepared.frame,
        "mask": mask_image(prepared.mask),
        "overlay": overlay_preview(prepared),
        "pose": draw_skeleton(prepared.frame, prepared.keypoints),
    }
    paths = {}
    for name, image in images.items():
        paths[name] = str(folder / f"{prefix}-{name}.png")
        image.save(paths[name], compress_level=1)
    return paths
