"""The dense catalog index: faiss inner product over normalised image embeddings, one faiss index per
category (a search in one category cannot return another's items).

An index folder holds::

    manifest.json           format, catalog folder (relative to the index folder), encoder identity,
                            dimension, item count, per-item id/category/file/sha256/caption/size/mtime,
                            per-category index kind, and the sha256, size and mtime of every other file
    vectors.npy             (N, D) float32 image embeddings, rows in manifest item order (memory-mapped)
    <category>.hnsw.faiss   the HNSW graph of a category above HNSW_THRESHOLD items
    <category>.hnsw.nodes.npy   (only for a graph updated in place) (G,) int64: the category row of each
                            graph node, -1 for a node whose item changed or left (never returned)
    <category>.ivfpq.faiss  the IVF-PQ codes of a category above IVFPQ_THRESHOLD items (memory-mapped)
    lexical/                the BM25 index of the captions (catalog/lexical.py)

Smaller categories use an exact IndexFlatIP, built from vectors.npy on load in milliseconds.

The modules, in the order a build runs through them:

    update.py    update_index: what `index build` and the studio's start-up run (start here)
    build.py     build_index: the numbered steps of a build from a loaded catalog
    manifest.py  the typed manifest (pydantic): read once per start, format /2 written, /1 upgraded
    tiers.py     the faiss tiers: flat, HNSW (and a graph updated in place), IVF-PQ re-ranked from disk
    graphs.py    one category's faiss file in a new index: linked, updated in place, or built
    staging.py   the next index beside the current one (files.staged_folder), unchanged files hard-linked
    loaded.py    load_index and CatalogIndex: checked against the manifest, searched per category
    report.py    BuildReport: what a build did

The names importers use are re-exported here.
"""

from fashion_rag.catalog.index.build import build_index
from fashion_rag.catalog.index.loaded import (
    CatalogIndex,
    IndexedItem,
    check_files,
    known_files,
    load_index,
    load_items,
    missing_files,
)
from fashion_rag.catalog.index.manifest import (
    FORMAT,
    LEXICAL_FOLDER,
    MANIFEST_NAME,
    VECTORS_NAME,
    IndexRefused,
    Manifest,
    read_manifest,
)
from fashion_rag.catalog.index.report import BuildReport, Previous
from fashion_rag.catalog.index.tiers import (
    DEAD_NODE_LIMIT,
    HNSW_EF_SEARCH,
    HNSW_THRESHOLD,
    IVF_PROBES,
    IVFPQ_THRESHOLD,
    KINDS,
    FileRows,
    RerankedIndex,
    UpdatedGraph,
    build_faiss_index,
    choose_kind,
    normalise_rows,
    search_index,
)
from fashion_rag.catalog.index.update import unchanged_index, update_index

__all__ = [
    "DEAD_NODE_LIMIT", "FORMAT", "HNSW_EF_SEARCH", "HNSW_THRESHOLD", "IVFPQ_THRESHOLD", "IVF_PROBES", "KINDS",
    "LEXICAL_FOLDER", "MANIFEST_NAME", "VECTORS_NAME", "BuildReport", "CatalogIndex", "FileRows", "IndexRefused",
    "IndexedItem", "Manifest", "Previous", "RerankedIndex", "UpdatedGraph",
    "build_faiss_index", "build_index", "check_files", "choose_kind", "known_files", "load_index", "load_items",
    "missing_files", "normalise_rows", "read_manifest", "search_index", "unchanged_index", "update_index",
]  # fmt: skip
