"""The loaded index: `load_index` checks an index folder against its manifest and gives a CatalogIndex,
which searches one category at a time.

Loading checks each file against the manifest (by size and mtime, by sha256 when those differ) and the
encoder identity against the encoder in use; a mismatch raises IndexRefused (a CatalogIndexError) saying
what to do. What can be memory-mapped is: vectors.npy, HNSW storage, IVF-PQ lists.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from fashion_rag.catalog.catalog import KnownFiles
from fashion_rag.catalog.index.manifest import VECTORS_NAME, CategoryEntry, IndexRefused, Manifest, read_manifest
from fashion_rag.catalog.index.tiers import (
    HNSW_EF_SEARCH,
    IVF_PROBES,
    RERANK,
    FileRows,
    RerankedIndex,
    UpdatedGraph,
    build_faiss_index,
    few_threads,
    search_index,
)
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import check_category
from fashion_rag.files import fingerprint, sha256_file


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
        self, directory: Path, manifest: Manifest, items: list[IndexedItem], vectors: np.ndarray, indexes: dict
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.items = tuple(items)
        self.vectors = vectors  # (N, D) float32, a read-only memory map of vectors.npy
        self._indexes: dict = indexes
        self._by_category = {c: [item for item in self.items if item.category == c] for c in CATEGORIES}

    @property
    def encoder_identity(self) -> str:
        return self.manifest.encoder_identity

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def kinds(self) -> dict[str, str]:
        return self.manifest.kinds()

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


def load_index(
    directory: Path | str, *, encoder_identity: str | None = None, manifest: Manifest | None = None
) -> CatalogIndex:
    """Load and check the index in `directory`, memory-mapping what can be mapped: a restart reads the
    graph links and the manifest, not every vector. `manifest` is its manifest when the caller has read it
    already (read here otherwise).

    IndexRefused when it is missing, when it was built by an encoder other than `encoder_identity` (when
    given), or when any file differs from what the manifest records (modified, truncated, half-written or
    missing).
    """
    directory = Path(directory)
    manifest = read_manifest(directory) if manifest is None else manifest
    check_encoder(directory, manifest, encoder_identity)
    check_files(directory, manifest)
    items = items_of(manifest)
    try:
        vectors = np.load(directory / VECTORS_NAME, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise IndexRefused(directory, f"is unreadable ({error})") from error
    dim, count = manifest.dim, manifest.count
    if vectors.dtype != np.float32 or vectors.shape != (count, dim) or len(items) != count:
        found = f"{vectors.shape} {vectors.dtype} vectors for {len(items)} items"
        raise IndexRefused(directory, f"holds {found}, expected ({count}, {dim})")
    indexes: dict = {}
    start = 0
    for category, entry in manifest.categories.items():
        if any(item.category != category for item in items[start : start + entry.count]):
            raise IndexRefused(directory, f"lists its {category} items out of order")
        indexes[category] = _category_index(directory, entry, vectors, start, dim)
        start += entry.count
    if start != count:
        raise IndexRefused(directory, f"lists {start} items in its categories but {count} in all")
    return CatalogIndex(directory, manifest, items, vectors, indexes)


def check_encoder(directory: Path, manifest: Manifest, encoder_identity: str | None) -> None:
    """IndexRefused when the index was built by an encoder other than `encoder_identity` (when given)."""
    built_with = manifest.encoder_identity
    if encoder_identity is None or built_with == encoder_identity:
        return
    raise IndexRefused(
        directory,
        f"was built with another encoder ({built_with})",
        f"index at {directory} was built with the retrieval encoder {built_with!r}, but the encoder in use "
        f"is {encoder_identity!r}: their embeddings are not comparable. Rebuild the index with this encoder "
        f"(`python -m fashion_rag index build CATALOG_DIR --out {directory}` with the same --models), or "
        f"search with the models that built it",
    )


def check_files(directory: Path, manifest: Manifest) -> None:
    """IndexRefused unless every file the manifest lists is there and unchanged. A file with the size and
    modification time recorded at build time is taken as unchanged; any other is hashed (sha256) and
    compared, so a modified, truncated or half-written file is always found."""
    for name, record in sorted(manifest.files.items()):
        path = directory / name
        if not path.is_file():
            raise IndexRefused(directory, f"is incomplete: {name} is missing")
        if (record.size, record.mtime_ns) == fingerprint(path):
            continue
        if sha256_file(path) != record.sha256:
            raise IndexRefused(directory, f"does not match its manifest: {name} was modified or half-written")


def _category_index(directory: Path, entry: CategoryEntry, vectors: np.ndarray, start: int, dim: int):
    """The faiss index of one category, whose rows are vectors[start : start + entry.count]: an exact one
    built now (milliseconds), or its HNSW / IVF-PQ file read memory-mapped and read-only."""
    if entry.kind == "flat":
        return build_faiss_index(vectors[start : start + entry.count], "flat")
    # HNSW's flat storage is mapped with IO_FLAG_MMAP_IFC, IVF's inverted lists with IO_FLAG_MMAP.
    flags = faiss.IO_FLAG_READ_ONLY | (faiss.IO_FLAG_MMAP_IFC if entry.kind == "hnsw" else faiss.IO_FLAG_MMAP)
    try:
        index = faiss.read_index(str(directory / str(entry.file)), flags)
    except RuntimeError as error:
        raise IndexRefused(directory, f"has an unreadable {entry.file} ({error})") from error
    nodes = _graph_nodes(directory, entry, index) if entry.nodes else None
    if nodes is None and (index.ntotal != entry.count or index.d != dim):
        raise IndexRefused(directory, f"has {index.ntotal} vectors in {entry.file}, expected {entry.count}")
    if entry.kind == "hnsw":
        index.hnsw.efSearch = entry.ef_search or HNSW_EF_SEARCH
        return UpdatedGraph(index, nodes) if nodes is not None else index
    index.nprobe = entry.nprobe or IVF_PROBES
    rows = FileRows.of_npy(directory / VECTORS_NAME, start, entry.count)  # read per query, not mapped
    return RerankedIndex(index, rows, entry.rerank or RERANK)


def _graph_nodes(directory: Path, entry: CategoryEntry, graph: faiss.Index) -> np.ndarray:
    """The node -> row map of an updated graph, checked: one node per graph vector, and its live nodes
    name each of the category's rows once."""
    try:
        nodes = np.load(directory / str(entry.nodes), allow_pickle=False)
    except (ValueError, OSError) as error:
        raise IndexRefused(directory, f"has an unreadable {entry.nodes} ({error})") from error
    live = np.sort(nodes[nodes >= 0]) if nodes.ndim == 1 else None
    if len(nodes) != graph.ntotal or live is None or not np.array_equal(live, np.arange(entry.count)):
        problem = f"has a {entry.nodes} that does not map {entry.file} onto its {entry.count} items"
        raise IndexRefused(directory, problem)
    return nodes


def items_of(manifest: Manifest) -> list[IndexedItem]:
    """The manifest's items (validated when it was read)."""
    return [IndexedItem(r["id"], r["category"], r["file"], r["sha256"], r["caption"]) for r in manifest.items]


def load_items(directory: Path | str) -> list[IndexedItem]:
    """The items an index's manifest lists, without checking its files (for reports and lexical search)."""
    return items_of(read_manifest(directory))


def missing_files(index: CatalogIndex, catalog_root: Path | str) -> list[IndexedItem]:
    """Indexed items whose image no longer exists under `catalog_root` (deleted after indexing)."""
    root = Path(catalog_root)
    present: set[str] = set()
    for category in CATEGORIES:  # one directory read per category, not a stat per item
        with contextlib.suppress(OSError), os.scandir(root / category) as entries:
            present.update(f"{category}/{e.name}" for e in entries if e.is_file())
    return [item for item in index.items if item.file not in present]


def known_files(manifest: Manifest | None) -> KnownFiles:
    """What the manifest recorded of each catalog file: file -> (size, mtime_ns, sha256), for
    `load_catalog(known=...)` to skip hashing unchanged images. {} without a manifest."""
    if manifest is None:
        return {}
    return {
        r["file"]: (r["size"], r["mtime_ns"], r["sha256"]) for r in manifest.items if "size" in r and "mtime_ns" in r
    }
