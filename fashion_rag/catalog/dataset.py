"""A garment catalog kept as a Hugging Face dataset (on the Hub, or parquet files on disk), written out as a
catalog folder so that the index, the search and the app read one format (docs/catalog.md).

    dataset = open_dataset("owner/name")            # or a .parquet file, or a folder of them
    report = import_dataset(dataset, Path("catalogs/shop"))

Columns (names configurable): `image` (a datasets Image, or {bytes, path}), `caption` (or `title`),
`category` (upper_body / lower_body / dresses, as text or as a ClassLabel), and optionally `id`. An image is
written with its own bytes (PNG, JPEG and WebP as they are; other formats become lossless PNG), to
`<category>/<id>.<ext>`, and only when its bytes differ from the file there: an unchanged dataset rewrites
no file, so the index's size-and-mtime check sees an unchanged catalog. Images of rows that left the
dataset are removed. The folder remembers the import in `.dataset.json`; a folder that holds images but
no such record is a hand-made catalog and is refused rather than overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fashion_rag.catalog.catalog import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, CatalogProblem, id_problem
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import InputError
from fashion_rag.files import atomic_write

RECORD_NAME = ".dataset.json"
KEPT_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}  # written byte for byte


@dataclass(frozen=True)
class Columns:
    image: str = "image"
    caption: str = "caption"
    category: str = "category"
    id: str = "id"


@dataclass
class ImportReport:
    catalog_dir: Path
    source: str
    rows: int = 0
    written: list[str] = field(default_factory=list)  # files (re)written: new or changed images
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    problems: list[CatalogProblem] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"imported {self.rows - len(self.problems)} of {self.rows} rows of {self.source} into {self.catalog_dir}: "
            f"{len(self.written)} image(s) written, {self.unchanged} unchanged, {len(self.removed)} removed"
        ]
        lines += [f"  skipped {problem}" for problem in self.problems]
        return "\n".join(lines)


def open_dataset(source: str, *, split: str = "train", revision: str = "main"):
    """The `split` of a dataset: a local .parquet file, a local folder of parquet files (splits found from
    the file names, as `datasets` does), or a Hub dataset id `owner/name` (its parquet files fetched at
    `revision` by fashion_rag.weights, the project's one place for network access)."""
    import datasets

    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix != ".parquet":
            raise InputError(f"--dataset {source}: a dataset file must be .parquet (or give a folder or owner/name)")
        return datasets.load_dataset("parquet", data_files=str(path), split="train")
    if not path.is_dir():
        if source.count("/") != 1 or source.startswith((".", "/", "~")):
            raise InputError(
                f"--dataset {source!r} is neither a .parquet file, a folder, nor a Hub dataset id like owner/name"
            )
        from fashion_rag.weights import download_dataset

        path, _ = download_dataset(source, revision)  # into the Hugging Face cache
    try:
        return datasets.load_dataset(str(path), split=split)
    except ValueError as error:  # an unknown split; datasets names the ones there are
        raise InputError(f"--dataset {source}: {error}") from None
    except FileNotFoundError as error:
        raise InputError(f"--dataset {source}: no data file found ({error})") from None


def _category_names(dataset, column: str) -> list[str] | None:
    """The names of a ClassLabel category column (its values are ints), else None."""
    feature = dataset.features[column]
    return list(feature.names) if hasattr(feature, "names") else None


def _check_columns(dataset, columns: Columns) -> None:
    names = set(dataset.column_names)
    missing = [c for c in (columns.image, columns.category) if c not in names]
    if missing:
        raise InputError(
            f"the dataset has no column {' nor '.join(map(repr, missing))}: it has {', '.join(sorted(names))}; "
            f"name the columns with --image-column / --category-column"
        )


def _image_file(data: bytes, item_id: str, category: str) -> tuple[str, bytes] | str:
    """(relative file name, bytes to write) for an image's bytes, or why the image is refused."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                return f"{image.width}x{image.height} pixels is above the limit of {MAX_IMAGE_PIXELS:,}"
            kind = image.format
            if kind not in KEPT_FORMATS:  # GIF, BMP, TIFF...: lossless PNG of the first frame
                image.load()
                out = io.BytesIO()
                image.save(out, "PNG")
                return f"{category}/{item_id}.png", out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"not a readable image ({type(error).__name__}: {error})"
    return f"{category}/{item_id}{KEPT_FORMATS[kind]}", data


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless the file already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return True


def _previous_files(catalog_dir: Path) -> set[str]:
    """Files an earlier import wrote; InputError for a hand-made catalog (images but no import record)."""
    record = catalog_dir / RECORD_NAME
    if record.is_file():
        return set(json.loads(record.read_text()).get("files", []))
    hand_made = [
        p
        for c in CATEGORIES
        if (catalog_dir / c).is_dir()
        for p in (catalog_dir / c).iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if hand_made:
        raise InputError(
            f"{catalog_dir} already holds a catalog that was not imported from a dataset ({len(hand_made)} images): "
            f"import into a new or empty folder"
        )
    return set()


def _rows(dataset, columns: Columns, batch_size: int = 256):
    """(number, image bytes, caption, category, id or '') per row, images not decoded."""
    import datasets

    labels = _category_names(dataset, columns.category)
    caption_column = next((c for c in (columns.caption, "title") if c in dataset.column_names), None)
    has_id = columns.id in dataset.column_names
    if isinstance(dataset.features[columns.image], datasets.Image):
        dataset = dataset.cast_column(columns.image, datasets.Image(decode=False))
    number = 0
    for batch in dataset.iter(batch_size=batch_size):
        for i, image in enumerate(batch[columns.image]):
            data = image.get("bytes") if isinstance(image, dict) else image
            category = batch[columns.category][i]
            if labels is not None and isinstance(category, int):
                category = labels[category]
            caption = batch[caption_column][i] if caption_column else ""
            item_id = batch[columns.id][i] if has_id else ""
            yield number, data, " ".join(str(caption or "").split()), str(category or "").strip(), str(item_id or "")
            number += 1


def _row_problem(data: object, category: str) -> CatalogProblem | None:
    if category not in CATEGORIES:
        return CatalogProblem("unknown-category", "", f"category {category!r}: use one of {', '.join(CATEGORIES)}")
    if not isinstance(data, bytes | bytearray) or not data:
        return CatalogProblem("missing-file", "", "the row has no image bytes")
    return None


def import_dataset(dataset, catalog_dir: Path, *, source: str = "", columns: Columns = Columns()) -> ImportReport:
    """Write `dataset` as the catalog folder `catalog_dir` (see the module docstring). Rows with a bad image,
    an unknown category or a bad or repeated id are skipped and listed in the report's problems."""
    _check_columns(dataset, columns)
    catalog_dir = Path(catalog_dir)
    previous = _previous_files(catalog_dir)
    report = ImportReport(catalog_dir, source or "the dataset")
    metadata: list[str] = []
    kept: set[str] = set()  # files of this import
    ids: set[str] = set()  # ids are unique across categories, as in a catalog folder
    for number, data, caption, category, item_id in _rows(dataset, columns):
        report.rows += 1
        problem = _row_problem(data, category)
        item_id = item_id or (hashlib.sha256(data).hexdigest()[:16] if not problem else "")  # stable across edits
        if not problem and (reason := id_problem(item_id)) is not None:
            problem = CatalogProblem("bad-id", "", f"{item_id!r}: {reason}")
        if not problem and item_id in ids:
            problem = CatalogProblem("duplicate-id", "", f"id {item_id!r} is used by an earlier row")
        made = _image_file(bytes(data), item_id, category) if not problem else None
        if isinstance(made, str):
            problem = CatalogProblem("corrupt-image", "", made)
        if problem:
            report.problems.append(CatalogProblem(problem.kind, f"row {number}", problem.message))
            continue
        file, payload = made
        ids.add(item_id)
        kept.add(file)
        if _write_if_changed(catalog_dir / file, payload):
            report.written.append(file)
        else:
            report.unchanged += 1
        metadata.append(json.dumps({"id": item_id, "file": file, "caption": caption, "category": category}))
    if not kept:
        raise InputError(f"{report.source} has no usable row:" + "".join(f"\n  {p}" for p in report.problems[:20]))
    for file in sorted(previous - kept):
        (catalog_dir / file).unlink(missing_ok=True)
        report.removed.append(file)
    _write_if_changed(catalog_dir / "metadata.jsonl", ("\n".join(metadata) + "\n").encode())
    _write_if_changed(catalog_dir / RECORD_NAME, json.dumps({"source": report.source, "files": sorted(kept)}).encode())
    return report
