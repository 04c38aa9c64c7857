"""A catalog from a Hugging Face dataset (image, caption and category columns), read with `datasets`.

    python -m fashion_rag index build CATALOG_DIR --dataset shop.parquet

`--dataset` names a local parquet file, a folder of parquet files, or a folder written by
`Dataset.save_to_disk`. Its rows are written into CATALOG_DIR as an ordinary catalog folder
(`<category>/<id>.png` and `metadata.jsonl`, docs/catalog.md), which is then indexed as usual: the search
and the editor need image files to show and to encode. A rerun rewrites only images whose bytes changed,
so an unchanged dataset keeps its files' mtimes and the index update stays a no-op.

Nothing here touches the network: a dataset on the Hub is fetched first (`huggingface-cli download
--repo-type dataset NAME --local-dir DIR`) and given as DIR, so that network access stays where it is
(fashion_rag/weights.py for the model weights).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

from PIL import Image

from fashion_rag.catalog.catalog import _id_problem
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import InputError

logger = logging.getLogger(__name__)

MARKER = ".from-dataset.json"  # written into a catalog folder made from a dataset: it may be rewritten


def load_rows(source: Path | str, split: str = "train"):
    """The `datasets.Dataset` at `source` (parquet file or folder, or a save_to_disk folder); InputError
    when it is none of these."""
    import datasets

    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(
            f"dataset {str(source)!r} does not exist: give a local parquet file, a folder of parquet files or a "
            f"folder written by Dataset.save_to_disk (fetch a Hub dataset first with `huggingface-cli download "
            f"--repo-type dataset NAME --local-dir DIR`)"
        )
    if path.is_dir() and (path / "dataset_info.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files or any(f.suffix != ".parquet" for f in files):
        raise InputError(f"dataset {str(source)!r} holds no parquet file: give a .parquet file or a folder of them")
    return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")


def _image_of(value) -> Image.Image:
    """A PIL image from a dataset cell: a decoded Image feature, {"bytes": ..., "path": ...}, or raw bytes."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        value = value["bytes"]
    if isinstance(value, bytes | bytearray):
        return Image.open(io.BytesIO(value))
    raise ValueError(f"not an image ({type(value).__name__})")


def write_catalog(
    source: Path | str,
    catalog_dir: Path | str,
    *,
    split: str = "train",
    image_column: str = "image",
    caption_column: str = "caption",
    category_column: str = "category",
    id_column: str = "id",
) -> tuple[Path, list[str]]:
    """Write the rows of the dataset at `source` into the catalog folder `catalog_dir`; returns the folder
    and one line per row that was skipped (unknown category, unreadable image, bad id)."""
    rows = load_rows(source, split)
    missing = [c for c in (image_column, caption_column, category_column) if c not in rows.column_names]
    if missing:
        raise InputError(
            f"dataset {str(source)!r} has no column {', '.join(map(repr, missing))}: it has "
            f"{', '.join(rows.column_names)}; name them with --image-column, --caption-column, --category-column"
        )
    root = Path(catalog_dir).expanduser()
    if root.exists() and any(root.iterdir()) and not (root / MARKER).is_file():
        raise InputError(
            f"{str(root)!r} is not empty and was not made from a dataset: refusing to write into it; choose an "
            f"empty or new folder for the catalog"
        )
    root.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    metadata: list[dict] = []
    seen: set[str] = set()
    for number, row in enumerate(rows):
        item_id = (
            str(row.get(id_column) or f"item-{number:06d}") if id_column in rows.column_names else f"item-{number:06d}"
        )
        category = str(row[category_column] or "").strip()
        where = f"row {number} (id {item_id!r})"
        if category not in CATEGORIES:
            skipped.append(f"{where}: category {category!r} is not one of {', '.join(CATEGORIES)}")
            continue
        if (reason := _id_problem(item_id)) is not None or item_id in seen:
            skipped.append(f"{where}: {reason or 'the id is used by an earlier row'}")
            continue
        try:
            image = _image_of(row[image_column])
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, format="PNG")
        except (OSError, ValueError, SyntaxError) as error:
            skipped.append(f"{where}: unreadable image ({error})")
            continue
        seen.add(item_id)
        file = f"{category}/{item_id}.png"
        target = root / file
        target.parent.mkdir(exist_ok=True)
        data = buffer.getvalue()
        if not target.is_file() or target.read_bytes() != data:  # unchanged bytes keep their mtime
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            os.replace(partial, target)
        metadata.append({"id": item_id, "file": file, "category": category, "caption": str(row[caption_column] or "")})
    if not metadata:
        raise InputError(
            f"no row of the dataset {str(source)!r} could be used:" + "".join(f"\n  {s}" for s in skipped[:5])
        )
    # Images of rows that are gone from the dataset leave the catalog too.
    wanted = {m["file"] for m in metadata}
    for category in CATEGORIES:
        for old in sorted((root / category).glob("*.png")) if (root / category).is_dir() else []:
            if f"{category}/{old.name}" not in wanted:
                old.unlink()
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in metadata)
    if not (root / "metadata.jsonl").is_file() or (root / "metadata.jsonl").read_text(encoding="utf-8") != text:
        (root / "metadata.jsonl").write_text(text, encoding="utf-8")
    (root / MARKER).write_text(json.dumps({"source": str(Path(source).resolve()), "split": split}) + "\n")
    for line in skipped:
        logger.warning("dataset %s: skipped %s", source, line)
    return root, skipped
