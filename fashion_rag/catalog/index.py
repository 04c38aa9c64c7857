"""The dense catalog index: build, update and load; faiss inner product over normalised embeddings.

An index folder holds::

    manifest.json           format, catalog folder, encoder identity, dimension, item count, per-item
                            id/category/file/sha256/caption/size/mtime, per-category index kind, and the
                            sha256, size and mtime of every other file
    vectors.npy             (N, D) float32 image embeddings, rows in manifest item order (memory-mapped)
    <category>.hnsw.faiss   the HNSW graph of a category above HNSW_THRESHOLD items
    <category>.hnsw.nodes.npy   (only for a graph updated in place) (G,) int64: the category row of each
                            graph node, -1 for a node whose item changed or left (never returned)
    <category>.ivfpq.faiss  the IVF-PQ codes of a category above IVFPQ_THRESHOLD items (memory-mapped)

Smaller categories use an exact IndexFlatIP, built from vectors.npy on load in milliseconds. Each
category has its own faiss index, so a search in one category cannot return another's items.

Cost follows change. A catalog file whose size and mtime are what the manifest records is not hashed
again (catalog.load_catalog with `known_files`); an unchanged catalog writes no file; a category whose
items did not change keeps its graph (hard-linked into the new folder); an HNSW graph whose category
changed a little is updated in place (new vectors added, the nodes of changed or removed items marked
dead) until dead nodes pass DEAD_NODE_LIMIT; only images whose content (sha256) is not in the previous
index are embedded. The new index is written to a temporary folder
beside the target and renamed into place: a crash leaves the previous index or none, never a
half-written one. Loading checks each file against the manifest (by size and mtime, by sha256 when
those differ) and the encoder identity against the encoder in use: a mismatch raises CatalogIndexError
saying what to do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from fashion_rag.catalog.catalog import (
    Catalog,
    CatalogProblem,
    KnownFiles,
    catalog_state,
    load_catalog,
    metadata_stat,
    sha256_file,
    with_replaced_images,
)
from fashion_rag.catalog.embedding import CHECKPOINT_EVERY, Checkpoint, ProgressCallback, embed_images
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import CatalogIndexError, InputError, check_category

logger = logging.getLogger(__name__)

FORMAT = "fashion-rag-catalog-index/1"
MANIFEST_NAME = "manifest.json"
VECTORS_NAME = "vectors.npy"

# The index kind follows a category's size (choose_kind). Measured with benchmarks/bench_search_cpu.py on
# the shared 2-core box (768-d, one query at a time, one faiss thread; docs/PERFORMANCE.md has the tables):
# - exact IndexFlatIP up to HNSW_THRESHOLD items: p50 grows ~0.1 ms per 1,000 items, so it crosses a 2 ms
#   budget near 19k; up to 15k it has recall 1.0, no graph to build and free incremental updates.
# - HNSW (IndexHNSWFlat) up to IVFPQ_THRESHOLD: memory ~3.3 KB per item and a build of minutes per 100k.
# - IVF-PQ above: 96 bytes per item in RAM (memory-mapped from disk), the top RERANK candidates re-scored
#   exactly from their rows of vectors.npy (read with pread: FileRows); built in ~1 min at 1M on 2 cores,
#   where HNSW takes most of an hour.
HNSW_THRESHOLD = 15_000
IVFPQ_THRESHOLD = 400_000
HNSW_M = 32  # graph degree; M=16 measured slower at equal recall on 768-d vectors (more hops)
# Build-time and query-time beams: chosen from an exploratory sweep on the benchmark's clustered 768-d
# vectors at 100k, then confirmed by benchmarks/bench_search_cpu.py (efSearch 96: p50 1.52 ms, recall@10
# 1.000, docs/PERFORMANCE.md). On its harder low-rank vectors efSearch 128 gave recall ~0.94.
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 96
IVF_PROBES = 32  # inverted lists visited per query: recall is bounded by the lists not visited
IVF_TRAIN_PER_LIST = 40  # k-means training points per list (faiss warns below 39)
RERANK = 100  # IVF-PQ candidates re-scored exactly per query
# faiss HNSW cannot remove a node, so an update marks the nodes of changed or removed items dead (searches
# skip them) and adds the new vectors. Dead nodes still cost hops; past this share of the graph, rebuild.
DEAD_NODE_LIMIT = 0.10
KINDS = ("flat", "hnsw", "ivfpq")
LEXICAL_FOLDER = "lexical"  # in the index folder: the BM25 index of its captions (lexical.py, search.py)

# --------------------------------------------------------------------------------------------------
# Plain functions over numpy arrays


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 with unit L2 norm per row (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def choose_kind(count: int, threshold: int = HNSW_THRESHOLD, compressed_threshold: int = IVFPQ_THRESHOLD) -> str:
    """'flat' (exact) for `count` <= `threshold` items, 'hnsw' up to `compressed_threshold`, else 'ivfpq'."""
    if count <= threshold:
        return "flat"
    return "hnsw" if count <= compressed_threshold else "ivfpq"


def ivf_lists(count: int) -> int:
    """Inverted lists for `count` vectors: a power of two near 2 sqrt(count) (2,048 at 1M), at least 1."""
    return max(1, 2 ** round(np.log2(max(2.0 * np.sqrt(count), 1.0))))


def pq_subquantizers(dim: int) -> int:
    """PQ sub-vectors of 4 dimensions each, 4-bit codes (96 bytes per 768-d vector), or the nearest even
    divisor of `dim` (faiss fast-scan packs codes in pairs)."""
    return next((m for m in range(max(2, dim // 4), 1, -1) if dim % m == 0 and m % 2 == 0), 2)


class FileRows:
    """Rows of a float32 (N, D) block of a .npy file, read with pread when asked for.

    Re-ranking reads ~100 random rows a query. Through a memory map, the kernel maps whole page-cache folios
    around each row (measured: 200 queries over a 1M x 768 vectors.npy made the process 3.6 GB resident,
    with MADV_RANDOM too); pread copies just the rows, so the process holds only what it reads (the page
    cache is the kernel's, shared and reclaimable). Safe from many threads: pread has no file position.
    """

    def __init__(self, path: Path | str, offset: int, shape: tuple[int, int]) -> None:
        self.path, self.offset, self.shape = Path(path), int(offset), (int(shape[0]), int(shape[1]))
        self.row_bytes = self.shape[1] * 4
        self._fd = os.open(self.path, os.O_RDONLY)

    @classmethod
    def of_npy(cls, path: Path | str, start: int = 0, count: int | None = None) -> FileRows:
        """Rows start..start+count of the (N, D) float32 array in the .npy file at `path`."""
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header only
        count = mapped.shape[0] - start if count is None else count
        return cls(path, mapped.offset + start * mapped.shape[1] * 4, (count, mapped.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32: the rows at these positions (ascending positions read forward)."""
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        for i, row in enumerate(rows):
            data = os.pread(self._fd, self.row_bytes, self.offset + int(row) * self.row_bytes)
            out[i] = np.frombuffer(data, dtype=np.float32)
        return out

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)


class RerankedIndex:
    """An approximate faiss index whose top `rerank` candidates are re-scored exactly against `vectors`.

    `vectors` (N, D) is an array, or FileRows over vectors.npy (what load_index gives): each query reads
    only its candidates' rows. Same `search` contract as a faiss index: (Q, k) scores and positions, best
    first, -1 padded.
    """

    def __init__(self, index: faiss.Index, vectors: np.ndarray | FileRows, rerank: int = RERANK) -> None:
        self.index, self.vectors, self.rerank = index, vectors, rerank
        self.d, self.ntotal = index.d, index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, candidates = self.index.search(queries, max(k, self.rerank))  # (Q, C)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        positions = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates, strict=True)):
            found = np.sort(found[found >= 0])  # rows in file order: reads of the memory map go forward
            exact = np.asarray(self.vectors[found] @ query, dtype=np.float32)  # (C,)
            top = np.argsort(-exact, kind="stable")[:k]
            scores[row, : len(top)], positions[row, : len(top)] = exact[top], found[top]
        return scores, positions


class UpdatedGraph:
    """An HNSW graph updated in place: `nodes` (G,) int64 gives each graph node's row in the category,
    -1 for a dead node (its item changed or left). Searches skip dead nodes (a faiss ID selector: they are
    still walked through, never returned) and return category rows. Same `search` contract as a faiss
    index."""

    def __init__(self, graph: faiss.Index, nodes: np.ndarray) -> None:
        self.graph, self.nodes = graph, np.asarray(nodes, dtype=np.int64)
        self.d, self.ntotal = graph.d, int((self.nodes >= 0).sum())
        self._params = faiss.SearchParametersHNSW(efSearch=graph.hnsw.efSearch)
        dead = np.flatnonzero(self.nodes < 0).astype(np.int64)
        if len(dead):
            # IDSelectorNot keeps only a pointer to the batch: both stay referenced for the graph's lifetime.
            self._dead = faiss.IDSelectorBatch(len(dead), faiss.swig_ptr(dead))
            self._live = faiss.IDSelectorNot(self._dead)
            self._params.sel = self._live

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, found = self.graph.search(queries, k, params=self._params)  # (Q, k) graph nodes, -1 padded
        return scores, np.where(found >= 0, self.nodes[np.maximum(found, 0)], -1)


def build_faiss_index(
    vectors: np.ndarray,
    kind: str = "flat",
    *,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
    nlist: int | None = None,
    nprobe: int = IVF_PROBES,
    seed: int = 0,
) -> faiss.Index:
    """An inner-product faiss index over (N, D) float32 `vectors`: exact 'flat', approximate 'hnsw'
    (IndexHNSWFlat) or compressed 'ivfpq' (IndexIVFPQ, 8-bit codes of 8-d sub-vectors; wrap it in
    RerankedIndex to search)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be (N, D), got shape {vectors.shape}")
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind == "ivfpq":
        lists = nlist or ivf_lists(len(vectors))
        # 4-bit fast-scan PQ: a query scans its lists with SIMD lookups (~0.4 ms at 50k, 1 thread), and the
        # codes only pick candidates (exact re-ranking decides), so coarse codes cost no recall: measured
        # equal recall to 8-bit SQ codes (benchmarks/bench_search_cpu.py). Training 16 centroids per
        # sub-vector is also far cheaper than 256 (8-bit PQ).
        index = faiss.index_factory(dim, f"IVF{lists},PQ{pq_subquantizers(dim)}x4fs", faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # coarse k-means iterations (25 by default): the re-ranked recall barely moves
        index.cp.seed = seed
        index.pq.cp.niter = 10
        sample = min(len(vectors), max(IVF_TRAIN_PER_LIST * lists, 10_000))
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), sample, replace=False))
        index.train(vectors[rows])
        index.nprobe = nprobe
    else:
        raise ValueError(f"unknown index kind {kind!r}: use one of {', '.join(KINDS)}")
    for start in range(0, len(vectors), 100_000):  # in blocks: a memory-mapped input is read once, in order
        index.add(np.ascontiguousarray(vectors[start : start + 100_000]))
    return index


def search_index(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` by inner product: scores (Q, k) float32 and row positions (Q, k) int64, best first;
    positions are -1 where the index has fewer than k items."""
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    return index.search(queries, k)


@contextmanager
def few_threads(queries: int) -> Iterator[None]:
    """faiss on one OpenMP thread while it answers a handful of queries, then as before.

    For one query at a time, OpenMP start-up and spinning cost more than they save, and on a busy
    2-core machine they cost a lot: exact search over 100k vectors took 56 ms p50 on 2 threads against
    21 ms on one (benchmarks/bench_search_cpu.py). OpenMP keeps the thread count per calling thread, so
    this does not slow other threads of the process.
    """
    if queries > 16:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def brute_force_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference of `search_index` for an exact index: (Q, k) scores and positions."""
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T  # (Q, N)
    k_eff = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
    out_scores = np.full((scores.shape[0], k), -np.inf, dtype=np.float32)
    out_positions = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out_scores[:, :k_eff] = np.take_along_axis(scores, top, axis=1)
    out_positions[:, :k_eff] = top
    return out_scores, out_positions


# --------------------------------------------------------------------------------------------------
# The loaded index


@dataclass(frozen=True)
class IndexedItem:
    """One item of an index, as the manifest records it."""

    id: str
    category: str
    file: str  # relative to the catalog folder, e.g. "dresses/dress-001.png"
    sha256: str
    caption: str


class CatalogIndex:
    """A loaded index: the manifest's items, their (N, D) vectors and one faiss index per category.

    Only read after loading, so one instance serves concurrent searches (faiss searches are thread-safe).
    """

    def __init__(
        self, directory: Path, manifest: dict, items: list[IndexedItem], vectors: np.ndarray, indexes: dict
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.items = tuple(items)
        self.vectors = vectors  # (N, D) float32, a read-only memory map of vectors.npy
        self._indexes: dict = indexes
        self._by_category = {c: [item for item in self.items if item.category == c] for c in CATEGORIES}

    @property
    def encoder_identity(self) -> str:
        return str(self.manifest["encoder"]["identity"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def kinds(self) -> dict[str, str]:
        return {c: str(v["kind"]) for c, v in self.manifest["categories"].items()}

    def __len__(self) -> int:
        return len(self.items)

    def items_in(self, category: str) -> list[IndexedItem]:
        return list(self._by_category[check_category(category)])

    def count(self, category: str) -> int:
        """Items of `category` in the index (without copying the list, unlike `items_in`)."""
        return len(self._by_category[check_category(category)])

    def search(self, queries: np.ndarray, category: str, k: int) -> tuple[np.ndarray, list[list[IndexedItem]]]:
        """Top-`k` items of `category` for each of the (Q, D) normalised `queries`: scores (Q, k') and the
        items, best first, with k' = min(k, items in the category)."""
        members = self._by_category[check_category(category)]
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k_eff = min(k, len(members))
        if k_eff < 1:
            return np.zeros((len(queries), 0), dtype=np.float32), [[] for _ in queries]
        with few_threads(len(queries)):
            scores, positions = search_index(self._indexes[category], queries, k_eff)
        hits = [[members[p] for p in row if p >= 0] for row in positions]
        return scores, hits


def _manifest_error(directory: Path, problem: str) -> CatalogIndexError:
    return CatalogIndexError(
        f"index at {directory} {problem}; rebuild it with `python -m fashion_rag index build CATALOG_DIR --out "
        f"{directory}`"
    )


@functools.lru_cache(maxsize=4)
def _parsed_manifest(path: str, size: int, mtime_ns: int) -> dict:
    """The parsed manifest at `path`, parsed once per (size, mtime): 100k items are ~0.4 s of JSON. Callers
    only read it (the dict is shared)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_manifest(directory: Path | str) -> dict:
    """The manifest of the index in `directory`, or CatalogIndexError when there is none or it is unreadable."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise CatalogIndexError(
            f"no index at {directory} (no {MANIFEST_NAME}): build one with "
            f"`python -m fashion_rag index build CATALOG_DIR --out {directory}`"
        )
    try:
        stat = path.stat()
        manifest = _parsed_manifest(str(path), stat.st_size, stat.st_mtime_ns)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _manifest_error(directory, f"has a corrupt {MANIFEST_NAME} ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise _manifest_error(directory, f"has format {found!r}, this version reads {FORMAT!r}")
    for key in ("encoder", "dim", "count", "items", "categories", "files"):
        if key not in manifest:
            raise _manifest_error(directory, f"has a manifest without {key!r}")
    return manifest


def file_stat(path: Path) -> list[int]:
    """[size, mtime_ns] of a file: what the manifest records to recognise it unchanged without hashing."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def check_files(directory: Path, manifest: dict) -> None:
    """CatalogIndexError unless every file the manifest lists is there and unchanged. A file with the size
    and modification time recorded at build time is taken as unchanged; any other is hashed (sha256)
    and compared, so a modified, truncated or half-written file is always found."""
    stats = manifest.get("file_stats", {})
    for name, expected in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            raise _manifest_error(directory, f"is incomplete: {name} is missing")
        if stats.get(name) == file_stat(path):
            continue
        if sha256_file(path) != expected:
            raise _manifest_error(directory, f"does not match its manifest: {name} was modified or half-written")


def _items_of(directory: Path, manifest: dict) -> list[IndexedItem]:
    try:
        return [
            IndexedItem(str(row["id"]), str(row["category"]), str(row["file"]), str(row["sha256"]), str(row["caption"]))
            for row in manifest["items"]
        ]
    except (KeyError, TypeError) as error:
        raise _manifest_error(directory, f"has malformed items ({error})") from error


def load_index(directory: Path | str, *, encoder_identity: str | None = None) -> CatalogIndex:
    """Load and check the index in `directory`, memory-mapping what can be mapped (vectors.npy, HNSW
    storage, IVF-PQ lists): a restart reads the graph links and the manifest, not every vector.

    CatalogIndexError when it is missing, when it was built by an encoder other than `encoder_identity`
    (when given), or when any file differs from what the manifest records (modified, truncated,
    half-written or missing).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    built_with = manifest["encoder"].get("identity")
    if encoder_identity is not None and built_with != encoder_identity:
        raise CatalogIndexError(
            f"index at {directory} was built with the retrieval encoder {built_with!r}, but the encoder in use "
            f"is {encoder_identity!r}: their embeddings are not comparable. Rebuild the index with this encoder "
            f"(`python -m fashion_rag index build CATALOG_DIR --out {directory}` with the same --models), or "
            f"search with the models that built it"
        )
    check_files(directory, manifest)
    items = _items_of(directory, manifest)
    try:
        vectors = np.load(directory / VECTORS_NAME, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise _manifest_error(directory, f"is unreadable ({error})") from error
    dim, count = int(manifest["dim"]), int(manifest["count"])
    if vectors.dtype != np.float32 or vectors.shape != (count, dim) or len(items) != count:
        raise _manifest_error(
            directory,
            f"holds {vectors.shape} {vectors.dtype} vectors for {len(items)} items, expected ({count}, {dim})",
        )
    indexes: dict = {}
    start = 0
    for category in CATEGORIES:
        entry = manifest["categories"].get(category, {"kind": "flat", "count": 0})
        size = int(entry["count"])
        block = vectors[start : start + size]
        if any(item.category != category for item in items[start : start + size]):
            raise _manifest_error(directory, f"lists its {category} items out of order")
        if entry["kind"] in ("hnsw", "ivfpq"):
            # Memory-mapped and read-only: HNSW's flat storage (IO_FLAG_MMAP_IFC), IVF's inverted lists (IO_FLAG_MMAP).
            flags = faiss.IO_FLAG_READ_ONLY | (
                faiss.IO_FLAG_MMAP_IFC if entry["kind"] == "hnsw" else faiss.IO_FLAG_MMAP
            )
            try:
                index = faiss.read_index(str(directory / entry["file"]), flags)
            except RuntimeError as error:
                raise _manifest_error(directory, f"has an unreadable {entry['file']} ({error})") from error
            nodes = _graph_nodes(directory, entry, index, size) if "nodes" in entry else None
            if nodes is None and (index.ntotal != size or index.d != dim):
                raise _manifest_error(directory, f"has {index.ntotal} vectors in {entry['file']}, expected {size}")
            if entry["kind"] == "hnsw":
                index.hnsw.efSearch = int(entry.get("ef_search", HNSW_EF_SEARCH))
                if nodes is not None:
                    index = UpdatedGraph(index, nodes)
            else:
                index.nprobe = int(entry.get("nprobe", IVF_PROBES))
                rows = FileRows.of_npy(directory / VECTORS_NAME, start, size)  # read per query, not mapped
                index = RerankedIndex(index, rows, int(entry.get("rerank", RERANK)))
        else:
            index = build_faiss_index(block, "flat")
        indexes[category] = index
        start += size
    if start != count:
        raise _manifest_error(directory, f"lists {start} items in its categories but {count} in all")
    return CatalogIndex(directory, manifest, items, vectors, indexes)


def _graph_nodes(directory: Path, entry: dict, graph: faiss.Index, size: int) -> np.ndarray:
    """The node -> row map of an updated graph, checked: one node per graph vector, and its live nodes
    name each of the category's `size` rows once."""
    try:
        nodes = np.load(directory / entry["nodes"], allow_pickle=False)
    except (ValueError, OSError) as error:
        raise _manifest_error(directory, f"has an unreadable {entry['nodes']} ({error})") from error
    live = np.sort(nodes[nodes >= 0]) if nodes.ndim == 1 else None
    if len(nodes) != graph.ntotal or live is None or not np.array_equal(live, np.arange(size)):
        raise _manifest_error(
            directory, f"has a {entry['nodes']} that does not map {entry['file']} onto its {size} items"
        )
    return nodes


def missing_files(index: CatalogIndex, catalog_root: Path | str) -> list[IndexedItem]:
    """Indexed items whose image no longer exists under `catalog_root` (deleted after indexing)."""
    root = Path(catalog_root)
    present: set[str] = set()
    for category in CATEGORIES:  # one directory read per category, not a stat per item
        with contextlib.suppress(OSError), os.scandir(root / category) as entries:
            present.update(f"{category}/{e.name}" for e in entries if e.is_file())
    return [item for item in index.items if item.file not in present]


def load_items(directory: Path | str) -> list[IndexedItem]:
    """The items an index's manifest lists, without checking its files (for reports and lexical search)."""
    return _items_of(Path(directory), read_manifest(directory))


def known_files(directory: Path | str) -> KnownFiles:
    """What the index in `directory` recorded of each catalog file: file -> (size, mtime_ns, sha256), for
    `load_catalog(known=...)` to skip hashing unchanged images. {} without a readable index."""
    try:
        manifest = read_manifest(directory)
    except CatalogIndexError:
        return {}
    return {
        str(row["file"]): (int(row["size"]), int(row["mtime_ns"]), str(row["sha256"]))
        for row in manifest["items"]
        if isinstance(row, dict) and "size" in row and "mtime_ns" in row and "file" in row and "sha256" in row
    }


# --------------------------------------------------------------------------------------------------
# Building and updating


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did. Ids in `embedded` had their image embedded in this run; `index` is the
    index as loaded after the build (the search can use it instead of loading it again)."""

    index_dir: Path
    counts: dict[str, int]
    kinds: dict[str, str]
    embedded: tuple[str, ...]
    reused: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    problems: tuple[CatalogProblem, ...]
    previous: str  # "none", "unchanged", "updated", or "rebuilt: <why the previous index could not be reused>"
    encoder: dict = field(default_factory=dict)
    resumed: int = 0  # vectors taken from the checkpoint of an interrupted build
    written: tuple[str, ...] = ()  # index files written in this run (unchanged ones are linked, not rewritten)
    index: CatalogIndex | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        counts = ", ".join(f"{c} {n} ({self.kinds[c]})" for c, n in self.counts.items())
        if self.previous == "unchanged":
            return f"index at {self.index_dir} is up to date: {counts}; nothing embedded, no file written"
        lines = [
            f"indexed {self.count} items into {self.index_dir}: {counts}",
            f"embedded {len(self.embedded)}, reused {self.reused}; added {len(self.added)}, changed "
            f"{len(self.changed)}, removed {len(self.removed)}",
        ]
        if self.resumed:
            lines.append(f"resumed an interrupted build: {self.resumed} vectors from its checkpoint")
        if self.previous.startswith("rebuilt"):
            lines.append(f"previous index not reused: {self.previous.removeprefix('rebuilt: ')}")
        lines += [f"skipped {problem}" for problem in self.problems]
        return "\n".join(lines)


def _check_target(index_dir: Path) -> None:
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"index folder {str(index_dir)!r} is a file: choose a folder with --out")
    if index_dir.is_dir() and not (index_dir / MANIFEST_NAME).is_file() and any(index_dir.iterdir()):
        raise InputError(
            f"{str(index_dir)!r} is not empty and holds no index ({MANIFEST_NAME}): refusing to replace it; "
            f"choose another folder with --out"
        )


@dataclass
class _Previous:
    """The previous index in the target folder, as far as it can be reused."""

    state: str  # "none", "updated" (reusable) or "rebuilt: why not"
    items: list[IndexedItem]
    manifest: dict | None = None
    index: CatalogIndex | None = None

    def vectors_by_sha(self) -> dict[str, int]:
        """sha256 -> row of the previous vectors (empty when they cannot be reused)."""
        if self.index is None:
            return {}
        return {item.sha256: row for row, item in enumerate(self.index.items)}


def _previous(index_dir: Path, identity: str) -> _Previous:
    if not (index_dir / MANIFEST_NAME).is_file():
        return _Previous("none", [])
    try:
        manifest = read_manifest(index_dir)
        items = _items_of(index_dir, manifest)
    except CatalogIndexError as error:
        return _Previous(f"rebuilt: {str(error).split('; rebuild')[0]}", [])
    built_with = manifest["encoder"].get("identity")
    if built_with != identity:
        return _Previous(f"rebuilt: it was built with another encoder ({built_with})", items)
    try:
        previous = load_index(index_dir, encoder_identity=identity)
    except CatalogIndexError as error:
        logger.warning("not reusing the previous index: %s", error)
        return _Previous(f"rebuilt: {str(error).split('; rebuild')[0]}", items)
    return _Previous("updated", items, manifest, previous)


def _item_rows(items) -> list[dict]:
    return [
        {"id": i.id, "category": i.category, "file": i.file, "sha256": i.sha256, "caption": i.caption,
         "size": i.size, "mtime_ns": i.mtime_ns}
        for i in items
    ]  # fmt: skip


def _category_entry(kind: str, count: int, category: str) -> dict:
    entry: dict = {"kind": kind, "count": count}
    if kind == "hnsw":
        entry.update(file=f"{category}.hnsw.faiss", m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
        entry["ef_search"] = HNSW_EF_SEARCH
    elif kind == "ivfpq":
        entry.update(file=f"{category}.ivfpq.faiss", nprobe=IVF_PROBES, rerank=RERANK)
    return entry


def build_index(
    catalog: Catalog,
    encoder: RetrievalEncoder,
    index_dir: Path | str,
    *,
    batch_size: int | None = None,
    hnsw_threshold: int = HNSW_THRESHOLD,
    compressed_threshold: int = IVFPQ_THRESHOLD,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    catalog_state: str | None = None,
    metadata_file: list | None = None,
) -> BuildReport:
    """Build or update the index of `catalog` in `index_dir` and return what was done.

    `catalog_state` (catalog.catalog_state of the folder, taken before it was loaded) and `metadata_file`
    (catalog.metadata_stat, taken then too) are recorded in the manifest, so that the next start can
    recognise the unchanged folder without loading it, and a folder where only images were replaced
    without parsing its metadata (update_index).

    Cost follows the change. An unchanged catalog (same items, hashes and captions as the index records;
    `load_catalog(known=known_files(index_dir))` hashes only files whose size or mtime changed) writes
    nothing and loads the index once. Otherwise images whose sha256 is in the previous index (built by the
    same encoder, files intact) are not embedded again, and a category whose items are unchanged keeps its
    graph file (hard-linked into the new folder, not rebuilt). New images are decoded by `workers`
    threads while the encoder runs, and every `checkpoint_every` images their vectors are saved beside the
    index: a build that was killed resumes from there. Images that cannot be decoded are skipped and
    reported. The new index is written to a temporary folder and renamed into place.
    """
    index_dir = Path(index_dir)
    _check_target(index_dir)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size {batch_size} is out of range: use 1 or more")
    previous = _previous(index_dir, encoder.identity)
    counts_all = {c: sum(item.category == c for item in catalog) for c in CATEGORIES}
    kinds_all = {c: choose_kind(n, hnsw_threshold, compressed_threshold) for c, n in counts_all.items()}

    # Nothing changed: same items (and stats), same encoder, same index kinds -> no file is written.
    if previous.index is not None and previous.manifest is not None:
        old = previous.manifest
        same_kinds = all(
            old["categories"].get(c, {}).get("kind", "flat") == kinds_all[c] for c in CATEGORIES if counts_all[c]
        )
        if same_kinds and old["items"] == _item_rows(catalog):
            if catalog_state is not None and old.get("catalog_state") != catalog_state:
                _record_state(index_dir, old, catalog_state, metadata_file)  # e.g. a metadata file touched
            return BuildReport(
                index_dir=index_dir, counts=counts_all, kinds=kinds_all, embedded=(), reused=len(catalog),
                added=(), changed=(), removed=(), problems=tuple(catalog.problems), previous="unchanged",
                encoder=dict(encoder.info), index=previous.index,
            )  # fmt: skip

    reuse_rows = previous.vectors_by_sha()
    checkpoint = Checkpoint(index_dir, encoder.identity)
    resumed_vectors = checkpoint.load()
    to_embed: dict[str, Path] = {}
    for item in catalog:
        if item.sha256 not in reuse_rows and item.sha256 not in resumed_vectors and item.sha256 not in to_embed:
            to_embed[item.sha256] = item.path
    resumed = sum(sha in resumed_vectors for sha in {i.sha256 for i in catalog} if sha not in reuse_rows)
    problems = list(catalog.problems)
    new_vectors, failed = embed_images(
        list(to_embed.items()), encoder, batch_size=batch_size or encoder.batch_size, workers=workers,
        progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every, problems=problems,
    )  # fmt: skip
    new_vectors.update(resumed_vectors)

    kept = [item for item in catalog if item.sha256 not in failed]
    if not kept:
        raise InputError(f"no image of the catalog at {catalog.root} could be embedded: nothing to index")
    old_vectors = previous.index.vectors if previous.index is not None else None
    vectors = np.empty((len(kept), encoder.dim), dtype=np.float32)
    for row, item in enumerate(kept):
        if item.sha256 in new_vectors:
            vectors[row] = new_vectors[item.sha256]
        else:
            vectors[row] = old_vectors[reuse_rows[item.sha256]]
    embedded_shas = set(to_embed) - failed
    old_by_id = {item.id: item for item in previous.items}
    new_ids = {item.id for item in kept}
    counts = {c: sum(item.category == c for item in kept) for c in CATEGORIES}
    kinds = {c: choose_kind(n, hnsw_threshold, compressed_threshold) for c, n in counts.items()}

    manifest = {
        "format": FORMAT,
        "catalog_dir": str(Path(catalog.root).resolve()),  # where the items' files are, for search
        "encoder": encoder.info,
        "dim": int(vectors.shape[1]),
        "count": len(kept),
        "categories": {},
        "items": _item_rows(kept),
        "files": {},
        "file_stats": {},
        "catalog_state": catalog_state,
        "metadata_stat": metadata_file,
        "problems": [[p.kind, p.where, p.message] for p in problems],  # for a start that skips the catalog
    }
    tmp = index_dir.parent / f".{index_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    written: list[str] = []
    try:
        old_manifest = previous.manifest or {}
        old_shas = [i.sha256 for i in previous.index.items] if previous.index is not None else None
        if old_shas == [i.sha256 for i in kept]:
            _link_or_copy(index_dir / VECTORS_NAME, tmp / VECTORS_NAME)  # same vectors in the same order
        else:
            np.save(tmp / VECTORS_NAME, vectors)
            written.append(VECTORS_NAME)
        start = 0
        for category in CATEGORIES:
            entry = _category_entry(kinds[category], counts[category], category)
            if "file" in entry:
                entry, files = _write_category_index(
                    entry, vectors[start : start + counts[category]], kept[start : start + counts[category]],
                    old_manifest.get("categories", {}).get(category),
                    previous.index.items_in(category) if previous.index is not None else None, index_dir, tmp,
                )  # fmt: skip
                written += files
            manifest["categories"][category] = entry
            start += counts[category]
        if (index_dir / LEXICAL_FOLDER).is_dir():  # the captions' BM25: still valid if they did not change
            _link_tree(index_dir / LEXICAL_FOLDER, tmp / LEXICAL_FOLDER)
        for path in sorted(p for p in tmp.iterdir() if p.is_file()):
            name = path.name
            old_stat = old_manifest.get("file_stats", {}).get(name)
            if name not in written and old_stat == file_stat(path):
                manifest["files"][name] = old_manifest["files"][name]  # linked: known, not hashed again
            else:
                manifest["files"][name] = sha256_file(path)
            manifest["file_stats"][name] = file_stat(path)
        (tmp / MANIFEST_NAME).write_text(_manifest_text(manifest), encoding="utf-8")
        _swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint.clear()

    return BuildReport(
        index_dir=index_dir,
        counts=counts,
        kinds=kinds,
        embedded=tuple(i.id for i in kept if i.sha256 in embedded_shas),
        reused=sum(i.sha256 not in embedded_shas for i in kept),
        added=tuple(i.id for i in kept if i.id not in old_by_id),
        changed=tuple(i.id for i in kept if i.id in old_by_id and old_by_id[i.id].sha256 != i.sha256),
        removed=tuple(sorted(set(old_by_id) - new_ids)),
        problems=tuple(problems),
        previous=previous.state,
        encoder=dict(encoder.info),
        resumed=resumed,
        written=tuple(written),
        index=load_index(index_dir, encoder_identity=encoder.identity),
    )


def _write_category_index(
    entry: dict,
    block: np.ndarray,
    members: list,
    old_entry: dict | None,
    old_members: list[IndexedItem] | None,
    index_dir: Path,
    tmp: Path,
) -> tuple[dict, list[str]]:
    """Put the faiss file(s) of one category into the new index folder `tmp`: linked from `index_dir` when
    its items are unchanged, an HNSW graph updated in place when few changed, else built from `block`
    (its (n, D) vectors, rows in `members` order). Returns its manifest entry and the file names written."""
    settings = {k: v for k, v in entry.items() if k != "count"}
    if old_entry is not None and old_members is not None and all(old_entry.get(k) == v for k, v in settings.items()):
        if [(i.id, i.sha256) for i in old_members] == [(i.id, i.sha256) for i in members]:
            for name in (old_entry["file"], old_entry.get("nodes")):
                if name:
                    _link_or_copy(index_dir / name, tmp / name)  # the same graph: not rebuilt
            return dict(old_entry), []
        if entry["kind"] == "hnsw":
            updated = _update_graph(entry, block, members, old_entry, old_members, index_dir, tmp)
            if updated is not None:
                return updated
    graph = build_faiss_index(block, entry["kind"])
    faiss.write_index(graph, str(tmp / entry["file"]))
    return entry, [entry["file"]]


def _update_graph(
    entry: dict,
    block: np.ndarray,
    members: list,
    old_entry: dict,
    old_members: list[IndexedItem],
    index_dir: Path,
    tmp: Path,
) -> tuple[dict, list[str]] | None:
    """The previous HNSW graph of a category, updated to `members` without a rebuild: a live node whose
    image (sha256) is still a member keeps its vector and now names that member's row; members without
    such a node are added; the other nodes are marked dead. None when dead nodes would pass
    DEAD_NODE_LIMIT of the graph (then the caller rebuilds it)."""
    old_nodes = (
        np.load(index_dir / old_entry["nodes"], allow_pickle=False)
        if "nodes" in old_entry
        else np.arange(len(old_members), dtype=np.int64)
    )
    spare: dict[str, list[int]] = {}  # sha256 -> live nodes holding that image's vector
    for node, row in enumerate(old_nodes.tolist()):
        if row >= 0:
            spare.setdefault(old_members[row].sha256, []).append(node)
    nodes = np.full(len(old_nodes), -1, dtype=np.int64)
    added: list[int] = []
    for row, item in enumerate(members):
        holders = spare.get(item.sha256)
        if holders:
            nodes[holders.pop()] = row
        else:
            added.append(row)
    nodes = np.concatenate([nodes, np.asarray(added, dtype=np.int64)])  # (G,), added nodes at the end
    dead = int((nodes < 0).sum())
    if dead > DEAD_NODE_LIMIT * len(nodes):
        return None
    graph = faiss.read_index(str(index_dir / old_entry["file"]))  # fully read: a mapped graph cannot grow
    if added:
        graph.add(np.ascontiguousarray(block[added]))
    faiss.write_index(graph, str(tmp / entry["file"]))
    if np.array_equal(nodes, np.arange(len(members))):  # only appended: node = row, no map needed
        return entry, [entry["file"]]
    name = entry["file"].removesuffix(".faiss") + ".nodes.npy"
    np.save(tmp / name, nodes)
    return {**entry, "nodes": name, "dead": dead}, [entry["file"], name]


def _manifest_text(manifest: dict) -> str:
    """The manifest as JSON on one line: with `indent`, Python's JSON encoder leaves its C implementation
    and takes 3x longer (1.4 s against 0.5 s for 100k items). `python -m json.tool` shows it indented."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n"


def _record_state(index_dir: Path, manifest: dict, catalog_state: str, metadata_file: list | None) -> None:
    """Rewrite only the manifest, with the catalog's new state (its items are unchanged)."""
    updated = {**manifest, "catalog_state": catalog_state, "metadata_stat": metadata_file}
    partial = index_dir / f".{MANIFEST_NAME}.partial"
    partial.write_text(_manifest_text(updated), encoding="utf-8")
    os.replace(partial, index_dir / MANIFEST_NAME)


def unchanged_index(
    index_dir: Path | str,
    catalog_state: str,
    encoder_identity: str,
    *,
    hnsw_threshold: int = HNSW_THRESHOLD,
    compressed_threshold: int = IVFPQ_THRESHOLD,
) -> BuildReport | None:
    """The index in `index_dir`, loaded, when it was built by this encoder from a catalog folder in exactly
    `catalog_state` (same files, sizes and mtimes) with the index kinds these thresholds choose; else None.
    A restart's check that reads no catalog file: no metadata parse, no image opened, no hash."""
    index_dir = Path(index_dir)
    try:
        manifest = read_manifest(index_dir)
    except CatalogIndexError:
        return None
    if manifest.get("catalog_state") != catalog_state or manifest["encoder"].get("identity") != encoder_identity:
        return None
    counts = {c: int(manifest["categories"].get(c, {}).get("count", 0)) for c in CATEGORIES}
    kinds = {c: choose_kind(n, hnsw_threshold, compressed_threshold) for c, n in counts.items()}
    if any(manifest["categories"].get(c, {}).get("kind", "flat") != kinds[c] for c in CATEGORIES if counts[c]):
        return None
    try:
        index = load_index(index_dir, encoder_identity=encoder_identity)
    except CatalogIndexError:
        return None  # damaged: the full path says what is wrong and rebuilds
    problems = tuple(CatalogProblem(*p) for p in manifest.get("problems", []))
    return BuildReport(
        index_dir=index_dir, counts=counts, kinds=kinds, embedded=(), reused=index.manifest["count"], added=(),
        changed=(), removed=(), problems=problems, previous="unchanged", encoder=dict(manifest["encoder"]),
        index=index,
    )  # fmt: skip


def update_index(catalog_dir: Path | str, encoder: RetrievalEncoder, index_dir: Path | str, **build) -> BuildReport:
    """Bring the index of the catalog folder up to date, at a cost that follows the change: an unchanged
    folder is recognised from its files' sizes and mtimes alone (unchanged_index); otherwise the catalog is
    loaded hashing only files whose size or mtime changed (or, when only images were replaced, taken from
    the manifest without parsing the metadata: _only_replaced_images), and build_index embeds only new
    images. `build` are build_index's keyword arguments. What `index build` and the studio's start-up run."""
    # Both before loading: a file changed meanwhile is seen at the next start.
    state, metadata_file = catalog_state(catalog_dir), metadata_stat(catalog_dir)
    thresholds = {k: build[k] for k in ("hnsw_threshold", "compressed_threshold") if k in build}
    report = unchanged_index(index_dir, state, encoder.identity, **thresholds)
    if report is not None:
        return report
    catalog = _only_replaced_images(catalog_dir, index_dir, metadata_file) or load_catalog(
        catalog_dir, known=known_files(index_dir)
    )
    return build_index(catalog, encoder, index_dir, catalog_state=state, metadata_file=metadata_file, **build)


def _only_replaced_images(catalog_dir: Path | str, index_dir: Path | str, metadata_file: list | None) -> Catalog | None:
    """The catalog, from the index's record of it, when its metadata file is the one recorded, the index
    recorded no problem, and only the contents of some images changed (catalog.with_replaced_images);
    else None."""
    try:
        manifest = read_manifest(index_dir)
    except CatalogIndexError:
        return None
    if (
        manifest.get("catalog_state") is None
        or "metadata_stat" not in manifest
        or manifest["metadata_stat"] != metadata_file
        or manifest.get("problems")
        or manifest.get("catalog_dir") != str(Path(catalog_dir).expanduser().resolve())
    ):
        return None
    return with_replaced_images(catalog_dir, manifest["items"])


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no bytes written, same inode and mtime), or a copy where links are not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _link_tree(source: Path, target: Path) -> None:
    """A copy of the folder `source` at `target` made of hard links (copies where links are refused)."""

    def link(src: str, dst: str) -> None:
        _link_or_copy(Path(src), Path(dst))

    shutil.copytree(source, target, copy_function=link)


def _swap_into_place(tmp: Path, index_dir: Path) -> None:
    """Rename the finished `tmp` folder to `index_dir`, moving any previous index aside first (a folder
    cannot be replaced in one atomic rename; between the two renames there is no index, never half of one)."""
    if not index_dir.exists():
        os.rename(tmp, index_dir)
        return
    old = index_dir.parent / f".{index_dir.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(index_dir, old)
    try:
        os.rename(tmp, index_dir)
    except OSError:
        os.rename(old, index_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
