"""Where results go: per-session folders under one root, written and cleaned without racing each other.

    outputs = Outputs(root, max_age_s=24 * 3600, max_bytes=5 * 2**30)
    with outputs.session_folder(session_hash) as folder:   # in use: never cleaned while inside
        saved = save_result(result, folder)                 # PNGs at the photo's size + recipe JSON

Handing out a folder costs the same with 50 or 50,000 folders: a mkdir, a utime and a counter under the
lock. Clean-up is separate: at most every `clean_every_s` a background thread reads the folders' ages
and sizes (outside the lock), then deletes folders not in use that are older than `max_age_s`, and, while
all of them together hold more than `max_bytes`, the oldest first. A folder is taken out of use by
renaming it under the lock (so a session arriving a moment later gets a fresh folder, never a
half-deleted one) and removed after the lock is released.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

CLI_SESSION = "cli"  # the folder name when there is no browser session (CLI, library)
TRASH_PREFIX = ".deleting-"  # folders being removed; session names are letters and digits only


def folder_name(session: str | None) -> str:
    """A session hash as a folder name: letters and digits only, so it cannot leave the root."""
    return "".join(ch for ch in (session or CLI_SESSION) if ch.isalnum())[:64] or "anonymous"


@dataclass(frozen=True)
class FolderUse:
    """What one clean-up read of a session folder: its last use and the bytes of its files."""

    path: Path
    mtime: float
    size: int


class Outputs:
    """Per-session result folders under `root`: gone `max_age_s` after their last use, and oldest-first once
    all of them hold more than `max_bytes` (None: no size cap)."""

    def __init__(self, root: Path, max_age_s: int, max_bytes: int | None = None, clean_every_s: float = 60.0) -> None:
        self.root = Path(root)
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.clean_every_s = clean_every_s
        self.last_total_bytes = 0  # what the last clean-up left, for the status and tests
        self._lock = threading.Lock()
        self._in_use: Counter[str] = Counter()  # folder name -> writers inside session_folder()
        self._next_clean = time.monotonic() + clean_every_s  # when the next background clean-up is due
        self._cleaning = threading.Lock()  # one clean-up at a time

    @contextmanager
    def session_folder(self, session: str | None) -> Iterator[Path]:
        """The session's folder, created and marked in use (and fresh) until the block ends."""
        name = folder_name(session)
        folder = self.root / name
        with self._lock:
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
            self._clean_when_due()

    def folder(self, session: str | None) -> Path:
        """The session's folder (for callers that write at once; prefer session_folder)."""
        with self.session_folder(session) as folder:
            return folder

    def clean(self) -> list[Path]:
        """Delete what the age and size limits say must go, now; returns the folders deleted."""
        with self._cleaning:
            uses = self._read_folders()
            doomed = self._doomed(uses)
            trashed = []
            with self._lock:
                for use in doomed:
                    if use.path.name in self._in_use or not use.path.is_dir():
                        continue  # handed out again since it was read: it stays
                    trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
                    use.path.rename(trash)
                    trashed.append((use, trash))
            for _, trash in trashed:
                shutil.rmtree(trash, ignore_errors=True)
            deleted = [use.path for use, _ in trashed]
            self.last_total_bytes = sum(use.size for use in uses) - sum(use.size for use, _ in trashed)
            return deleted

    def _clean_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + self.clean_every_s
        threading.Thread(target=self.clean, name="outputs-clean", daemon=True).start()

    def _read_folders(self) -> list[FolderUse]:
        if not self.root.is_dir():
            return []
        uses = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(TRASH_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)  # left by a clean-up that was interrupted
                continue
            if entry.is_dir(follow_symlinks=False):
                uses.append(FolderUse(Path(entry.path), entry.stat().st_mtime, tree_bytes(entry.path)))
        return uses

    def _doomed(self, uses: list[FolderUse]) -> list[FolderUse]:
        """Folders past their age, then the oldest of the rest until the total is within max_bytes."""
        cutoff = time.time() - self.max_age_s
        old = [use for use in uses if use.mtime < cutoff]
        if self.max_bytes is None:
            return old
        kept = sorted((use for use in uses if use.mtime >= cutoff), key=lambda use: use.mtime)
        total = sum(use.size for use in kept)
        over = []
        for use in kept:  # oldest first; the in-use check happens under the lock
            if total <= self.max_bytes:
                break
            if use.path.name not in self._in_use:
                over.append(use)
                total -= use.size
        return old + over


def tree_bytes(folder: str | Path) -> int:
    """Bytes of the files under `folder`, its sub-folders included (a history entry keeps an uploaded garment in
    one, studio/handlers.save_views); links are not followed."""
    total = 0
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            total += tree_bytes(entry.path)
        elif entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total


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
