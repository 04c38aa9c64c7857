"""The dense catalog index: build, update and load; faiss inner product over normalised embeddings.

An index folder holds::

    manifest.json          format, catalog folder, encoder identity, dimension, item count, per-item id/category/file/sha256/
                           caption, per-category index kind, and the sha256 of every other file
    vectors.npy            (N, D) float32 image embeddings, rows in manifest item order
    <category>.hnsw.faiss  the HNSW graph of a category above HNSW_THRESHOLD items (smaller ones use an
                           exact IndexFlatIP, rebuilt from vectors.npy on load in milliseconds)

Each category has its own faiss index, so a search in one category cannot return another's items.

Building again after the catalog changed embeds only images whose content (sha256) is not in the previous
index; the rest is copied, and the result equals a full rebuild. The new index is written to a temporary
folder beside the target and renamed into place: a crash leaves the previous index or none, never a
half-written one. Loading checks every file against the manifest's sha256, and the encoder identity
against the encoder in use: a mismatch raises CatalogIndexError saying what to do.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from PIL import Image, UnidentifiedImageError

from fashion_rag.catalog.catalog import Catalog, CatalogProblem, sha256_file
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import CatalogIndexError, InputError, check_category

logger = logging.getLogger(__name__)

FORMAT = "fashion-rag-catalog-index/1"
MANIFEST_NAME = "manifest.json"
VECTORS_NAME = "vectors.npy"

# Exact search (IndexFlatIP) up to this many items per category, HNSW above. Measured with
# benchmarks/bench_search_cpu.py on the shared 2-core box (768-d, one query at a time, one faiss thread):
# exact p50 grows ~0.1 ms per 1,000 items (0.10 ms at 1k, 1.05 ms at 10k, 2.15 ms at 20k, 9.6 ms at
# 50k, 20 ms at 100k), so it crosses the 2 ms budget near 19k. Up to 15k it stays near 1.6 ms with
# recall 1.0, no graph to build (HNSW takes ~10 s at 20k, ~3.5 min at 100k on 2 cores) and free
# incremental updates; above, only HNSW stays near budget. Dress Code has ~1,750 items per category.
HNSW_THRESHOLD = 15_000
HNSW_M = 32  # graph degree; M=48 measured no better at equal recall on 768-d vectors (more work per hop)
HNSW_EF_CONSTRUCTION = 200  # build-time beam
# Query-time beam, chosen for recall: on the benchmark's 768-d low-rank vectors, recall@10 against exact
# search is 0.992 at 100k with 256 (p50 2.8 ms on the 2-core box) and 0.939 with 128 (1.5 ms); at 10k
# both are >= 0.995 (1.0 ms, 0.6 ms). The goal (< 2 ms and >= 0.99 at 100k) is not reached there.
HNSW_EF_SEARCH = 256

ProgressCallback = Callable[[int, int], None]  # (images embedded so far, images to embed)


# --------------------------------------------------------------------------------------------------
# Plain functions over numpy arrays


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 with unit L2 norm per row (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def choose_kind(count: int, threshold: int = HNSW_THRESHOLD) -> str:
    """'flat' (exact) for `count` <= `threshold` items, else 'hnsw'."""
    return "flat" if count <= threshold else "hnsw"


def build_faiss_index(
    vectors: np.ndarray,
    kind: str = "flat",
    *,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
) -> faiss.Index:
    """An inner-product faiss index over (N, D) float32 `vectors`: exact 'flat' or approximate 'hnsw' (IndexHNSWFlat)."""
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
    else:
        raise ValueError(f"unknown index kind {kind!r}: use 'flat' or 'hnsw'")
    index.add(vectors)
    return index


def search_index(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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
    """A loaded index: the manifest's items, their (N, D) vectors and one faiss index per category."""

    def __init__(
        self, directory: Path, manifest: dict, items: list[IndexedItem], vectors: np.ndarray, indexes: dict
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.items = tuple(items)
        self.vectors = vectors  # (N, D) float32
        self._indexes: dict[str, faiss.Index] = indexes
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

    def search(self, queries: np.ndarray, category: str, k: int) -> tuple[np.ndarray, list[list[IndexedItem]]]:
        """Top-`k` items of `category` for each of the (Q, D) normalised `queries`: scores (Q, k') and the
        items, best first, with k' = min(k, items in the category)."""
        members = self.items_in(category)
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
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _manifest_error(directory, f"has a corrupt {MANIFEST_NAME} ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise _manifest_error(directory, f"has format {found!r}, this version reads {FORMAT!r}")
    for key in ("encoder", "dim", "count", "items", "categories", "files"):
        if key not in manifest:
            raise _manifest_error(directory, f"has a manifest without {key!r}")
    return manifest


def load_index(directory: Path | str, *, encoder_identity: str | None = None) -> CatalogIndex:
    """Load and check the index in `directory`.

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
    for name, expected in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            raise _manifest_error(directory, f"is incomplete: {name} is missing")
        if sha256_file(path) != expected:
            raise _manifest_error(directory, f"does not match its manifest: {name} was modified or half-written")
    try:
        vectors = np.load(directory / VECTORS_NAME, allow_pickle=False)
        items = [
            IndexedItem(**{k: str(row[k]) for k in ("id", "category", "file", "sha256", "caption")})
            for row in manifest["items"]
        ]
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise _manifest_error(directory, f"is unreadable ({error})") from error
    dim, count = int(manifest["dim"]), int(manifest["count"])
    if vectors.dtype != np.float32 or vectors.shape != (count, dim) or len(items) != count:
        raise _manifest_error(
            directory,
            f"holds {vectors.shape} {vectors.dtype} vectors for {len(items)} items, expected ({count}, {dim})",
        )
    indexes: dict[str, faiss.Index] = {}
    start = 0
    for category in CATEGORIES:
        entry = manifest["categories"].get(category, {"kind": "flat", "count": 0})
        size = int(entry["count"])
        block = vectors[start : start + size]
        if any(item.category != category for item in items[start : start + size]):
            raise _manifest_error(directory, f"lists its {category} items out of order")
        if entry["kind"] == "hnsw":
            try:
                index = faiss.read_index(str(directory / entry["file"]))
            except RuntimeError as error:
                raise _manifest_error(directory, f"has an unreadable {entry['file']} ({error})") from error
            if index.ntotal != size or index.d != dim:
                raise _manifest_error(directory, f"has {index.ntotal} vectors in {entry['file']}, expected {size}")
            index.hnsw.efSearch = int(entry.get("ef_search", HNSW_EF_SEARCH))
        else:
            index = build_faiss_index(block, "flat")
        indexes[category] = index
        start += size
    if start != count:
        raise _manifest_error(directory, f"lists {start} items in its categories but {count} in all")
    return CatalogIndex(directory, manifest, items, vectors, indexes)


def missing_files(index: CatalogIndex, catalog_root: Path | str) -> list[IndexedItem]:
    """Indexed items whose image no longer exists under `catalog_root` (deleted after indexing)."""
    root = Path(catalog_root)
    return [item for item in index.items if not (root / item.file).is_file()]


# --------------------------------------------------------------------------------------------------
# Building and updating


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did. Ids in `embedded` had their image embedded in this run."""

    index_dir: Path
    counts: dict[str, int]
    kinds: dict[str, str]
    embedded: tuple[str, ...]
    reused: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    problems: tuple[CatalogProblem, ...]
    previous: str  # "none", "updated", or "rebuilt: <why the previous index could not be reused>"
    encoder: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        counts = ", ".join(f"{c} {n} ({self.kinds[c]})" for c, n in self.counts.items())
        lines = [
            f"indexed {self.count} items into {self.index_dir}: {counts}",
            f"embedded {len(self.embedded)}, reused {self.reused}; added {len(self.added)}, changed "
            f"{len(self.changed)}, removed {len(self.removed)}",
        ]
        if self.previous.startswith("rebuilt"):
            lines.append(f"previous index not reused: {self.previous.removeprefix('rebuilt: ')}")
        lines += [f"skipped {problem}" for problem in self.problems]
        return "\n".join(lines)


def _open_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here and not inside the encoder
        return image.copy()


def _check_target(index_dir: Path) -> None:
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"index folder {str(index_dir)!r} is a file: choose a folder with --out")
    if index_dir.is_dir() and not (index_dir / MANIFEST_NAME).is_file() and any(index_dir.iterdir()):
        raise InputError(
            f"{str(index_dir)!r} is not empty and holds no index ({MANIFEST_NAME}): refusing to replace it; "
            f"choose another folder with --out"
        )


def _previous_vectors(index_dir: Path, identity: str) -> tuple[dict[str, np.ndarray], list[IndexedItem], str]:
    """sha256 -> vector of the previous index in `index_dir`, its items, and what becomes of it."""
    if not (index_dir / MANIFEST_NAME).is_file():
        return {}, [], "none"
    try:
        items = load_items(index_dir)
        built_with = read_manifest(index_dir)["encoder"].get("identity")
    except CatalogIndexError as error:
        return {}, [], f"rebuilt: {str(error).split('; rebuild')[0]}"
    if built_with != identity:
        return {}, items, f"rebuilt: it was built with another encoder ({built_with})"
    try:
        previous = load_index(index_dir, encoder_identity=identity)
    except CatalogIndexError as error:
        logger.warning("not reusing the previous index: %s", error)
        return {}, items, f"rebuilt: {str(error).split('; rebuild')[0]}"
    vectors = {item.sha256: previous.vectors[row] for row, item in enumerate(previous.items)}
    return vectors, list(previous.items), "updated"


def load_items(directory: Path | str) -> list[IndexedItem]:
    """The items an index's manifest lists, without checking its files (for reports and lexical search)."""
    manifest = read_manifest(directory)
    try:
        return [
            IndexedItem(**{k: str(row[k]) for k in ("id", "category", "file", "sha256", "caption")})
            for row in manifest["items"]
        ]
    except (KeyError, TypeError) as error:
        raise _manifest_error(Path(directory), f"has malformed items ({error})") from error


def build_index(
    catalog: Catalog,
    encoder: RetrievalEncoder,
    index_dir: Path | str,
    *,
    batch_size: int | None = None,
    hnsw_threshold: int = HNSW_THRESHOLD,
    progress: ProgressCallback | None = None,
) -> BuildReport:
    """Build or update the index of `catalog` in `index_dir` and return what was done.

    Images whose sha256 is in the previous index (built by the same encoder, files intact) are not
    embedded again. Images that cannot be decoded are skipped and reported. The index is written to a
    temporary folder and renamed into place.
    """
    index_dir = Path(index_dir)
    _check_target(index_dir)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size {batch_size} is out of range: use 1 or more")
    reuse, old_items, previous = _previous_vectors(index_dir, encoder.identity)

    # Embed each distinct new image once, batch by batch (only one batch of images is in memory).
    to_embed: dict[str, Path] = {}
    for item in catalog:
        if item.sha256 not in reuse and item.sha256 not in to_embed:
            to_embed[item.sha256] = item.path
    problems = list(catalog.problems)
    failed: set[str] = set()
    new_vectors: dict[str, np.ndarray] = {}
    pending = list(to_embed.items())
    size = batch_size or encoder.batch_size
    if progress is not None:
        progress(0, len(pending))
    for start in range(0, len(pending), size):
        images, shas = [], []
        for sha, path in pending[start : start + size]:
            try:
                images.append(_open_image(path))
                shas.append(sha)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                failed.add(sha)
                where = f"{path.parent.name}/{path.name}"
                problems.append(CatalogProblem("corrupt-image", where, f"cannot be decoded ({error})"))
        if images:
            vectors = encoder.encode_images(images, batch_size=size)
            new_vectors.update(zip(shas, vectors, strict=True))
        if progress is not None:
            progress(min(start + size, len(pending)), len(pending))

    kept = [item for item in catalog if item.sha256 not in failed]
    if not kept:
        raise InputError(f"no image of the catalog at {catalog.root} could be embedded: nothing to index")
    vectors = np.stack([new_vectors[i.sha256] if i.sha256 in new_vectors else reuse[i.sha256] for i in kept])
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    embedded_shas = set(new_vectors)
    old_by_id = {item.id: item for item in old_items}
    new_ids = {item.id for item in kept}
    counts = {c: sum(item.category == c for item in kept) for c in CATEGORIES}
    kinds = {c: choose_kind(n, hnsw_threshold) for c, n in counts.items()}

    manifest = {
        "format": FORMAT,
        "catalog_dir": str(Path(catalog.root).resolve()),  # where the items' files are, for search
        "encoder": encoder.info,
        "dim": int(vectors.shape[1]),
        "count": len(kept),
        "categories": {},
        "items": [
            {"id": i.id, "category": i.category, "file": i.file, "sha256": i.sha256, "caption": i.caption} for i in kept
        ],
        "files": {},
    }
    tmp = index_dir.parent / f".{index_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        np.save(tmp / VECTORS_NAME, vectors)
        start = 0
        for category in CATEGORIES:
            entry: dict = {"kind": kinds[category], "count": counts[category]}
            if kinds[category] == "hnsw":
                entry.update(file=f"{category}.hnsw.faiss", m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
                entry["ef_search"] = HNSW_EF_SEARCH
                index = build_faiss_index(vectors[start : start + counts[category]], "hnsw")
                faiss.write_index(index, str(tmp / entry["file"]))
            manifest["categories"][category] = entry
            start += counts[category]
        for path in sorted(tmp.iterdir()):
            manifest["files"][path.name] = sha256_file(path)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

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
        previous=previous,
        encoder=dict(encoder.info),
    )


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
