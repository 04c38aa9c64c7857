"""Updating an index at a cost that follows the change: what `index build` and the studio's start-up run.

An unchanged catalog folder is recognised from its files' sizes and mtimes alone and its index loaded,
with no catalog file read; a folder where only images were replaced is taken from the manifest's record
without parsing the metadata; otherwise the catalog is loaded hashing only files whose size or mtime
changed, and build.py embeds only new images. The manifest is parsed once, here, and passed down.
"""

from __future__ import annotations

from pathlib import Path

from fashion_rag.catalog.catalog import (
    Catalog,
    CatalogProblem,
    catalog_state,
    load_catalog,
    metadata_stat,
    with_replaced_images,
)
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.index.build import build_index
from fashion_rag.catalog.index.loaded import known_files, load_index
from fashion_rag.catalog.index.manifest import Manifest, read_manifest
from fashion_rag.catalog.index.report import BuildReport, Previous
from fashion_rag.catalog.index.tiers import HNSW_THRESHOLD, IVFPQ_THRESHOLD, choose_kind
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import CatalogIndexError


def update_index(catalog_dir: Path | str, encoder: RetrievalEncoder, index_dir: Path | str, **build) -> BuildReport:
    """Bring the index of the catalog folder up to date, at a cost that follows the change. `build` are
    build_index's keyword arguments. What `index build` and the studio's start-up run."""
    index_dir = Path(index_dir)
    # 1. The catalog folder's state, taken before it is loaded: a file changed meanwhile is seen next start.
    state, metadata_file = catalog_state(catalog_dir), metadata_stat(catalog_dir)
    # 2. The manifest, parsed once for this start and passed to every step below.
    manifest = manifest_or_none(index_dir)
    # 3. An unchanged folder is recognised from its files' sizes and mtimes alone: loaded, nothing read.
    thresholds = {k: build[k] for k in ("hnsw_threshold", "compressed_threshold") if k in build}
    report = unchanged_index(index_dir, state, encoder.identity, manifest, **thresholds)
    if report is not None:
        return report
    # 4. The catalog: taken from the manifest when only images were replaced, else loaded, hashing only the
    #    files whose size or mtime changed.
    catalog = only_replaced_images(catalog_dir, index_dir, manifest, metadata_file) or load_catalog(
        catalog_dir, known=known_files(manifest)
    )
    # 5. The build, embedding only new images.
    return build_index(
        catalog, encoder, index_dir, catalog_state=state, metadata_file=metadata_file, manifest=manifest, **build
    )


def manifest_or_none(index_dir: Path) -> Manifest | None:
    """The manifest of the index in `index_dir`; None when there is none or it cannot be read (the build
    then says why the index is not reused)."""
    try:
        return read_manifest(index_dir)
    except CatalogIndexError:
        return None


def unchanged_index(
    index_dir: Path | str,
    catalog_state: str,
    encoder_identity: str,
    manifest: Manifest | None,
    *,
    hnsw_threshold: int = HNSW_THRESHOLD,
    compressed_threshold: int = IVFPQ_THRESHOLD,
) -> BuildReport | None:
    """The index in `index_dir`, loaded, when its `manifest` says it was built by this encoder from a
    catalog folder in exactly `catalog_state` (same files, sizes and mtimes) with the index kinds these
    thresholds choose; else None. A restart's check that reads no catalog file: no metadata parse, no
    image opened, no hash."""
    if manifest is None or manifest.catalog_state != catalog_state or manifest.encoder_identity != encoder_identity:
        return None
    counts = manifest.counts()
    kinds = {c: choose_kind(n, hnsw_threshold, compressed_threshold) for c, n in counts.items()}
    if any(manifest.categories[c].kind != kinds[c] for c in CATEGORIES if counts[c]):
        return None
    try:
        index = load_index(index_dir, encoder_identity=encoder_identity, manifest=manifest)
    except CatalogIndexError:
        return None  # damaged: the full path says what is wrong and rebuilds
    problems = tuple(CatalogProblem(*p) for p in manifest.catalog_problems(Path(index_dir)))
    return BuildReport(
        index_dir=Path(index_dir),
        counts=counts,
        kinds=kinds,
        embedded=(),
        reused=manifest.count,
        added=(),
        changed=(),
        removed=(),
        problems=problems,
        previous=Previous.UNCHANGED,
        encoder=dict(manifest.encoder),
        index=index,
    )


def only_replaced_images(
    catalog_dir: Path | str, index_dir: Path, manifest: Manifest | None, metadata_file: list | None
) -> Catalog | None:
    """The catalog, from the manifest's record of it, when its metadata file is the one recorded, the index
    recorded no problem, and only the contents of some images changed (catalog.with_replaced_images);
    else None."""
    if (
        manifest is None
        or manifest.catalog_state is None
        or manifest.metadata_stat != (tuple(metadata_file) if metadata_file else None)
        or manifest.problems
        or manifest.catalog_root(index_dir) != Path(catalog_dir).expanduser().resolve()
    ):
        return None
    return with_replaced_images(catalog_dir, manifest.items)
