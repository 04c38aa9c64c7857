"""Lexical search over catalog captions and titles: BM25 (the bm25s library), one index per category.

Captions and queries are tokenised the same way, the way bm25s does it: its token pattern (words of two
or more letters or digits, any script), its English stop words, and the Snowball English stemmer of
PyStemmer ("dresses" = "dress", "striped" = "stripes" = "stripe"). There is no closed vocabulary: a
word in a caption ("kurta") matches the same word in a description. Only items that share at least one
stem with the query are ranked: a lexical ranking says nothing about the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_rag.catalog.vocabulary import normalise_text, stem_words
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import check_category
from fashion_rag.files import staged_folder


def _import_bm25s_without_jax():
    """bm25s imports jax when it is installed (mediapipe brings it) for a top-k we never call (rank()
    selects with numpy): 1.3 s of import and a jit on the first search. A None in sys.modules makes that
    import fail the way a missing jax does; later imports of jax are untouched."""
    if "jax" in sys.modules:
        import bm25s
    else:
        sys.modules["jax"] = None  # type: ignore[assignment]
        try:
            import bm25s
        finally:
            del sys.modules["jax"]
    return bm25s


bm25s = _import_bm25s_without_jax()


# bm25s sets its own logger to DEBUG on import (0.3.16), which prints a line per index build once
# logging is configured; let it follow the application's level instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)
logger = logging.getLogger(__name__)


def tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    """Stemmed tokens of each text without stop words, by bm25s's own tokeniser (the same for captions and
    queries). One call for many texts: bm25s stems each distinct word once (100k captions: ~2 s, not ~35 s
    one by one)."""
    if not texts:
        return []
    tokens = bm25s.tokenize(
        [normalise_text(t) for t in texts], stopwords="en", stemmer=stem_words, return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]


def tokenize(text: str) -> list[str]:
    """Stemmed tokens of one text (see tokenize_many)."""
    return tokenize_many([text])[0]


def _fingerprint(documents: Sequence[LexicalDocument]) -> str:
    """sha256 of the documents (in order) and of how they are tokenised (the bm25s version)."""
    digest = hashlib.sha256(f"bm25s {bm25s.__version__}\n".encode())
    for doc in documents:
        digest.update(f"{doc.id}\t{doc.category}\t{doc.caption}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class LexicalDocument:
    """What the lexical index needs of one catalog or index item."""

    id: str
    category: str
    caption: str


class LexicalIndex:
    """BM25 over the captions of each category. Items without a caption are never returned.

    Built once, then only read: `rank` may be called from many threads at once.
    """

    def __init__(self, documents: Iterable[LexicalDocument]) -> None:
        self._ids: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        self._bm25: dict[str, bm25s.BM25] = {}
        corpus: dict[str, list[list[str]]] = {c: [] for c in CATEGORIES}
        documents = list(documents)
        for doc, tokens in zip(documents, tokenize_many([d.caption for d in documents]), strict=True):
            if tokens:
                self._ids[check_category(doc.category)].append(doc.id)
                corpus[doc.category].append(tokens)
        for category, tokens in corpus.items():
            if tokens:
                bm25 = bm25s.BM25()  # Lucene variant, k1=1.5, b=0.75: the library's defaults
                bm25.index(tokens, show_progress=False)
                self._bm25[category] = bm25
        self._order_ids()

    def _order_ids(self) -> None:
        # Position of each id in its category, for tie-breaking by id without sorting strings.
        self._id_order = {c: np.argsort(np.array(ids, dtype=object)).argsort() for c, ids in self._ids.items() if ids}

    @classmethod
    def cached(cls, documents: Iterable[LexicalDocument], folder: Path) -> LexicalIndex:
        """The index of `documents`, read from `folder` (memory-mapped, bm25s's own format) when it holds
        the index of exactly these documents, else built and saved there for the next start. Tokenising
        and indexing 100k captions takes seconds; reading them back, milliseconds. A folder that cannot be
        written (a read-only index) only means no cache."""
        documents = list(documents)
        fingerprint = _fingerprint(documents)
        try:
            return cls._load(folder, fingerprint)
        except (OSError, ValueError, KeyError):
            pass  # absent, stale or damaged: build it
        index = cls(documents)
        try:
            index._save(folder, fingerprint)
        except OSError as error:
            logger.info("lexical index not cached in %s: %s", folder, error)
        return index

    @classmethod
    def _load(cls, folder: Path, fingerprint: str) -> LexicalIndex:
        record = json.loads((folder / "ids.json").read_text())
        if record["fingerprint"] != fingerprint:
            raise ValueError("stale")
        index = cls.__new__(cls)
        index._ids = {c: list(record["ids"].get(c, [])) for c in CATEGORIES}
        index._bm25 = {c: bm25s.BM25.load(str(folder / c), mmap=True) for c in CATEGORIES if index._ids[c]}
        index._order_ids()
        return index

    def _save(self, folder: Path, fingerprint: str) -> None:
        with staged_folder(folder) as staged:
            for category, bm25 in self._bm25.items():
                bm25.save(str(staged / category))
            (staged / "ids.json").write_text(json.dumps({"fingerprint": fingerprint, "ids": self._ids}))

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def has_captions(self, category: str | None = None) -> bool:
        """Whether any item (of `category`, or of any category) has a caption to match."""
        return bool(self._ids[category]) if category is not None else len(self) > 0

    def rank(self, text: str, category: str, depth: int | None = None) -> list[tuple[str, float]]:
        """(id, BM25 score) of the items of `category` matching `text`, best first; ties by id; at most
        `depth` of them (all matching items when None).

        bm25s scores the query's stems over its sparse index (numpy); only the top `depth` are selected
        (argpartition) and sorted, never the whole category.
        """
        check_category(category)
        bm25 = self._bm25.get(category)
        stems = [t for t in tokenize(text) if t in bm25.vocab_dict] if bm25 is not None else []
        if not stems:
            return []
        scores = np.asarray(bm25.get_scores(stems), dtype=np.float64)  # (items in category,)
        matching = np.flatnonzero(scores > 0)
        if depth is not None and len(matching) > depth:
            # The `depth` best, plus every item tied with the last of them (ties are broken by id below).
            cut = np.partition(scores[matching], len(matching) - depth)[len(matching) - depth]
            matching = matching[scores[matching] >= cut]
        order = matching[np.lexsort((self._id_order[category][matching], -scores[matching]))]
        if depth is not None:
            order = order[:depth]
        ids = self._ids[category]
        return [(ids[i], float(scores[i])) for i in order]
