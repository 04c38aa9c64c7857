"""Building an index from a loaded catalog (update.py decides when that is needed), in numbered steps.

A category whose items did not change keeps its faiss file (hard-linked into the new folder); an HNSW
graph whose category changed a little is updated in place (graphs.py); only images whose content
(sha256) is not in the previous index are embedded. The new index is written to a staged folder and
swapped into place (staging.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_rag.catalog.catalog import (
    Catalog,
    CatalogItem,
    CatalogProblem,
)
from fashion_rag.catalog.embedding import CHECKPOINT_EVERY, Checkpoint, ProgressCallback, embed_images
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.index.graphs import PreviousCategory, category_entry, write_category_file
from fashion_rag.catalog.index.loaded import CatalogIndex, items_of, load_index
from fashion_rag.catalog.index.manifest import (
    LEXICAL_FOLDER,
    MANIFEST_NAME,
    VECTORS_NAME,
    FileRecord,
    IndexRefused,
    ItemRow,
    Manifest,
    portable_problems,
    read_manifest,
    relative_catalog_dir,
    write_manifest,
)
from fashion_rag.catalog.index.report import BuildReport, Previous
from fashion_rag.catalog.index.staging import link_or_copy, link_tree, staged_folder
from fashion_rag.catalog.index.tiers import HNSW_THRESHOLD, IVFPQ_THRESHOLD, choose_kind
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import InputError
from fashion_rag.files import fingerprint, sha256_file

logger = logging.getLogger(__name__)


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
    manifest: Manifest | None = None,
) -> BuildReport:
    """Build or update the index of `catalog` in `index_dir` and return what was done.

    `catalog_state` and `metadata_file` (catalog.catalog_state and catalog.metadata_stat of the folder,
    taken before it was loaded) are recorded in the manifest, for update_index at the next start.
    `manifest` is the index's manifest as update_index read it (read here when not given).

    An unchanged catalog (same items, hashes and captions as the index records) writes nothing and loads
    the index once. Otherwise images whose sha256 is in the previous index (built by the same encoder,
    files intact) are not embedded again. New images are decoded by `workers` threads while the encoder
    runs, and every `checkpoint_every` images their vectors are saved beside the index: a build that was
    killed resumes from there. Images that cannot be decoded are skipped and reported.
    """
    # 1. The target folder and the settings are usable.
    index_dir = Path(index_dir)
    _check_target(index_dir)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size {batch_size} is out of range: use 1 or more")
    # 2. What of the previous index can be reused.
    previous = _previous(index_dir, encoder.identity, manifest)
    # 3. Nothing changed: same items (and stats), same encoder, same index kinds -> no file is written.
    unchanged = _when_unchanged(catalog, encoder, previous, hnsw_threshold, compressed_threshold)
    if unchanged is not None:
        if catalog_state is not None and previous.manifest.catalog_state != catalog_state:  # e.g. metadata touched
            _record_state(index_dir, previous.manifest, catalog_state, metadata_file)
        return unchanged
    # 4. The vectors: the previous index's for known images, the checkpoint's, and new ones embedded.
    checkpoint = Checkpoint(index_dir, encoder.identity)
    problems = list(catalog.problems)
    embedding = _Embedding(batch_size or encoder.batch_size, workers, progress, checkpoint_every)
    vectors = _vectors(catalog, encoder, previous, checkpoint, problems, embedding)
    kept = vectors.kept
    counts = {c: sum(item.category == c for item in kept) for c in CATEGORIES}
    kinds = {c: choose_kind(n, hnsw_threshold, compressed_threshold) for c, n in counts.items()}
    # 5. The new folder, staged and swapped into place.
    new_manifest = Manifest(
        catalog_dir=relative_catalog_dir(catalog.root, index_dir),
        encoder=encoder.info,
        dim=encoder.dim,
        count=len(kept),
        categories={},
        items=item_rows(kept),
        files={},
        catalog_state=catalog_state,
        metadata_stat=tuple(metadata_file) if metadata_file else None,
        problems=portable_problems(problems, catalog.root),
    )
    written = _write_index(index_dir, new_manifest, vectors.array, kept, kinds, previous)
    checkpoint.clear()
    # 6. What was done, with the new index loaded from the manifest just written.
    index = load_index(index_dir, encoder_identity=encoder.identity, manifest=new_manifest)
    return _report(index, encoder, previous, vectors, problems, kinds, written)


def _report(
    index: CatalogIndex,
    encoder: RetrievalEncoder,
    previous: _PreviousIndex,
    vectors: _Vectors,
    problems: list[CatalogProblem],
    kinds: dict[str, str],
    written: list[str],
) -> BuildReport:
    """The report of a build that wrote `index`: which items were embedded, added, changed or removed."""
    kept = vectors.kept
    old_by_id = {item.id: item for item in previous.items}
    return BuildReport(
        index_dir=index.directory,
        counts=index.manifest.counts(),
        kinds=kinds,
        embedded=tuple(i.id for i in kept if i.sha256 in vectors.embedded),
        reused=sum(i.sha256 not in vectors.embedded for i in kept),
        added=tuple(i.id for i in kept if i.id not in old_by_id),
        changed=tuple(i.id for i in kept if i.id in old_by_id and old_by_id[i.id].sha256 != i.sha256),
        removed=tuple(sorted(set(old_by_id) - {item.id for item in kept})),
        problems=tuple(problems),
        previous=previous.state,
        rebuilt_because=previous.why_not,
        encoder=dict(encoder.info),
        resumed=vectors.resumed,
        written=tuple(written),
        index=index,
    )


def _check_target(index_dir: Path) -> None:
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"index folder {str(index_dir)!r} is a file: choose a folder with --out")
    if index_dir.is_dir() and not (index_dir / MANIFEST_NAME).is_file() and any(index_dir.iterdir()):
        raise InputError(
            f"{str(index_dir)!r} is not empty and holds no index ({MANIFEST_NAME}): refusing to replace it; "
            f"choose another folder with --out"
        )


@dataclass
class _PreviousIndex:
    """The previous index in the target folder, as far as it can be reused."""

    state: Previous  # NONE, UPDATED (reusable) or REBUILT (why_not says why not)
    items: list
    manifest: Manifest | None = None
    index: CatalogIndex | None = None
    why_not: str = ""

    def vectors_by_sha(self) -> dict[str, int]:
        """sha256 -> row of the previous vectors (empty when they cannot be reused)."""
        if self.index is None:
            return {}
        return {item.sha256: row for row, item in enumerate(self.index.items)}

    def category(self, category: str) -> PreviousCategory | None:
        if self.index is None or self.manifest is None:
            return None
        return PreviousCategory(self.manifest.categories[category], self.index.items_in(category))


def _previous(index_dir: Path, identity: str, manifest: Manifest | None) -> _PreviousIndex:
    if not (index_dir / MANIFEST_NAME).is_file():
        return _PreviousIndex(Previous.NONE, [])
    if manifest is None:  # update_index could not read it: read again, for the reason
        try:
            manifest = read_manifest(index_dir)
        except IndexRefused as error:
            return _PreviousIndex(Previous.REBUILT, [], why_not=error.reason)
    items = items_of(manifest)
    if manifest.encoder_identity != identity:
        why_not = f"it was built with another encoder ({manifest.encoder_identity})"
        return _PreviousIndex(Previous.REBUILT, items, why_not=why_not)
    try:
        previous = load_index(index_dir, encoder_identity=identity, manifest=manifest)
    except IndexRefused as error:
        logger.warning("not reusing the previous index: %s", error)
        return _PreviousIndex(Previous.REBUILT, items, why_not=error.reason)
    return _PreviousIndex(Previous.UPDATED, items, manifest, previous)


def item_rows(items: Sequence[CatalogItem]) -> list[ItemRow]:
    """The manifest's record of catalog items, in row order."""
    return [
        ItemRow(
            id=i.id,
            category=i.category,
            file=i.file,
            sha256=i.sha256,
            caption=i.caption,
            size=i.size,
            mtime_ns=i.mtime_ns,
        )
        for i in items
    ]


def _when_unchanged(
    catalog: Catalog, encoder: RetrievalEncoder, previous: _PreviousIndex, hnsw_threshold: int, compressed: int
) -> BuildReport | None:
    """The report of a build with nothing to do (same items and stats, same encoder, same index kinds as
    the previous index), or None."""
    if previous.index is None or previous.manifest is None:
        return None
    counts = {c: sum(item.category == c for item in catalog) for c in CATEGORIES}
    kinds = {c: choose_kind(n, hnsw_threshold, compressed) for c, n in counts.items()}
    old = previous.manifest
    if any(old.categories[c].kind != kinds[c] for c in CATEGORIES if counts[c]) or old.items != item_rows(catalog):
        return None
    return BuildReport(
        index_dir=previous.index.directory,
        counts=counts,
        kinds=kinds,
        embedded=(),
        reused=len(catalog),
        added=(),
        changed=(),
        removed=(),
        problems=tuple(catalog.problems),
        previous=Previous.UNCHANGED,
        encoder=dict(encoder.info),
        index=previous.index,
    )


def _record_state(index_dir: Path, manifest: Manifest, catalog_state: str, metadata_file: list | None) -> None:
    """Rewrite only the manifest, with the catalog's new state (its items are unchanged)."""
    stat = tuple(metadata_file) if metadata_file else None
    write_manifest(index_dir, manifest.model_copy(update={"catalog_state": catalog_state, "metadata_stat": stat}))


@dataclass(frozen=True)
class _Embedding:
    """How new images are embedded (build_index's arguments of the same names)."""

    batch_size: int
    workers: int | None
    progress: ProgressCallback | None
    checkpoint_every: int


@dataclass(frozen=True)
class _Vectors:
    kept: list[CatalogItem]  # the catalog's items whose image could be embedded, in row order
    array: np.ndarray  # (len(kept), D) float32
    embedded: set[str]  # sha256 of the images embedded in this run
    resumed: int  # vectors taken from the checkpoint of an interrupted build


def _vectors(
    catalog: Catalog,
    encoder: RetrievalEncoder,
    previous: _PreviousIndex,
    checkpoint: Checkpoint,
    problems: list[CatalogProblem],
    embedding: _Embedding,
) -> _Vectors:
    """Each item's vector: from the previous index when its image (sha256) is there, from the checkpoint
    of an interrupted build, else embedded now. Images that cannot be decoded are added to `problems`."""
    reuse_rows = previous.vectors_by_sha()
    resumed_vectors = checkpoint.load()
    to_embed: dict[str, Path] = {}
    for item in catalog:
        if item.sha256 not in reuse_rows and item.sha256 not in resumed_vectors and item.sha256 not in to_embed:
            to_embed[item.sha256] = item.path
    resumed = sum(sha in resumed_vectors for sha in {i.sha256 for i in catalog} if sha not in reuse_rows)
    new_vectors, failed = embed_images(
        list(to_embed.items()),
        encoder,
        batch_size=embedding.batch_size,
        workers=embedding.workers,
        progress=embedding.progress,
        checkpoint=checkpoint,
        checkpoint_every=embedding.checkpoint_every,
        problems=problems,
    )
    new_vectors.update(resumed_vectors)
    kept = [item for item in catalog if item.sha256 not in failed]
    if not kept:
        raise InputError(f"no image of the catalog at {catalog.root} could be embedded: nothing to index")
    old_vectors = previous.index.vectors if previous.index is not None else None
    array = np.empty((len(kept), encoder.dim), dtype=np.float32)
    for row, item in enumerate(kept):
        array[row] = new_vectors[item.sha256] if item.sha256 in new_vectors else old_vectors[reuse_rows[item.sha256]]
    return _Vectors(kept, array, set(to_embed) - failed, resumed)


def _write_index(
    index_dir: Path,
    manifest: Manifest,
    vectors: np.ndarray,
    kept: list[CatalogItem],
    kinds: dict[str, str],
    previous: _PreviousIndex,
) -> list[str]:
    """Write the new index into a staged folder and swap it into place: vectors.npy (linked when the same
    vectors are in the same order), each category's faiss file, the captions' BM25 (linked: still valid if
    they did not change) and `manifest`, completed with its categories and files. Returns the names of the
    files written (the others are linked)."""
    written: list[str] = []
    with staged_folder(index_dir) as tmp:
        old_shas = [i.sha256 for i in previous.index.items] if previous.index is not None else None
        if old_shas == [i.sha256 for i in kept]:
            link_or_copy(index_dir / VECTORS_NAME, tmp / VECTORS_NAME)
        else:
            np.save(tmp / VECTORS_NAME, vectors)
            written.append(VECTORS_NAME)
        start = 0
        for category in CATEGORIES:
            count = sum(item.category == category for item in kept)
            entry = category_entry(kinds[category], count, category)
            if entry.file is not None:
                block, members = vectors[start : start + count], kept[start : start + count]
                entry, files = write_category_file(entry, block, members, previous.category(category), index_dir, tmp)
                written += files
            manifest.categories[category] = entry
            start += count
        if (index_dir / LEXICAL_FOLDER).is_dir():
            link_tree(index_dir / LEXICAL_FOLDER, tmp / LEXICAL_FOLDER)
        manifest.files = _file_records(tmp, written, previous.manifest)
        write_manifest(tmp, manifest)
    return written


def _file_records(tmp: Path, written: list[str], old: Manifest | None) -> dict[str, FileRecord]:
    """The record of each file of the staged folder `tmp`: a linked file that the previous manifest knows
    by its size and mtime keeps its sha256 (not hashed again); a written one is hashed."""
    records: dict[str, FileRecord] = {}
    for path in sorted(p for p in tmp.iterdir() if p.is_file()):
        size, mtime_ns = fingerprint(path)
        known = old.files.get(path.name) if old is not None else None
        if path.name not in written and known is not None and (known.size, known.mtime_ns) == (size, mtime_ns):
            sha256 = known.sha256
        else:
            sha256 = sha256_file(path)
        records[path.name] = FileRecord(sha256=sha256, size=size, mtime_ns=mtime_ns)
    return records
