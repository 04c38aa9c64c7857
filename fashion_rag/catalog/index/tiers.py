"""The faiss tiers of the catalog index, chosen by a category's size (choose_kind): exact IndexFlatIP,
approximate HNSW (an UpdatedGraph after an in-place update), and compressed IVF-PQ whose candidates are
re-scored exactly from vectors.npy (RerankedIndex over FileRows). Plain functions and classes over numpy
arrays; nothing here reads a manifest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

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
