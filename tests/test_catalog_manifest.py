"""The typed manifest: an index written by the previous release (format /1, tests/fixtures/index_v1) still
loads and is upgraded; this version writes /2 with no absolute path; malformed manifests are refused
naming what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.index import (
    FORMAT,
    MANIFEST_NAME,
    IndexRefused,
    Previous,
    load_index,
    read_manifest,
    update_index,
)
from fashion_rag.catalog.index.manifest import FORMAT_V1, manifest_text
from fashion_rag.catalog.search import CatalogSearch

from .conftest import small_catalog

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "index_v1"
BUILT_FROM = Path("/tmp/fashion-rag-v1-fixture/catalog")  # where the old release built it (fixtures README)
ITEMS = {
    "upper_body": ["top-002", "top-003"],
    "lower_body": ["bottom-002", "bottom-003"],
    "dresses": ["dress-001", "dress-002", "dress-003"],
}


class RecordedEncoder:
    """The fixture's encoder identity, without its weights: embedding any image fails the test, so an
    update that reuses every vector of the /1 index is all it can do."""

    def __init__(self, info: dict, dim: int) -> None:
        self.info, self.identity, self.dim, self.batch_size = info, info["identity"], dim, 8

    def encode_images(self, images, batch_size=None):
        pytest.fail("an image was embedded again: the /1 index's vectors were not reused")


@pytest.fixture
def v1_index(tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def v1_catalog(root: Path) -> Path:
    """The catalog the fixture was built from: 3 example images per category, top-001 and bottom-001 deleted."""
    small_catalog(root, 3)
    (root / "upper_body" / "top-001.png").unlink()
    (root / "lower_body" / "bottom-001.png").unlink()
    return root


def test_the_fixture_is_a_format_1_index():
    assert json.loads((FIXTURE / MANIFEST_NAME).read_text())["format"] == FORMAT_V1 != FORMAT


def test_a_format_1_index_loads_upgraded_and_searches(v1_index: Path):
    manifest = read_manifest(v1_index)
    assert manifest.format == FORMAT
    assert manifest.catalog_root(v1_index) == BUILT_FROM  # its absolute path is still read
    # The /1 `files` and `file_stats` are one record per file now.
    raw = json.loads((FIXTURE / MANIFEST_NAME).read_text())
    for name, sha in raw["files"].items():
        record = manifest.files[name]
        assert (record.sha256, [record.size, record.mtime_ns]) == (sha, raw["file_stats"][name])
    assert [p[0] for p in manifest.problems] == ["missing-file", "missing-file"]

    index = load_index(v1_index, encoder_identity=raw["encoder"]["identity"])  # copied: mtimes differ, hashed
    assert index.kinds == {"upper_body": "flat", "lower_body": "flat", "dresses": "hnsw"}
    assert {c: [i.id for i in index.items_in(c)] for c in ITEMS} == ITEMS
    for row, item in enumerate(index.items):  # each vector finds its own item first, through each tier
        _, hits = index.search(np.asarray(index.vectors[row]), item.category, 1)
        assert hits[0][0] == item


def test_updating_a_format_1_index_reuses_its_vectors_and_writes_format_2(v1_index: Path, tmp_path: Path):
    catalog = v1_catalog(tmp_path / "catalog")
    raw = json.loads((FIXTURE / MANIFEST_NAME).read_text())
    encoder = RecordedEncoder(raw["encoder"], raw["dim"])

    report = update_index(catalog, encoder, v1_index, hnsw_threshold=2)
    assert report.previous is Previous.UPDATED and report.embedded == () and report.reused == 7
    assert report.written == ()  # same vectors in the same order, same graph: every file linked
    text = (v1_index / MANIFEST_NAME).read_text()
    written = json.loads(text)
    assert written["format"] == FORMAT and written["catalog_dir"] == "../catalog"
    assert str(tmp_path) not in text and str(BUILT_FROM) not in text  # no absolute path is recorded
    assert "file_stats" not in written and set(written["files"]) == {"vectors.npy", "dresses.hnsw.faiss"}
    again = update_index(catalog, encoder, v1_index, hnsw_threshold=2)
    assert again.previous is Previous.UNCHANGED
    assert [str(p) for p in again.problems] == [str(p) for p in report.problems]  # the path is put back
    assert all(str(catalog.resolve()) in p.message for p in again.problems)


def test_an_index_moved_with_its_catalog_still_finds_the_catalog(tmp_path: Path, tiny_sources):
    encoder = RetrievalEncoder.from_sources(tiny_sources, device="cpu")
    catalog = small_catalog(tmp_path / "shop" / "catalog", 2)
    update_index(catalog, encoder, tmp_path / "shop" / "index")
    (tmp_path / "shop").rename(tmp_path / "moved")
    search = CatalogSearch.open(None, tmp_path / "moved" / "index", tiny_sources, encoder=encoder)
    assert search.catalog_root == (tmp_path / "moved" / "catalog").resolve()
    hit = search.search("dress", "dresses", 1)[0]
    assert search.image_path(hit.id).is_file()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="fashion-rag-catalog-index/9"), "has format 'fashion-rag-catalog-index/9'"),
        (lambda m: m["categories"]["dresses"].update(kind="annoy"), r"categories\.dresses\.kind"),
        (lambda m: m["categories"].update(hats={"kind": "flat", "count": 0}), "unknown categories"),
        (lambda m: m["items"][0].pop("sha256"), r"items\.0\.sha256"),
        (lambda m: m.update(dim=0), "dim"),
        (lambda m: m.pop("encoder"), "encoder"),
    ],
)
@pytest.mark.parametrize("written_as", [FORMAT_V1, FORMAT])
def test_a_malformed_manifest_is_refused_naming_the_field(v1_index: Path, edit, message: str, written_as: str):
    path = v1_index / MANIFEST_NAME
    if written_as == FORMAT:
        path.write_text(manifest_text(read_manifest(v1_index)))
    manifest = json.loads(path.read_text())
    assert manifest["format"] == written_as
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexRefused, match=message) as refused:
        read_manifest(v1_index)
    assert "rebuild it with `python -m fashion_rag index build" in str(refused.value)


def test_a_start_reads_the_manifest_once(tmp_path: Path, tiny_sources, monkeypatch):
    """update_index parses manifest.json once and passes the Manifest down (unchanged check, catalog
    record, previous index, load); the issue found up to six parses per start."""
    import fashion_rag.catalog.index.build as build_module
    import fashion_rag.catalog.index.loaded as loaded_module
    import fashion_rag.catalog.index.manifest as manifest_module
    import fashion_rag.catalog.index.update as update_module

    encoder = RetrievalEncoder.from_sources(tiny_sources, device="cpu")
    catalog = small_catalog(tmp_path / "catalog", 2)
    update_index(catalog, encoder, tmp_path / "index", hnsw_threshold=1)
    parses: list[Path] = []
    original = manifest_module.read_manifest

    def counted(directory):
        parses.append(Path(directory))
        return original(directory)

    for module in (build_module, loaded_module, manifest_module, update_module):
        monkeypatch.setattr(module, "read_manifest", counted)
    assert update_index(catalog, encoder, tmp_path / "index", hnsw_threshold=1).previous is Previous.UNCHANGED
    assert len(parses) == 1
    shutil.copyfile(catalog / "dresses" / "dress-001.png", catalog / "dresses" / "dress-002.png")  # one changed
    parses.clear()
    report = update_index(catalog, encoder, tmp_path / "index", hnsw_threshold=1)
    assert report.previous is Previous.UPDATED and report.changed == ("dress-002",) and len(parses) == 1
