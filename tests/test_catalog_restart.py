"""Restart cost follows change (issue 13): no-op rebuilds write and hash nothing, one changed image costs one
image, a killed build resumes, and the start-up check and the search share one loaded index."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

import fashion_rag.catalog.catalog as catalog_module
import fashion_rag.catalog.index.build as build_module
import fashion_rag.catalog.index.graphs as graphs_module
import fashion_rag.catalog.index.loaded as loaded_module
import fashion_rag.catalog.index.update as update_module
from fashion_rag.catalog.catalog import load_catalog
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.index import build_index, load_index, read_manifest, update_index
from fashion_rag.catalog.index.loaded import known_files
from fashion_rag.config import REPO_ROOT
from fashion_rag.errors import CatalogIndexError
from fashion_rag.files import fingerprint, sha256_file

from .brute_force import brute_force_search
from .conftest import small_catalog as copy_of_examples

EXAMPLE = REPO_ROOT / "examples" / "catalog"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder(tiny_sources) -> RetrievalEncoder:
    return RetrievalEncoder.from_sources(tiny_sources, device="cpu")


def small_catalog(root: Path, per_category: int = 5) -> Path:
    return copy_of_examples(root, per_category)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (inode, size, mtime_ns) of every file in `directory`."""
    return {p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


class Counter:
    """Wraps a function and counts its calls."""

    def __init__(self, function) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def test_unchanged_catalog_hashes_writes_and_embeds_nothing(tmp_path: Path, encoder, monkeypatch):
    root = small_catalog(tmp_path / "catalog")
    index_dir = tmp_path / "index"
    build_index(load_catalog(root), encoder, index_dir, hnsw_threshold=3)  # every category an HNSW graph
    before, embedded = snapshot(index_dir), encoder.images_encoded
    parent_before = sorted(p.name for p in tmp_path.iterdir())

    hashes, opened = Counter(catalog_module.sha256_file), Counter(catalog_module.check_image)
    monkeypatch.setattr(catalog_module, "sha256_file", hashes)
    monkeypatch.setattr(catalog_module, "check_image", opened)
    monkeypatch.setattr(build_module, "sha256_file", hashes)
    monkeypatch.setattr(loaded_module, "sha256_file", hashes)
    monkeypatch.setattr(faiss, "write_index", lambda *a: pytest.fail("a graph was written"))
    monkeypatch.setattr(graphs_module, "build_faiss_index", lambda v, kind="flat", **kw: pytest.fail(f"{kind} built"))
    monkeypatch.setattr(np, "save", lambda *a, **kw: pytest.fail("vectors written"))

    catalog = load_catalog(root, known=known_files(read_manifest(index_dir)))
    assert hashes.calls == 0 and opened.calls == 0  # size and mtime recognised every image
    report = build_index(catalog, encoder, index_dir, hnsw_threshold=3)
    assert report.previous == "unchanged" and report.embedded == () and report.reused == 15
    assert encoder.images_encoded == embedded and report.written == ()
    assert hashes.calls == 0  # the index files were recognised by size and mtime too
    assert snapshot(index_dir) == before  # same inodes, sizes and mtimes: no file rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == parent_before  # no temporary folder
    assert "up to date" in report.summary() and "no file written" in report.summary()
    assert report.index is not None and len(report.index) == 15


def test_one_changed_image_costs_one_image(tmp_path: Path, encoder, monkeypatch):
    root = small_catalog(tmp_path / "catalog")
    index_dir = tmp_path / "index"
    build_index(load_catalog(root), encoder, index_dir, hnsw_threshold=3)
    before, embedded = snapshot(index_dir), encoder.images_encoded
    shutil.copyfile(EXAMPLE / "dresses" / "dress-020.png", root / "dresses" / "dress-002.png")  # new content

    hashes = Counter(catalog_module.sha256_file)
    monkeypatch.setattr(catalog_module, "sha256_file", hashes)
    catalog = load_catalog(root, known=known_files(read_manifest(index_dir)))
    assert hashes.calls == 1  # only the changed file was hashed
    report = build_index(catalog, encoder, index_dir, hnsw_threshold=3)
    assert encoder.images_encoded - embedded == 1 and report.embedded == ("dress-002",)
    assert report.changed == ("dress-002",) and report.previous == "updated"
    # Only the vectors and the changed category's graph were written; the other graphs are the same files.
    assert sorted(report.written) == ["dresses.hnsw.faiss", "vectors.npy"]
    after = snapshot(index_dir)
    for name in ("upper_body.hnsw.faiss", "lower_body.hnsw.faiss"):
        assert after[name] == before[name]
    assert after["dresses.hnsw.faiss"][0] != before["dresses.hnsw.faiss"][0]
    # And the result is what a full build gives.
    full = build_index(load_catalog(root), encoder, tmp_path / "full", hnsw_threshold=3)
    np.testing.assert_allclose(load_index(index_dir).vectors, full.index.vectors, atol=1e-6)


def graph_nodes(index_dir: Path, category: str) -> int:
    return faiss.read_index(str(index_dir / f"{category}.hnsw.faiss")).ntotal


def searches_like_brute_force(index_dir: Path, category: str, queries: np.ndarray) -> None:
    """Every live item of `category`, in the order and with the scores of numpy brute force."""
    index = load_index(index_dir)
    members = index.items_in(category)
    rows = [row for row, item in enumerate(index.items) if item.category == category]
    scores, hits = index.search(queries, category, len(members))
    exact_scores, exact_rows = brute_force_search(np.asarray(index.vectors[rows]), queries, len(members))
    assert [[h.id for h in row] for row in hits] == [[members[r].id for r in row] for row in exact_rows]
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)


def test_a_graph_with_few_changes_is_updated_in_place_and_never_returns_a_dead_node(
    tmp_path: Path, encoder, monkeypatch
):
    root = small_catalog(tmp_path / "catalog", per_category=20)
    index_dir = tmp_path / "index"
    first = build_index(load_catalog(root), encoder, index_dir, hnsw_threshold=3)  # all HNSW, 20 nodes each
    row = next(r for r, item in enumerate(first.index.items) if item.id == "dress-002")
    old_vector = np.array(first.index.vectors[row])
    graphs_built = Counter(graphs_module.build_faiss_index)
    monkeypatch.setattr(graphs_module, "build_faiss_index", graphs_built)

    # One image replaced: its vector is added as a new node and its old node is dead (1 of 21).
    shutil.copyfile(EXAMPLE / "dresses" / "dress-030.png", root / "dresses" / "dress-002.png")
    report = build_index(
        load_catalog(root, known=known_files(read_manifest(index_dir))), encoder, index_dir, hnsw_threshold=3
    )
    assert report.embedded == ("dress-002",) and graphs_built.calls == 0  # no graph built
    assert sorted(report.written) == ["dresses.hnsw.faiss", "dresses.hnsw.nodes.npy", "vectors.npy"]
    assert graph_nodes(index_dir, "dresses") == 21
    assert json.loads((index_dir / "manifest.json").read_text())["categories"]["dresses"]["dead"] == 1
    # The old vector is still in the graph and scores 1.0 against itself: it must never be returned.
    queries = np.concatenate([old_vector[None], encoder.encode_texts(["red dress", "floral summer dress"])])
    searches_like_brute_force(index_dir, "dresses", queries)

    # An item removed: its node is dead too (2 of 21); the updated graph is updated again, not rebuilt.
    (root / "dresses" / "dress-005.png").unlink()
    report = build_index(
        load_catalog(root, known=known_files(read_manifest(index_dir))), encoder, index_dir, hnsw_threshold=3
    )
    assert report.removed == ("dress-005",) and graphs_built.calls == 0 and graph_nodes(index_dir, "dresses") == 21
    searches_like_brute_force(index_dir, "dresses", queries)

    # A third dead node would pass DEAD_NODE_LIMIT (3 of 22): the graph is rebuilt from the live vectors.
    shutil.copyfile(EXAMPLE / "dresses" / "dress-031.png", root / "dresses" / "dress-003.png")
    report = build_index(
        load_catalog(root, known=known_files(read_manifest(index_dir))), encoder, index_dir, hnsw_threshold=3
    )
    assert graphs_built.calls == 1 and graph_nodes(index_dir, "dresses") == 19
    assert "nodes" not in json.loads((index_dir / "manifest.json").read_text())["categories"]["dresses"]
    assert not (index_dir / "dresses.hnsw.nodes.npy").exists()
    searches_like_brute_force(index_dir, "dresses", queries)


def test_an_updated_graph_whose_node_map_is_damaged_is_refused(tmp_path: Path, encoder):
    root = small_catalog(tmp_path / "catalog", per_category=20)
    index_dir = tmp_path / "index"
    build_index(load_catalog(root), encoder, index_dir, hnsw_threshold=3)
    shutil.copyfile(EXAMPLE / "dresses" / "dress-030.png", root / "dresses" / "dress-002.png")
    build_index(load_catalog(root), encoder, index_dir, hnsw_threshold=3)
    nodes = np.load(index_dir / "dresses.hnsw.nodes.npy")
    nodes[nodes == -1] = 0  # row 0 named twice: the size and mtime change, and so does the hash
    np.save(index_dir / "dresses.hnsw.nodes.npy", nodes)
    with pytest.raises(CatalogIndexError, match="dresses.hnsw.nodes.npy was modified"):
        load_index(index_dir)
    # The same map with a manifest that vouches for it (as a faulty writer would leave it): still refused,
    # since its live nodes no longer name each item once.
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    nodes_file = index_dir / "dresses.hnsw.nodes.npy"
    size, mtime_ns = fingerprint(nodes_file)
    manifest["files"]["dresses.hnsw.nodes.npy"] = {
        "sha256": sha256_file(nodes_file),
        "size": size,
        "mtime_ns": mtime_ns,
    }
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CatalogIndexError, match="does not map dresses.hnsw.faiss onto its 20 items"):
        load_index(index_dir)


def test_a_changed_image_keeps_the_cached_bm25_of_unchanged_captions(tmp_path: Path, encoder, monkeypatch):
    import fashion_rag.catalog.lexical as lexical_module
    from fashion_rag.catalog.search import CatalogSearch

    root = small_catalog(tmp_path / "catalog")
    index_dir = tmp_path / "index"
    first = update_index(root, encoder, index_dir)
    CatalogSearch.from_index(first.index, encoder, catalog_root=root)  # writes INDEX/lexical/
    assert (index_dir / "lexical" / "ids.json").is_file()
    shutil.copyfile(EXAMPLE / "dresses" / "dress-020.png", root / "dresses" / "dress-002.png")
    report = update_index(root, encoder, index_dir)
    assert report.embedded == ("dress-002",)
    tokenised = Counter(lexical_module.tokenize_many)
    monkeypatch.setattr(lexical_module, "tokenize_many", tokenised)
    search = CatalogSearch.from_index(report.index, encoder, catalog_root=root)
    assert tokenised.calls == 0  # the captions' BM25 came with the new index folder, read back, not rebuilt
    assert search.lexical.rank("dress", "dresses") == lexical_module.LexicalIndex(
        [lexical_module.LexicalDocument(i.id, i.category, i.caption) for i in report.index.items]
    ).rank("dress", "dresses")


def test_replaced_images_are_taken_from_the_index_record_without_parsing_the_metadata(
    tmp_path: Path, encoder, monkeypatch
):
    root = small_catalog(tmp_path / "catalog")
    index_dir = tmp_path / "index"
    update_index(root, encoder, index_dir, hnsw_threshold=3)
    parsed = Counter(catalog_module._read_metadata)
    monkeypatch.setattr(catalog_module, "_read_metadata", parsed)

    def recorded_items() -> list[dict]:
        return json.loads((index_dir / "manifest.json").read_text())["items"]

    # Two images replaced: the metadata is not parsed, and the index records what a full load finds.
    shutil.copyfile(EXAMPLE / "dresses" / "dress-020.png", root / "dresses" / "dress-002.png")
    shutil.copyfile(EXAMPLE / "upper_body" / "top-020.png", root / "upper_body" / "top-001.png")
    report = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert parsed.calls == 0 and sorted(report.embedded) == ["dress-002", "top-001"]
    assert recorded_items() == build_module.item_rows(load_catalog(root))
    assert parsed.calls == 1  # (that was the full load of the comparison)

    # A caption edited: the metadata file changed, so it is parsed and the new caption indexed.
    metadata = root / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    rows = [{**row, "caption": "jade qipao"} if row["id"] == "dress-003" else row for row in rows]
    metadata.write_text("".join(json.dumps(row) + "\n" for row in rows))
    update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert parsed.calls == 2
    assert {row["id"]: row["caption"] for row in recorded_items()}["dress-003"] == "jade qipao"

    # An image added, and a replaced image that is not readable: the full load, which finds and reports them.
    shutil.copyfile(EXAMPLE / "dresses" / "dress-030.png", root / "dresses" / "dress-030.png")
    report = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert parsed.calls == 3 and report.added == ("dress-030",)
    (root / "dresses" / "dress-004.png").write_bytes(b"not a png")
    report = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert parsed.calls == 4 and report.removed == ("dress-004",)
    assert [p.kind for p in report.problems] == ["corrupt-image"]

    # While the index records a problem (here a row naming no image), every update says it again.
    shutil.copyfile(EXAMPLE / "dresses" / "dress-004.png", root / "dresses" / "dress-004.png")  # readable again
    metadata.write_text(metadata.read_text() + json.dumps({"id": "ghost", "file": "dresses/ghost.png"}) + "\n")
    assert [p.kind for p in update_index(root, encoder, index_dir, hnsw_threshold=3).problems] == ["missing-file"]
    shutil.copyfile(EXAMPLE / "dresses" / "dress-031.png", root / "dresses" / "dress-005.png")
    report = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert report.embedded == ("dress-005",) and [p.kind for p in report.problems] == ["missing-file"]


def test_killed_build_resumes_from_its_checkpoint(tmp_path: Path, encoder):
    root = small_catalog(tmp_path / "catalog")
    catalog = load_catalog(root)

    def killed_after_eight(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a build

    with pytest.raises(KeyboardInterrupt):
        build_index(catalog, encoder, tmp_path / "index", batch_size=4, checkpoint_every=4, progress=killed_after_eight)
    assert not (tmp_path / "index").exists()  # no index yet, but its checkpoint
    assert len(list((tmp_path / ".index.partial").glob("part-*.npz"))) == 2
    embedded = encoder.images_encoded
    report = build_index(catalog, encoder, tmp_path / "index", batch_size=4, checkpoint_every=4)
    assert report.resumed == 8 and encoder.images_encoded - embedded == 7 and len(report.embedded) == 7
    assert "resumed an interrupted build: 8 vectors" in report.summary()
    assert not (tmp_path / ".index.partial").exists()  # a finished build removes its checkpoint
    full = build_index(catalog, encoder, tmp_path / "full", workers=0)
    np.testing.assert_allclose(report.index.vectors, full.index.vectors, atol=1e-6)


def test_parallel_decoding_gives_the_same_vectors(tmp_path: Path, encoder):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    serial = build_index(catalog, encoder, tmp_path / "serial", workers=0, batch_size=4)
    threaded = build_index(catalog, encoder, tmp_path / "threaded", workers=3, batch_size=4)
    np.testing.assert_array_equal(serial.index.vectors, threaded.index.vectors)
    assert serial.index.items == threaded.index.items


def test_startup_check_and_search_share_one_loaded_index(tiny_settings, tmp_path: Path, monkeypatch):
    from fashion_rag.editor import Editor

    settings = replace(tiny_settings, index_dir=tmp_path / "index")
    Editor.from_settings(settings).ensure_index()  # the first start builds the index
    loads = Counter(build_module.load_index)
    monkeypatch.setattr(build_module, "load_index", loads)
    monkeypatch.setattr(update_module, "load_index", loads)
    import fashion_rag.catalog.search as search_module

    monkeypatch.setattr(search_module, "load_index", loads)
    editor = Editor.from_settings(settings)  # a restart with nothing changed
    report = editor.ensure_index()
    assert report.previous == "unchanged" and report.embedded == ()
    assert editor.searcher.index is report.index and editor.searcher.mode == "hybrid"
    assert loads.calls == 1  # loaded once, by the start-up check; the search took that index
    assert editor.search("navy blazer", "upper_body", 3)


def test_a_restart_recognises_the_unchanged_folder_without_reading_a_catalog_file(tmp_path: Path, encoder, monkeypatch):
    from fashion_rag.catalog.index import update_index

    root = small_catalog(tmp_path / "catalog")
    (root / "stray.png").write_bytes((root / "dresses" / "dress-001.png").read_bytes())  # a problem to report
    index_dir = tmp_path / "index"
    first = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert first.previous == "none" and [p.kind for p in first.problems] == ["stray-file"]
    before = snapshot(index_dir)

    with monkeypatch.context() as m:  # nothing of the catalog is read: no metadata, no image, no hash
        m.setattr(update_module, "load_catalog", lambda *a, **k: pytest.fail("the catalog was loaded"))
        m.setattr(update_module, "known_files", lambda *a, **k: pytest.fail("the catalog was compared"))
        m.setattr(catalog_module, "sha256_file", lambda *a: pytest.fail("a file was hashed"))
        again = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert again.previous == "unchanged" and again.written == () and again.embedded == ()
    assert again.problems == first.problems and again.counts == first.counts and again.kinds == first.kinds
    assert snapshot(index_dir) == before
    assert [i.id for i in again.index.items] == [i.id for i in first.index.items]

    # Other thresholds would choose other index kinds: not unchanged.
    assert update_index(root, encoder, index_dir).previous != "unchanged"
    update_index(root, encoder, index_dir, hnsw_threshold=3)

    # A caption edited in the metadata: the folder changed, the catalog is read, the caption is indexed.
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines()]
    rows[0]["caption"] = "emerald silk kurta"
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    edited = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert edited.previous == "updated" and edited.embedded == ()
    assert {i.id: i.caption for i in edited.index.items}[rows[0]["id"]] == "emerald silk kurta"

    # One image replaced: one image embedded, and the next start is a no-op again.
    replaced = root / rows[1]["file"]
    shutil.copyfile(EXAMPLE / "dresses" / "dress-020.png", replaced)
    changed = update_index(root, encoder, index_dir, hnsw_threshold=3)
    assert changed.embedded == (rows[1]["id"],) and changed.changed == (rows[1]["id"],)
    assert update_index(root, encoder, index_dir, hnsw_threshold=3).previous == "unchanged"

    # A stray image replaced by another (no item changes): only the manifest records the new state.
    (root / "stray.png").write_bytes(b"not an image but a stray all the same")
    items = snapshot(index_dir)
    assert update_index(root, encoder, index_dir, hnsw_threshold=3).previous == "unchanged"
    after = snapshot(index_dir)
    assert {n for n in after if after[n] != items[n]} == {"manifest.json"}
    with monkeypatch.context() as m:
        m.setattr(update_module, "load_catalog", lambda *a, **k: pytest.fail("the catalog was loaded"))
        assert update_index(root, encoder, index_dir, hnsw_threshold=3).previous == "unchanged"
