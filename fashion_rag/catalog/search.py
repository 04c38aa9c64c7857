"""Catalog search: a description -> the garments of one category that match it best.

The description is split into noun chunks (chunking.py); with several chunks, their ", "-joined text is
searched too (the paper's multi-chunk query). Each chunk is searched dense (its open_clip text embedding
against the index's image embeddings) and lexical (BM25 over the captions), and the rankings are fused by
reciprocal rank fusion, per chunk and then across chunks: an item scores the sum of 1 / (RRF_K + rank)
over the rankings it appears in. Items repeated across chunks are merged (each hit names the chunk that
contributed most), and items with the same image content (sha256) are reported once.

`mode` says what is available: "hybrid" (dense + lexical), "dense" (no captions), or "lexical" (no
retrieval encoder weights, or no index: `mode_reason` says which). With a retrieval encoder of random
weights (a test bundle's: its `info["random_weights"]`) dense ranks by noise, which would bury exact
caption matches: hybrid search is then "lexical-first" (items whose caption matches first, by BM25, the
dense ranking breaking ties and ordering the rest), and `mode_reason` says so. Thread safety: after
construction a CatalogSearch is only read, except for its text-embedding cache, a functools.lru_cache
(coherent under concurrent use): the app runs several searches at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fashion_rag.catalog.catalog import Catalog, load_catalog
from fashion_rag.catalog.chunking import chunk_description
from fashion_rag.catalog.encoder import PART, RetrievalEncoder
from fashion_rag.catalog.index import (
    LEXICAL_FOLDER,
    MANIFEST_NAME,
    CatalogIndex,
    load_index,
    load_items,
    missing_files,
    read_manifest,
)
from fashion_rag.catalog.lexical import LexicalIndex
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import CatalogIndexError, InputError, check_category
from fashion_rag.weights import ModelSources, missing_message

logger = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "lexical")
RRF_K = 60  # the constant of Cormack, Clarke & Buettcher (SIGIR 2009); damps the weight of the top ranks
MIN_DEPTH = 50  # each ranking contributes at least this many candidates to the fusion
TEXT_CACHE_SIZE = 1024  # chunk embeddings kept: a text embedding costs ~0.3 s with ViT-L-14 on a CPU core
RANDOM_ENCODER_REASON = (
    "caption matches ranked first (BM25), dense similarity only breaks ties and orders the rest: the "
    "retrieval encoder of these models has random weights, so its similarities are noise"
)


@dataclass(frozen=True)
class SearchHit:
    """One result. Ranks are 1-based positions in the matched chunk's dense and lexical rankings (None
    when the item is not in that ranking); `similarity` is the cosine similarity of the chunk's text
    embedding and the image embedding (None in lexical mode)."""

    id: str
    category: str
    caption: str
    score: float  # the fused reciprocal-rank score, summed over chunks (lexical-first fusion: its lexical part)
    chunk: str  # the chunk of the description that contributed most to `score`
    dense_rank: int | None
    lexical_rank: int | None
    similarity: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Entry(Protocol):
    """What the search keeps of an item. IndexedItem and CatalogItem have these attributes and are kept
    as they are (copying 100k of them into another class at every start cost ~1 s)."""

    id: str
    category: str
    caption: str
    sha256: str
    file: str


LEXICAL_CACHE = LEXICAL_FOLDER  # folder in the index folder: the BM25 index of its captions (lexical.py)


class CatalogSearch:
    """Searches one catalog. Build it with `from_index`, `from_catalog` or `open`."""

    def __init__(
        self,
        entries: Iterable[_Entry],
        *,
        index: CatalogIndex | None = None,
        encoder: RetrievalEncoder | None = None,
        catalog_root: Path | None = None,
        reason: str = "",
        problems: Iterable[str] = (),
        text_cache_size: int = TEXT_CACHE_SIZE,
        lexical_cache: Path | None = None,
    ) -> None:
        if (index is None) != (encoder is None):
            reason = reason or ("no retrieval encoder" if encoder is None else "no index")
            index, encoder = None, None
        if index is not None and encoder is not None and index.encoder_identity != encoder.identity:
            raise CatalogIndexError(
                f"index at {index.directory} was built with {index.encoder_identity!r}, not with the encoder "
                f"in use {encoder.identity!r}: rebuild it with `python -m fashion_rag index build`"
            )
        self.index = index
        self.encoder = encoder
        self.catalog_root = catalog_root
        self.problems = tuple(problems)  # human-readable lines: images gone since indexing, catalog problems
        self._entries = {entry.id: entry for entry in entries}
        self._counts = {c: 0 for c in CATEGORIES}
        for entry in self._entries.values():
            self._counts[entry.category] += 1
        # chunk -> (D,) read-only embedding; lru_cache keeps its structure coherent across threads.
        self._embed_text = functools.lru_cache(maxsize=text_cache_size)(self._encode_text)
        documents = list(self._entries.values())  # id, category and caption: what a LexicalDocument has
        self.lexical = LexicalIndex.cached(documents, lexical_cache) if lexical_cache else LexicalIndex(documents)
        dense = index is not None
        if dense and self.lexical.has_captions():
            self.mode = "hybrid"
        elif dense:
            self.mode = "dense"
        elif self.lexical.has_captions():
            self.mode = "lexical"
        else:
            raise CatalogIndexError(
                f"nothing to search with: {reason or 'no dense index'}, and no catalog item has a caption for "
                f"lexical search (add a metadata.jsonl with captions, or fetch the retrieval encoder)"
            )
        self.mode_reason = reason if self.mode == "lexical" else ""
        if self.mode == "dense":
            self.mode_reason = "no captions in the catalog, so no lexical ranking"
        # "rrf" (reciprocal rank fusion) or "lexical-first" (random encoder weights: see the module docstring).
        random_encoder = encoder is not None and bool(getattr(encoder, "info", {}).get("random_weights"))
        self.fusion = "lexical-first" if random_encoder and self.mode == "hybrid" else "rrf"
        if self.fusion == "lexical-first":
            self.mode_reason = RANDOM_ENCODER_REASON

    # ----------------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def from_index(
        cls,
        index: CatalogIndex,
        encoder: RetrievalEncoder | None,
        *,
        catalog_root: Path | str | None = None,
        reason: str = "",
        text_cache_size: int = TEXT_CACHE_SIZE,
    ) -> CatalogSearch:
        """Search the items of a loaded index; with `encoder` None, lexically over their captions.
        With `catalog_root`, items whose image has been deleted since indexing are left out and reported."""
        root = Path(catalog_root) if catalog_root is not None else None
        gone = {item.id for item in missing_files(index, root)} if root is not None else set()
        problems = [
            f"missing-file: {item.file} (id {item.id}) was indexed but no longer exists; "
            f"run `python -m fashion_rag index build {root}` to update the index"
            for item in index.items
            if item.id in gone
        ]
        entries = [item for item in index.items if item.id not in gone] if gone else index.items
        cache = Path(index.directory) / LEXICAL_CACHE  # captions' BM25, kept beside the index it was made from
        common = {"catalog_root": root, "problems": problems, "lexical_cache": cache}
        if encoder is None:
            return cls(entries, reason=reason or "no retrieval encoder", **common)
        return cls(entries, index=index, encoder=encoder, reason=reason, text_cache_size=text_cache_size, **common)

    @classmethod
    def from_catalog(cls, catalog: Catalog, *, reason: str = "no index") -> CatalogSearch:
        """Lexical search over the captions of a loaded catalog (no dense index)."""
        entries = list(catalog)
        return cls(entries, catalog_root=catalog.root, reason=reason, problems=[str(p) for p in catalog.problems])

    @classmethod
    def open(
        cls,
        catalog_dir: Path | str | None,
        index_dir: Path | str | None = None,
        sources: ModelSources | None = None,
        *,
        device: str = "cpu",
        encoder: RetrievalEncoder | None = None,
    ) -> CatalogSearch:
        """The best search available for a catalog: hybrid when the retrieval encoder of `sources` and a
        matching index exist, else lexical (saying why in `mode_reason`). `index_dir` defaults to
        `<catalog_dir>/index`; `catalog_dir` to the folder the index was built from. An index built by
        another encoder is refused (CatalogIndexError). A loaded `encoder` of `sources` may be passed in
        so that it is not loaded twice."""
        catalog_root = Path(catalog_dir) if catalog_dir is not None else None
        if index_dir is None:
            if catalog_root is None:
                raise InputError("give a catalog folder or an index folder to search")
            index_dir = catalog_root / "index"
        index_dir = Path(index_dir)
        has_index = (index_dir / MANIFEST_NAME).is_file()
        manifest = read_manifest(index_dir) if catalog_root is None and has_index else None
        if manifest is not None:
            catalog_root = manifest.catalog_root(index_dir)
        reason = ""
        if encoder is None and sources is not None and sources.locate(PART).found:
            encoder = RetrievalEncoder.from_sources(sources, device=device)
        elif encoder is None and sources is not None:
            reason = f"lexical search only: {missing_message([PART], sources)}"
        elif encoder is None:
            reason = "lexical search only: no model sources given"
        if encoder is not None and has_index:
            index = load_index(index_dir, encoder_identity=encoder.identity, manifest=manifest)
            return cls.from_index(index, encoder, catalog_root=catalog_root)
        if encoder is not None:
            reason = (
                f"lexical search only: no index at {index_dir}; build it with "
                f"`python -m fashion_rag index build {catalog_root or 'CATALOG_DIR'} --out {index_dir}`"
            )
        if catalog_root is not None and catalog_root.is_dir():
            return cls.from_catalog(load_catalog(catalog_root), reason=reason)
        if has_index:
            entries = load_items(index_dir)
            return cls(entries, reason=reason)
        raise InputError(f"nothing to search: no catalog folder at {catalog_root} and no index at {index_dir}")

    # ----------------------------------------------------------------------------------------------
    # Queries

    @property
    def available_modes(self) -> tuple[str, ...]:
        if self.mode == "hybrid":
            return MODES
        return (self.mode,)

    def __contains__(self, item_id: object) -> bool:
        """Whether `item_id` is a searchable catalog id."""
        return item_id in self._entries

    def count(self, category: str) -> int:
        """Searchable items in `category`."""
        return self._counts[check_category(category)]

    def counts(self) -> dict[str, int]:
        return {category: self.count(category) for category in CATEGORIES}

    def caption(self, item_id: str) -> str:
        return self._entry(item_id).caption

    def category_of(self, item_id: str) -> str:
        return self._entry(item_id).category

    def image_path(self, item_id: str) -> Path:
        """Where the image of catalog id `item_id` is (InputError for an unknown id or without a catalog)."""
        entry = self._entry(item_id)
        if self.catalog_root is None:
            raise InputError(f"no catalog folder is known to this search: cannot locate the image of {item_id!r}")
        path = self.catalog_root / entry.file
        if self.catalog_root.resolve() not in path.resolve().parents:
            # Only a hand-edited manifest can get here: catalog files sit in category folders.
            raise CatalogIndexError(f"the index lists {entry.file!r} for {item_id!r}, outside the catalog folder")
        return path

    def _entry(self, item_id: str) -> _Entry:
        try:
            return self._entries[item_id]
        except (KeyError, TypeError):
            raise InputError(f"unknown catalog id {item_id!r}") from None

    def search(self, text: str, category: str, k: int = 5, *, mode: str | None = None) -> list[SearchHit]:
        """The `k` best garments of `category` for the description `text`, best first.

        InputError for an empty or letter-free description, an unknown category, a `k`
        outside 1..(items in the category), or a `mode` this search does not have. In lexical mode fewer
        than `k` hits come back when fewer captions share a word with the description.
        """
        check_category(category)
        mode = mode or self.mode
        if mode not in self.available_modes:
            raise InputError(
                f"search mode {mode!r} is not available here: use one of {', '.join(self.available_modes)}"
                + (f" ({self.mode_reason})" if self.mode_reason else "")
            )
        available = self.count(category)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= available:
            if available == 0:
                raise InputError(f"the catalog has no {category} items to search")
            raise InputError(f"k={k!r} is out of range: use 1 to {available} (the {category} items in the catalog)")
        chunks = chunk_description(text)
        if len(chunks) > 1:
            # The chunks joined, as the paper's multi-chunk query ("three chunks joined with ', '"): it ranks
            # the garments that match the whole description, where single chunks only see one part of it.
            chunks = chunks + [", ".join(chunks)]
        depth = max(MIN_DEPTH, k)

        dense: list[list[tuple[str, float]]] = [[] for _ in chunks]  # per chunk: (id, cosine), best first
        if mode in ("dense", "hybrid"):
            assert self.index is not None and self.encoder is not None
            # Indexed items left out of this search (image deleted since indexing) are skipped: ask for
            # as many more.
            left_out = len(self.index.items_in(category)) - available
            queries = self._embed_texts(chunks)  # (chunks, D)
            scores, hits = self.index.search(queries, category, depth + left_out)
            for row, (row_scores, row_hits) in enumerate(zip(scores, hits, strict=True)):
                ranked = [(item.id, float(s)) for item, s in zip(row_hits, row_scores, strict=False)]
                dense[row] = [(i, s) for i, s in ranked if i in self._entries][:depth]
        lexical: list[list[tuple[str, float]]] = [[] for _ in chunks]
        if mode in ("lexical", "hybrid"):
            lexical = [self.lexical.rank(chunk, category, depth) for chunk in chunks]
        return self._fuse(chunks, dense, lexical, k)

    def _encode_text(self, text: str) -> np.ndarray:
        assert self.encoder is not None
        vector = self.encoder.encode_texts([text])[0]
        vector.setflags(write=False)  # shared by every thread that hits the cache
        return vector

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        """(len(texts), D) text embeddings through the LRU cache (a repeated search, or the same
        description in several modes, encodes nothing)."""
        return np.stack([self._embed_text(text) for text in texts])

    def dense_ranking(self, text: str, category: str, k: int) -> list[str]:
        """Ids of the `k` items of `category` nearest to the embedding of `text` as given (no chunking, no
        lexical side, no merging of same-content items): the paper's retrieval protocol."""
        check_category(category)
        if self.index is None:
            raise InputError(f"dense search is not available here ({self.mode_reason or 'no index'})")
        left_out = len(self.index.items_in(category)) - self.count(category)
        _, hits = self.index.search(self._embed_texts([text]), category, k + left_out)
        return [item.id for item in hits[0] if item.id in self._entries][:k]

    def _fuse(
        self,
        chunks: list[str],
        dense: list[list[tuple[str, float]]],
        lexical: list[list[tuple[str, float]]],
        k: int,
    ) -> list[SearchHit]:
        # Per item: reciprocal-rank contributions of each side, summed over chunks.
        totals: dict[str, list[float]] = {}  # id -> [dense part, lexical part]
        best: dict[str, tuple[float, int]] = {}  # id -> (contribution, chunk index) of its best chunk
        for c in range(len(chunks)):
            contribution: dict[str, float] = {}
            for side, ranking in enumerate((dense[c], lexical[c])):
                for rank, (item_id, _) in enumerate(ranking, start=1):
                    share = 1.0 / (RRF_K + rank)
                    contribution[item_id] = contribution.get(item_id, 0.0) + share
                    totals.setdefault(item_id, [0.0, 0.0])[side] += share
            for item_id, value in contribution.items():
                if item_id not in best or value > best[item_id][0]:
                    best[item_id] = (value, c)
        if self.fusion == "lexical-first":
            # Caption matches first by their lexical part; dense breaks ties and orders the rest.
            def key(i: str) -> tuple:
                return (-totals[i][1], -totals[i][0], i)

            def score(i: str) -> float:
                return totals[i][1]
        else:

            def key(i: str) -> tuple:
                return (-(totals[i][0] + totals[i][1]), i)

            def score(i: str) -> float:
                return totals[i][0] + totals[i][1]

        hits: list[SearchHit] = []
        seen_content: set[str] = set()
        for item_id in sorted(totals, key=key):
            entry = self._entries[item_id]
            if entry.sha256 in seen_content:
                continue  # the same image under another id: report it once
            seen_content.add(entry.sha256)
            c = best[item_id][1]
            dense_rank = next((r for r, (i, _) in enumerate(dense[c], start=1) if i == item_id), None)
            lexical_rank = next((r for r, (i, _) in enumerate(lexical[c], start=1) if i == item_id), None)
            similarity = next((s for i, s in dense[c] if i == item_id), None)
            hits.append(
                SearchHit(
                    id=item_id,
                    category=entry.category,
                    caption=entry.caption,
                    score=round(score(item_id), 6),
                    chunk=chunks[c],
                    dense_rank=dense_rank,
                    lexical_rank=lexical_rank,
                    similarity=None if similarity is None else round(similarity, 6),
                )
            )
            if len(hits) == k:
                break
        return hits
