"""Catalog folder loading: the example catalog, metadata formats, and every reported problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fashion_rag.catalog.catalog import load_catalog
from fashion_rag.config import CATEGORIES, REPO_ROOT
from fashion_rag.errors import InputError

EXAMPLE = REPO_ROOT / "examples" / "catalog"


def _image(path: Path, colour: tuple[int, int, int] = (200, 30, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 64), colour).save(path)
    return path


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_example_catalog_is_complete_and_clean():
    catalog = load_catalog(EXAMPLE)
    assert catalog.problems == ()
    assert len(catalog) >= 90
    assert catalog.counts() == {"upper_body": 33, "lower_body": 33, "dresses": 33}
    assert len({item.id for item in catalog}) == len(catalog)
    assert len({item.sha256 for item in catalog}) == len(catalog)  # every image differs
    kinds = {
        "upper_body": ("t-shirt", "shirt", "blazer", "hoodie", "sweater"),
        "lower_body": ("trousers", "jeans", "shorts", "skirt"),
        "dresses": ("slip dress", "A-line dress", "maxi dress", "sheath dress", "wrap dress"),
    }
    patterns = ("plain", "striped", "checked", "polka dots", "floral")
    for category in CATEGORIES:
        captions = [item.caption for item in catalog.in_category(category)]
        for kind in kinds[category]:
            assert any(kind in caption for caption in captions), (category, kind)
        for pattern in patterns:
            assert any(pattern in caption for caption in captions), (category, pattern)
        assert len(set(captions)) == len(captions)
    item = catalog.get("dress-001")
    assert item.category == "dresses" and item.path == EXAMPLE / "dresses" / "dress-001.png"
    assert item.file == "dresses/dress-001.png"
    with Image.open(item.path) as image:
        assert image.size == (384, 512)
    size = sum(p.stat().st_size for p in EXAMPLE.glob("*/*.png"))
    assert size < 3_000_000


def test_example_catalog_script_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The committed catalog is what the committed script writes."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_catalog", REPO_ROOT / "examples" / "make_catalog.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_catalog", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path / "catalog"), "--queries", str(tmp_path / "queries.jsonl")])
    assert (tmp_path / "catalog" / "metadata.jsonl").read_text() == (EXAMPLE / "metadata.jsonl").read_text()
    for name in ("dresses/dress-007.png", "upper_body/top-019.png", "lower_body/bottom-033.png"):
        assert (tmp_path / "catalog" / name).read_bytes() == (EXAMPLE / name).read_bytes(), name
    committed = (REPO_ROOT / "examples" / "queries.jsonl").read_text()
    assert (tmp_path / "queries.jsonl").read_text() == committed


def test_get_unknown_id_and_unknown_category():
    catalog = load_catalog(EXAMPLE)
    with pytest.raises(InputError, match="unknown catalog id 'nope'"):
        catalog.get("nope")
    with pytest.raises(InputError, match="unknown category 'shoes'"):
        catalog.in_category("shoes")


def test_images_without_metadata_get_their_stem_as_id(tmp_path: Path):
    _image(tmp_path / "dresses" / "red-dress.png")
    _image(tmp_path / "upper_body" / "tee.jpg")
    (tmp_path / "dresses" / "notes.txt").write_text("not an image")
    catalog = load_catalog(tmp_path)
    assert [(i.id, i.category, i.caption) for i in catalog] == [("tee", "upper_body", ""), ("red-dress", "dresses", "")]
    assert catalog.problems == ()


def test_csv_metadata_with_titles(tmp_path: Path):
    _image(tmp_path / "lower_body" / "a.png")
    _image(tmp_path / "lower_body" / "b.png", (0, 0, 200))
    (tmp_path / "metadata.csv").write_text(
        "id,file,title,category\nsku-1,lower_body/a.png,Red  jeans,lower_body\nsku-2,lower_body/b.png,Blue skirt,\n"
    )
    catalog = load_catalog(tmp_path)
    assert [(i.id, i.caption) for i in catalog] == [("sku-1", "Red jeans"), ("sku-2", "Blue skirt")]


def test_problems_are_reported_and_the_rest_loads(tmp_path: Path):
    _image(tmp_path / "dresses" / "good.png")
    _image(tmp_path / "dresses" / "twin.png", (1, 2, 3))
    _image(tmp_path / "upper_body" / "shirt.png", (9, 9, 9))
    _image(tmp_path / "shoes" / "boot.png")  # not a category folder
    _image(tmp_path / "stray.png")  # not in any folder
    (tmp_path / "dresses" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    _jsonl(
        tmp_path / "metadata.jsonl",
        [
            {"id": "d1", "file": "dresses/good.png", "caption": "red dress", "category": "dresses"},
            {"id": "d1", "file": "dresses/twin.png", "caption": "same id again"},
            {"id": "s1", "file": "upper_body/shirt.png", "category": "dresses"},  # folder says upper_body
            {"id": "x1", "file": "dresses/gone.png"},
            {"id": "x2", "file": "dresses/good.png", "category": "hats"},
            {"id": "a/b", "file": "dresses/broken.png"},
        ],
    )
    with open(tmp_path / "metadata.jsonl", "a") as handle:
        handle.write("{not json\n")
    catalog = load_catalog(tmp_path)
    assert [item.id for item in catalog] == ["d1"]
    kinds = sorted(problem.kind for problem in catalog.problems)
    assert kinds == [
        "bad-id",
        "bad-metadata",
        "category-mismatch",
        "duplicate-id",
        "missing-file",
        "stray-file",
        "unknown-category",
        "unknown-category",
    ]
    report = catalog.report()
    assert "metadata.jsonl:7: not valid JSON" in report
    assert "shoes/: 1 image(s) in a folder that is not a category" in report
    assert "category 'hats'" in report
    assert "dresses/gone.png does not exist" in report
    assert "id 'd1' is already used by dresses/good.png" in report
    assert "metadata says 'dresses' but the image is in upper_body/" in report


def test_corrupt_image_is_skipped_and_reported(tmp_path: Path):
    _image(tmp_path / "dresses" / "ok.png")
    good = (tmp_path / "dresses" / "ok.png").read_bytes()
    (tmp_path / "dresses" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "dresses" / "garbage.jpg").write_bytes(b"GIF89a nonsense" * 10)
    catalog = load_catalog(tmp_path)
    assert [item.id for item in catalog] == ["ok"]
    assert sorted((p.kind, p.where) for p in catalog.problems) == [
        ("corrupt-image", "dresses/garbage.jpg"),
        ("corrupt-image", "dresses/truncated.png"),
    ]


def test_empty_or_missing_catalog_is_refused(tmp_path: Path):
    with pytest.raises(InputError, match="has no usable garment image"):
        load_catalog(tmp_path)
    (tmp_path / "dresses").mkdir()
    with pytest.raises(InputError, match="expected images .* in sub-folders upper_body/, lower_body/, dresses/"):
        load_catalog(tmp_path)
    (tmp_path / "dresses" / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="corrupt-image: dresses/bad.png"):
        load_catalog(tmp_path)
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        load_catalog(tmp_path / "nowhere")


def test_both_metadata_files_is_an_error(tmp_path: Path):
    _image(tmp_path / "dresses" / "a.png")
    (tmp_path / "metadata.csv").write_text("id,file\n")
    (tmp_path / "metadata.jsonl").write_text("")
    with pytest.raises(InputError, match="both metadata.jsonl and metadata.csv"):
        load_catalog(tmp_path)


def test_index_folder_inside_the_catalog_is_ignored(tmp_path: Path):
    shutil.copytree(EXAMPLE / "dresses", tmp_path / "dresses")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "manifest.json").write_text("{}")
    _image(tmp_path / "index" / "preview.png")
    catalog = load_catalog(tmp_path)
    assert len(catalog) == 33 and catalog.problems == ()
