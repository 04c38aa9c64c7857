"""Load a garment catalog folder: images per category, optional metadata, and a report of problems.

Layout (docs/catalog.md has the full description)::

    CATALOG/
      upper_body/   *.png *.jpg *.jpeg *.webp
      lower_body/   ...
      dresses/      ...
      metadata.jsonl  or  metadata.csv     (optional)

A metadata row gives `id`, `file` (relative to CATALOG, e.g. `dresses/d001.png`), `caption` or `title`
and `category`; each may be left out (an image without a row gets its file stem as id and no caption).
Nothing here is fatal except a catalog with no usable image at all: unknown categories, missing files,
duplicate ids and unreadable images are skipped and listed in `Catalog.problems`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fashion_rag.config import CATEGORIES
from fashion_rag.errors import InputError, check_category
from fashion_rag.files import fingerprint, sha256_file

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
METADATA_NAMES = ("metadata.jsonl", "metadata.csv")
MAX_ID_LENGTH = 128
# Images above this many pixels are refused (PIL's decompression-bomb guard is a warning only below 2x).
MAX_IMAGE_PIXELS = 64_000_000

# What an earlier look at a file found: relative file -> (size, mtime_ns, sha256). A file whose size and
# modification time are unchanged is taken to be the same file: not hashed, not opened again.
KnownFiles = dict[str, tuple[int, int, str]]


@dataclass(frozen=True)
class CatalogItem:
    """One garment of the catalog. `id` is the catalog id (never a path); `path` is where its image is."""

    id: str
    category: str
    path: Path
    caption: str  # from the metadata file ("caption", else "title"); "" when there is none
    sha256: str  # of the image file's bytes
    size: int = 0  # bytes, and
    mtime_ns: int = 0  # modification time of the image file when it was hashed: (size, mtime) unchanged = same file

    @property
    def file(self) -> str:
        """The image's path relative to the catalog folder, with forward slashes (`dresses/d001.png`)."""
        folder, name = os.path.split(self.path)  # strings: Path.parent costs ~10 us, x100k items per build
        return f"{os.path.basename(folder)}/{name}"


@dataclass(frozen=True)
class CatalogProblem:
    """Something skipped while loading or indexing. `kind` is one of: unknown-category,
    category-mismatch, missing-file, duplicate-id, bad-id, bad-metadata, corrupt-image, stray-file."""

    kind: str
    where: str  # the file or metadata line concerned
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass(frozen=True)
class Catalog:
    """The usable items of a catalog folder, sorted by category (in CATEGORIES order) then id."""

    root: Path
    items: tuple[CatalogItem, ...]
    problems: tuple[CatalogProblem, ...] = ()
    _by_id: dict[str, CatalogItem] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({item.id: item for item in self.items})

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CatalogItem]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def get(self, item_id: str) -> CatalogItem:
        """The item with catalog id `item_id`, or InputError."""
        try:
            return self._by_id[item_id]
        except (KeyError, TypeError):
            raise InputError(f"unknown catalog id {item_id!r}: not in the catalog at {self.root}") from None

    def in_category(self, category: str) -> list[CatalogItem]:
        """The items of one category (InputError for an unknown category)."""
        check_category(category)
        return [item for item in self.items if item.category == category]

    def counts(self) -> dict[str, int]:
        """Items per category, every category present (0 where empty)."""
        return {category: sum(item.category == category for item in self.items) for category in CATEGORIES}

    def report(self) -> str:
        """One line per problem, for the CLI and logs ('' when there is none)."""
        return "\n".join(str(problem) for problem in self.problems)


def check_image(path: Path) -> str | None:
    """None if `path` opens as an image of a sane size, else why not (a short reason)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.verify()  # checks the file structure (PNG chunk CRCs, JPEG markers) without decoding
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"not a readable image ({type(error).__name__}: {error})"
    if width * height > MAX_IMAGE_PIXELS:
        return f"{width}x{height} pixels is above the limit of {MAX_IMAGE_PIXELS:,}"
    return None


def id_problem(item_id: str) -> str | None:
    """Why `item_id` cannot be a catalog id, or None."""
    if not item_id or not item_id.strip():
        return "the id is empty"
    if len(item_id) > MAX_ID_LENGTH:
        return f"the id is longer than {MAX_ID_LENGTH} characters"
    if any(ch in item_id for ch in "/\\") or item_id in (".", ".."):
        return "an id may not contain '/' or '\\' (ids are catalog ids, not paths)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in item_id):
        return "the id contains control characters"
    return None


def _read_metadata(root: Path, problems: list[CatalogProblem]) -> list[tuple[str, dict[str, str]]]:
    """Rows of the metadata file as (where, fields) pairs; [] when there is no metadata file."""
    present = [root / name for name in METADATA_NAMES if (root / name).is_file()]
    if len(present) > 1:
        raise InputError(
            f"catalog {root} has both metadata.jsonl and metadata.csv: keep one (they would disagree sooner or later)"
        )
    if not present:
        return []
    path = present[0]
    rows: list[tuple[str, dict[str, str]]] = []
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(CatalogProblem("bad-metadata", where, f"not valid JSON ({error.msg})"))
                continue
            if not isinstance(row, dict):
                problems.append(CatalogProblem("bad-metadata", where, "each line must be a JSON object"))
                continue
            rows.append((where, {str(k): "" if v is None else str(v) for k, v in row.items()}))
    else:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or not {"id", "file"} & {name.strip() for name in reader.fieldnames}:
            raise InputError(f"{path}: the first line must name the columns, with at least 'id' or 'file'")
        for number, row in enumerate(reader, start=2):
            fields = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
            rows.append((f"{path.name}:{number}", fields))
    return rows


def _scan_images(root: Path, problems: list[CatalogProblem]) -> dict[str, tuple[Path, os.stat_result]]:
    """Image files under the category folders, keyed by their relative path ('dresses/x.png'), with their
    stat (os.scandir: one directory read per folder, the stat of each file without opening it)."""
    found: dict[str, tuple[Path, os.stat_result]] = {}
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir() or (child / "manifest.json").is_file():
            continue  # hidden folders and index folders (an index may live inside the catalog)
        with os.scandir(child) as entries:
            images = sorted(
                (e.name, e.stat())
                for e in entries
                if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
            )
        if child.name not in CATEGORIES:
            if images:
                problems.append(
                    CatalogProblem(
                        "unknown-category",
                        f"{child.name}/",
                        f"{len(images)} image(s) in a folder that is not a category: use {', '.join(CATEGORIES)}",
                    )
                )
            continue
        for name, stat in images:
            found[f"{child.name}/{name}"] = (child / name, stat)
    for stray in sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        problems.append(
            CatalogProblem("stray-file", stray.name, f"images must sit in a category folder ({', '.join(CATEGORIES)})")
        )
    return found


def catalog_state(root: Path | str) -> str:
    """A digest of the name, size and modification time of every file `load_catalog` would read (images
    in the folders, the metadata file, stray images): equal digests mean an unchanged catalog, found
    without reading a file (one directory read per folder; ~0.5 s for 100,000 images)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return ""  # load_catalog says what is wrong
    stats: list[tuple[str, os.stat_result]] = []  # (relative name, stat), in a fixed order
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if os.path.isfile(os.path.join(entry.path, "manifest.json")):
                continue  # an index folder, as _scan_images skips it
            with os.scandir(entry.path) as files:
                found = sorted((f.name, f.stat()) for f in files if f.name.lower().endswith(IMAGE_SUFFIXES))
            stats += [(f"{entry.name}/{name}", stat) for name, stat in found]
        elif entry.name in METADATA_NAMES or entry.name.lower().endswith(IMAGE_SUFFIXES):
            stats.append((entry.name, entry.stat()))
    digest = hashlib.sha256()
    for name, stat in stats:
        size, mtime_ns = fingerprint(stat)
        digest.update(f"{name}\t{size}\t{mtime_ns}\n".encode())
    return digest.hexdigest()


def _stem(file: str) -> str:
    """Path(file).stem of a relative file 'dresses/d001.png' ('d001'), without building a Path."""
    return os.path.splitext(file.rsplit("/", 1)[-1])[0]


def metadata_stat(root: Path | str) -> list | None:
    """[name, size, mtime_ns] of the catalog's metadata file, None when it has none."""
    for name in METADATA_NAMES:
        with contextlib.suppress(OSError):
            return [name, *fingerprint(os.path.join(root, name))]
    return None


def with_replaced_images(root: Path | str, rows: Sequence[dict]) -> Catalog | None:
    """The catalog of `root`, when the only change since it was loaded as `rows` (an index manifest's
    items: id, category, file, caption, sha256, size, mtime_ns; loaded with no problem and with the
    metadata file unchanged since: the caller checks both) is the content of some images: the same image
    files, none added or removed. Only images whose size or mtime changed are opened and hashed; the
    metadata file is not read, so 100k items cost a directory read, not a parse. None when anything else
    changed, or a replaced image is not readable: then load_catalog says what is wrong."""
    root = Path(root).expanduser()
    problems: list[CatalogProblem] = []
    images = _scan_images(root, problems)
    if problems or len(images) != len(rows) or any(row["file"] not in images for row in rows):
        return None
    items: list[CatalogItem] = []
    for row in rows:
        path, stat = images[row["file"]]
        sha256 = row["sha256"]
        if fingerprint(stat) != (row["size"], row["mtime_ns"]):
            if check_image(path) is not None:
                return None
            sha256 = sha256_file(path)
        items.append(CatalogItem(row["id"], row["category"], path, row["caption"], sha256, *fingerprint(stat)))
    return Catalog(root=root, items=tuple(items), problems=())


def load_catalog(root: Path | str, *, check_images: bool = True, known: KnownFiles | None = None) -> Catalog:
    """Load the catalog folder `root`. Every image file is hashed (sha256) and, with `check_images`,
    opened to check that it is an image, except files listed in `known` (an index's record of them) with
    the same size and modification time: those keep their recorded hash. Problems are collected in
    `Catalog.problems`; InputError only when `root` is not a folder or holds no usable image."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"catalog folder {str(root)!r} does not exist or is not a folder")
    problems: list[CatalogProblem] = []
    images = _scan_images(root, problems)
    entries = _entries(root, images, _read_metadata(root, problems), problems)
    items = _items(entries, images, known or {}, check_images, problems)
    if not items:
        lines = "".join(f"\n  {problem}" for problem in problems)
        raise InputError(
            f"catalog folder {str(root)!r} has no usable garment image: expected images "
            f"({', '.join(IMAGE_SUFFIXES)}) in sub-folders {', '.join(c + '/' for c in CATEGORIES)}{lines}"
        )
    for problem in problems:
        logger.warning("catalog %s: %s", root, problem)
    return Catalog(root=root, items=tuple(items), problems=tuple(problems))


_Entry = tuple[str, str, str, str, str]  # where, relative file, id, caption, category the metadata declares


def _entries(
    root: Path, images: dict[str, tuple[Path, os.stat_result]], rows: list, problems: list[CatalogProblem]
) -> list[_Entry]:
    """One entry per image: the metadata rows first (a row whose image is missing, or whose category is
    unknown, is a problem instead), then the images no row describes (id from the file name, no caption)."""
    entries: list[_Entry] = []
    described: set[str] = set()
    stems: dict[str, list[str]] = {}
    for file in images:
        stems.setdefault(_stem(file), []).append(file)
    for where, row in rows:
        file = row.get("file", "").replace("\\", "/").strip().removeprefix("./")
        item_id = row.get("id", "").strip()
        declared = row.get("category", "").strip()
        caption = " ".join((row.get("caption") or row.get("title") or "").split())
        if declared and declared not in CATEGORIES:
            problems.append(
                CatalogProblem("unknown-category", where, f"category {declared!r}: use one of {', '.join(CATEGORIES)}")
            )
            if file:
                described.add(file)
            continue
        if not file:
            # No file: find the image by id (its stem) in the declared category, or anywhere.
            candidates = [f for f in stems.get(item_id, []) if not declared or f.startswith(declared + "/")]
            if len(candidates) != 1:
                reason = "no image named after it" if not candidates else f"several images match ({candidates})"
                problems.append(
                    CatalogProblem("missing-file", where, f"row for id {item_id!r} has no 'file' and {reason}")
                )
                continue
            file = candidates[0]
        if file in described:
            problems.append(CatalogProblem("duplicate-id", where, f"{file} is described by an earlier row too"))
            continue
        described.add(file)
        if file not in images:
            folder = file.split("/", 1)[0] if "/" in file else ""
            if folder not in CATEGORIES:
                problems.append(
                    CatalogProblem(
                        "unknown-category", where, f"{file} is not in a category folder ({', '.join(CATEGORIES)})"
                    )
                )
            else:
                problems.append(CatalogProblem("missing-file", where, f"{file} does not exist in {root}"))
            continue
        entries.append((where, file, item_id or _stem(file), caption, declared))
    for file in images:
        if file not in described:
            entries.append((file, file, _stem(file), "", ""))
    return entries


def _items(
    entries: list[_Entry],
    images: dict[str, tuple[Path, os.stat_result]],
    known: KnownFiles,
    check_images: bool,
    problems: list[CatalogProblem],
) -> list[CatalogItem]:
    """The catalog items of `entries`, sorted by category and id: each image hashed (and, with
    `check_images`, opened) unless `known` records it with the same size and mtime. Entries with a wrong
    category, a bad or repeated id, or an unreadable image are problems instead."""
    items: list[CatalogItem] = []
    seen: dict[str, str] = {}
    for where, file, item_id, caption, declared in entries:
        category = file.split("/", 1)[0]
        if declared and declared != category:
            problems.append(
                CatalogProblem(
                    "category-mismatch", where, f"metadata says {declared!r} but the image is in {category}/"
                )
            )
            continue
        reason = id_problem(item_id)
        if reason:
            problems.append(CatalogProblem("bad-id", where, f"{item_id!r}: {reason}"))
            continue
        if item_id in seen:
            problems.append(CatalogProblem("duplicate-id", where, f"id {item_id!r} is already used by {seen[item_id]}"))
            continue
        path, stat = images[file]
        record = known.get(file)
        if record is not None and record[:2] == fingerprint(stat):
            sha256 = record[2]  # unchanged since it was hashed (and checked) for the index
        else:
            if check_images and (reason := check_image(path)) is not None:
                problems.append(CatalogProblem("corrupt-image", file, reason))
                continue
            sha256 = sha256_file(path)
        seen[item_id] = file
        items.append(CatalogItem(item_id, category, path, caption, sha256, *fingerprint(stat)))

    items.sort(key=lambda item: (CATEGORIES.index(item.category), item.id))
    return items
