"""The dense index: faiss against brute force, HNSW recall, incremental updates, manifest checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from PIL import Image

from fashion_rag.catalog.catalog import load_catalog
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.index import (
    HNSW_EF_SEARCH,
    IVF_PROBES,
    MANIFEST_NAME,
    VECTORS_NAME,
    FileRows,
    RerankedIndex,
    build_faiss_index,
    build_index,
    choose_kind,
    load_index,
    missing_files,
    normalise_rows,
    search_index,
)
from fashion_rag.config import REPO_ROOT
from fashion_rag.errors import CatalogIndexError, InputError

from .brute_force import brute_force_search
from .conftest import small_catalog as copy_of_examples

EXAMPLE = REPO_ROOT / "examples" / "catalog"


def lowrank_vectors(n: int, dim: int, rng: np.random.Generator, basis: np.ndarray) -> np.ndarray:
    """Normalised points near a low-dimensional subspace, like real embeddings (see the benchmark)."""
    signal = rng.standard_normal((n, basis.shape[0]), dtype=np.float32) @ basis
    return normalise_rows(signal + 2.0 * rng.standard_normal((n, dim), dtype=np.float32))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder(tiny_sources) -> RetrievalEncoder:
    return RetrievalEncoder.from_sources(tiny_sources, device="cpu")


def small_catalog(root: Path, per_category: int = 4) -> Path:
    return copy_of_examples(root, per_category)


# --------------------------------------------------------------------------------------------------
# faiss against numpy


def test_exact_index_equals_brute_force():
    rng = np.random.default_rng(0)
    vectors = normalise_rows(rng.standard_normal((3000, 768), dtype=np.float32))
    queries = normalise_rows(rng.standard_normal((40, 768), dtype=np.float32))
    index = build_faiss_index(vectors, "flat")
    scores, positions = search_index(index, queries, 10)
    ref_scores, ref_positions = brute_force_search(vectors, queries, 10)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)
    assert scores.shape == (40, 10) and np.all(np.diff(scores, axis=1) <= 1e-7)  # best first


def test_more_k_than_items_pads_like_faiss():
    rng = np.random.default_rng(1)
    vectors = normalise_rows(rng.standard_normal((3, 16), dtype=np.float32))
    _, positions = search_index(build_faiss_index(vectors, "flat"), vectors[:1], 5)
    _, ref = brute_force_search(vectors, vectors[:1], 5)
    np.testing.assert_array_equal(positions, ref)
    assert positions[0, 0] == 0 and list(positions[0, 3:]) == [-1, -1]


def test_hnsw_recall_at_10_against_exact():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((64, 768), dtype=np.float32)
    vectors = lowrank_vectors(4000, 768, rng, basis)
    queries = lowrank_vectors(100, 768, rng, basis)
    _, truth = brute_force_search(vectors, queries, 10)
    hnsw = build_faiss_index(vectors, "hnsw")
    assert hnsw.hnsw.efSearch == HNSW_EF_SEARCH
    _, found = search_index(hnsw, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.99


def test_choose_kind_and_normalise():
    assert choose_kind(15_000) == "flat" and choose_kind(15_001) == "hnsw" and choose_kind(5, threshold=4) == "hnsw"
    rows = normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert choose_kind(400_001) == "ivfpq" and choose_kind(10, threshold=4, compressed_threshold=8) == "ivfpq"
    with pytest.raises(ValueError, match="unknown index kind 'ivf'"):
        build_faiss_index(rows, "ivf")


# --------------------------------------------------------------------------------------------------
# Build, update, load


def test_build_and_load_roundtrip(tmp_path: Path, encoder: RetrievalEncoder):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    calls = []
    report = build_index(catalog, encoder, tmp_path / "index", batch_size=5, progress=lambda d, n: calls.append(d))
    assert report.count == 12 and report.counts == {"upper_body": 4, "lower_body": 4, "dresses": 4}
    assert len(report.embedded) == 12 and report.reused == 0 and report.previous == "none"
    assert calls == [0, 5, 10, 12]
    manifest = json.loads((tmp_path / "index" / MANIFEST_NAME).read_text())
    assert manifest["encoder"]["identity"] == encoder.identity and manifest["dim"] == encoder.dim == 32
    assert manifest["count"] == 12 and set(manifest["files"]) == {VECTORS_NAME}
    assert {row["id"]: row["sha256"] for row in manifest["items"]} == {i.id: i.sha256 for i in catalog}
    assert manifest["items"][0] == {
        "id": "top-001",
        "category": "upper_body",
        "file": "upper_body/top-001.png",
        "sha256": catalog.get("top-001").sha256,
        "caption": "plain purple t-shirt",
        "size": catalog.get("top-001").path.stat().st_size,
        "mtime_ns": catalog.get("top-001").path.stat().st_mtime_ns,
    }
    index = load_index(tmp_path / "index", encoder_identity=encoder.identity)
    images = [Image.open(item.path) for item in catalog]
    np.testing.assert_allclose(index.vectors, encoder.encode_images(images), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    # Searching with an item's own embedding finds it first, in its category only.
    threads = faiss.omp_get_max_threads()
    scores, hits = index.search(index.vectors[4:5], "lower_body", 10)
    assert faiss.omp_get_max_threads() == threads  # one thread for the search only
    assert [h.id for h in hits[0]][0] == "bottom-001" and len(hits[0]) == 4 and scores.shape == (1, 4)
    assert {h.category for h in hits[0]} == {"lower_body"}
    assert not list(tmp_path.glob(".index*")), "temporary folders left behind"


def test_incremental_update_embeds_only_changes_and_equals_a_rebuild(tmp_path: Path, encoder: RetrievalEncoder):
    root = small_catalog(tmp_path / "catalog")
    build_index(load_catalog(root), encoder, tmp_path / "index")
    before = encoder.images_encoded
    unchanged = build_index(load_catalog(root), encoder, tmp_path / "index")
    assert encoder.images_encoded == before and unchanged.embedded == () and unchanged.reused == 12

    # Add two images, change one, remove one.
    shutil.copyfile(EXAMPLE / "dresses" / "dress-010.png", root / "dresses" / "dress-010.png")
    shutil.copyfile(EXAMPLE / "upper_body" / "top-020.png", root / "upper_body" / "top-020.png")
    shutil.copyfile(EXAMPLE / "lower_body" / "bottom-030.png", root / "lower_body" / "bottom-002.png")
    (root / "upper_body" / "top-003.png").unlink()
    updated_catalog = load_catalog(root)
    before = encoder.images_encoded
    report = build_index(updated_catalog, encoder, tmp_path / "index")
    assert encoder.images_encoded - before == 3
    assert sorted(report.embedded) == ["bottom-002", "dress-010", "top-020"]
    assert sorted(report.added) == ["dress-010", "top-020"] and report.changed == ("bottom-002",)
    assert report.removed == ("top-003",) and report.reused == 10 and report.previous == "updated"

    full = build_index(updated_catalog, encoder, tmp_path / "full")
    assert len(full.embedded) == 13
    updated, rebuilt = load_index(tmp_path / "index"), load_index(tmp_path / "full")
    assert updated.items == rebuilt.items
    np.testing.assert_allclose(updated.vectors, rebuilt.vectors, atol=1e-6)
    queries = encoder.encode_texts(["red dress", "striped shirt", "jeans"])
    for category in ("upper_body", "lower_body", "dresses"):
        _, a = updated.search(queries, category, 5)
        _, b = rebuilt.search(queries, category, 5)
        assert [[h.id for h in row] for row in a] == [[h.id for h in row] for row in b]


def test_same_image_twice_is_embedded_once(tmp_path: Path, encoder: RetrievalEncoder):
    root = small_catalog(tmp_path / "catalog", per_category=1)
    shutil.copyfile(root / "dresses" / "dress-001.png", root / "dresses" / "dress-copy.png")
    before = encoder.images_encoded
    report = build_index(load_catalog(root), encoder, tmp_path / "index")
    assert encoder.images_encoded - before == 3 and report.count == 4
    index = load_index(tmp_path / "index")
    np.testing.assert_array_equal(index.vectors[2], index.vectors[3])


def test_index_by_another_encoder_is_refused(tmp_path: Path, encoder: RetrievalEncoder, tiny_bundle: Path):
    build_index(load_catalog(small_catalog(tmp_path / "catalog")), encoder, tmp_path / "index")
    # Another encoder: the tiny model with one weight changed, saved in the same layout.
    from safetensors.torch import save_model

    other_dir = tmp_path / "other-encoder"
    shutil.copytree(tiny_bundle / "retrieval-encoder", other_dir)
    other = RetrievalEncoder.from_dir(other_dir)
    other.model.logit_scale.data += 1.0
    save_model(other.model, str(other_dir / "open_clip_pytorch_model.safetensors"))
    other = RetrievalEncoder.from_dir(other_dir)
    assert other.identity != encoder.identity
    with pytest.raises(CatalogIndexError, match="was built with the retrieval encoder .* the encoder in use is"):
        load_index(tmp_path / "index", encoder_identity=other.identity)
    # Building with the other encoder does not reuse a single vector.
    before = other.images_encoded
    report = build_index(load_catalog(tmp_path / "catalog"), other, tmp_path / "index")
    assert other.images_encoded - before == 12 and report.previous == "rebuilt"
    assert report.rebuilt_because.startswith("it was built with another")
    assert load_index(tmp_path / "index", encoder_identity=other.identity).encoder_identity == other.identity


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip-byte", "does not match its manifest: vectors.npy was modified or half-written"),
        ("truncate", "does not match its manifest: vectors.npy was modified or half-written"),
        ("delete", "is incomplete: vectors.npy is missing"),
        ("manifest-garbage", "has a corrupt manifest.json"),
        ("manifest-count", r"holds \(12, 32\) float32 vectors for 11 items"),
        ("hnsw-file", "dresses.hnsw.faiss was modified or half-written"),
    ],
)
def test_tampered_index_is_refused(tmp_path: Path, encoder: RetrievalEncoder, damage: str, message: str):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    build_index(catalog, encoder, tmp_path / "index", hnsw_threshold=3)  # 4 per category: all HNSW
    index_dir = tmp_path / "index"
    vectors = index_dir / VECTORS_NAME
    manifest_path = index_dir / MANIFEST_NAME
    if damage == "flip-byte":
        data = bytearray(vectors.read_bytes())
        data[-1] ^= 0xFF
        vectors.write_bytes(bytes(data))
    elif damage == "truncate":
        vectors.write_bytes(vectors.read_bytes()[:200])
    elif damage == "delete":
        vectors.unlink()
    elif damage == "manifest-garbage":
        manifest_path.write_text('{"format": ')
    elif damage == "manifest-count":
        manifest = json.loads(manifest_path.read_text())
        manifest["items"] = manifest["items"][:-1]
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "hnsw-file":
        path = index_dir / "dresses.hnsw.faiss"
        path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CatalogIndexError, match=message) as info:
        load_index(index_dir, encoder_identity=encoder.identity)
    assert "python -m fashion_rag index build" in str(info.value)
    # A rebuild repairs it, embedding everything again when the old vectors cannot be trusted.
    report = build_index(catalog, encoder, index_dir, hnsw_threshold=3)
    assert report.previous == "rebuilt" and len(report.embedded) == 12
    assert len(load_index(index_dir, encoder_identity=encoder.identity)) == 12


def test_hnsw_categories_search_like_exact(tmp_path: Path, encoder: RetrievalEncoder):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    report = build_index(catalog, encoder, tmp_path / "hnsw", hnsw_threshold=3)
    build_index(catalog, encoder, tmp_path / "flat")
    assert report.kinds == {"upper_body": "hnsw", "lower_body": "hnsw", "dresses": "hnsw"}
    hnsw, flat = load_index(tmp_path / "hnsw"), load_index(tmp_path / "flat")
    assert isinstance(hnsw._indexes["dresses"], faiss.IndexHNSWFlat)
    assert isinstance(flat._indexes["dresses"], faiss.IndexFlatIP)
    queries = encoder.encode_texts(["plain dress", "red shirt"])
    for category in ("upper_body", "dresses"):
        assert [[h.id for h in r] for r in hnsw.search(queries, category, 4)[1]] == [
            [h.id for h in r] for r in flat.search(queries, category, 4)[1]
        ]


def test_failed_write_leaves_the_previous_index(tmp_path: Path, encoder: RetrievalEncoder, monkeypatch):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    build_index(catalog, encoder, tmp_path / "index")
    before = (tmp_path / "index" / MANIFEST_NAME).read_bytes()
    (tmp_path / "catalog" / "dresses" / "dress-002.png").unlink()

    def broken_write(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="No space left"):
        build_index(load_catalog(tmp_path / "catalog"), encoder, tmp_path / "index", hnsw_threshold=2)
    assert (tmp_path / "index" / MANIFEST_NAME).read_bytes() == before
    assert len(load_index(tmp_path / "index")) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "index"], "temporary folder left behind"


def test_refuses_to_replace_a_folder_that_is_not_an_index(tmp_path: Path, encoder: RetrievalEncoder):
    catalog = load_catalog(small_catalog(tmp_path / "catalog"))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(InputError, match="is not empty and holds no index"):
        build_index(catalog, encoder, tmp_path / "photos")
    assert (tmp_path / "photos" / "holiday.jpg").read_bytes() == b"precious"


def test_corrupt_image_is_skipped_reported_and_the_rest_indexed(tmp_path: Path, encoder: RetrievalEncoder):
    root = small_catalog(tmp_path / "catalog")
    good = (root / "dresses" / "dress-001.png").read_bytes()
    (root / "dresses" / "dress-003.png").write_bytes(good[:-100])  # truncated: only decoding finds out
    catalog = load_catalog(root, check_images=False)
    assert len(catalog) == 12
    report = build_index(catalog, encoder, tmp_path / "index")
    assert report.count == 11 and report.counts["dresses"] == 3
    assert [(p.kind, p.where) for p in report.problems] == [("corrupt-image", "dresses/dress-003.png")]
    assert "skipped corrupt-image: dresses/dress-003.png" in report.summary()
    assert "dress-003" not in {item.id for item in load_index(tmp_path / "index").items}


def test_image_deleted_after_indexing_is_reported(tmp_path: Path, encoder: RetrievalEncoder):
    root = small_catalog(tmp_path / "catalog")
    build_index(load_catalog(root), encoder, tmp_path / "index")
    (root / "upper_body" / "top-002.png").unlink()
    index = load_index(tmp_path / "index", encoder_identity=encoder.identity)
    assert [item.id for item in missing_files(index, root)] == ["top-002"]


def test_missing_index_message(tmp_path: Path):
    with pytest.raises(CatalogIndexError, match=r"no index at .* build one with `python -m fashion_rag index build"):
        load_index(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------------
# Compressed tier (issue 13: exact, then HNSW, then IVF-PQ from about a million vectors)


def test_ivfpq_with_exact_rerank_recall_at_10_against_brute_force():
    # Clustered points, the benchmark's data model (garment embeddings gather by type, colour, pattern):
    # an inverted file needs that structure; on noise-dominated `lowrank_vectors` it recalls ~0.77.
    rng = np.random.default_rng(3)
    basis = rng.standard_normal((64, 768), dtype=np.float32)
    centres = normalise_rows(rng.standard_normal((100, 64), dtype=np.float32) @ basis)  # (100, 768)

    def clustered(n: int) -> np.ndarray:
        offset = 0.6 * normalise_rows(rng.standard_normal((n, 64), dtype=np.float32) @ basis)
        noise = rng.standard_normal((n, 768), dtype=np.float32) * (0.5 / np.sqrt(768))
        return normalise_rows(centres[rng.integers(0, 100, n)] + offset + noise)

    vectors, queries = clustered(6000), clustered(50)
    _, truth = brute_force_search(vectors, queries, 10)
    reranked = RerankedIndex(build_faiss_index(vectors, "ivfpq"), vectors)
    assert isinstance(reranked.index, faiss.IndexIVFPQFastScan) and reranked.index.nprobe == IVF_PROBES
    scores, found = search_index(reranked, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95
    # Re-ranked scores are exact inner products, best first.
    np.testing.assert_allclose(scores[:, 0], np.einsum("qd,qd->q", vectors[found[:, 0]], queries), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def resident_file_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("RssFile:"))
    return int(line.split()[1]) / 1024


def test_reranking_reads_rows_from_the_file_without_making_it_resident(tmp_path: Path):
    """1M x 768 vectors are 3 GB: re-ranking must not map them into the process (issue 13: <= 1.5 GB)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((60_000, 768), dtype=np.float32)  # 184 MB
    np.save(tmp_path / "vectors.npy", vectors)
    rows = FileRows.of_npy(tmp_path / "vectors.npy", 10_000, 40_000)
    assert len(rows) == 40_000 and rows.shape == (40_000, 768)
    picks = [np.sort(rng.choice(40_000, 100, replace=False)) for _ in range(300)]
    np.testing.assert_array_equal(rows[picks[0]], vectors[10_000 + picks[0]])  # the block's own rows

    before = resident_file_mb()
    for found in picks:  # 300 queries x 100 candidates, as the re-ranking reads them
        rows[found]
    assert resident_file_mb() - before < 20
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")[10_000:50_000]
    before = resident_file_mb()
    for found in picks:  # the same reads through a memory map: the kernel maps most of the file
        np.asarray(mapped[found])
    assert resident_file_mb() - before > 60


def test_index_kind_follows_category_size(tmp_path: Path, encoder: RetrievalEncoder):
    # Thresholds scaled down: 20 items per category above both -> IVF-PQ; the same catalog exact by default.
    catalog = load_catalog(small_catalog(tmp_path / "catalog", per_category=20))
    report = build_index(catalog, encoder, tmp_path / "ivfpq", hnsw_threshold=4, compressed_threshold=8)
    assert report.kinds == {"upper_body": "ivfpq", "lower_body": "ivfpq", "dresses": "ivfpq"}
    manifest = json.loads((tmp_path / "ivfpq" / MANIFEST_NAME).read_text())
    assert manifest["categories"]["dresses"]["kind"] == "ivfpq"
    assert (tmp_path / "ivfpq" / "dresses.ivfpq.faiss").is_file()
    build_index(catalog, encoder, tmp_path / "flat")
    compressed, flat = load_index(tmp_path / "ivfpq"), load_index(tmp_path / "flat")
    assert isinstance(compressed._indexes["dresses"], RerankedIndex)
    assert isinstance(flat._indexes["dresses"], faiss.IndexFlatIP)
    queries = encoder.encode_texts(["plain dress", "red shirt"])
    for category in ("upper_body", "dresses"):  # 20 items <= 100 re-ranked: the same as exact
        assert [[h.id for h in r] for r in compressed.search(queries, category, 5)[1]] == [
            [h.id for h in r] for r in flat.search(queries, category, 5)[1]
        ]
