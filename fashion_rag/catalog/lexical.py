"""Lexical search over catalog captions and titles: BM25 (the bm25s library), one index per category.

Captions and queries are tokenised the same way, the way bm25s does it: its token pattern (words of two
or more letters or digits, any script), its English stop words, and the Snowball English stemmer of
PyStemmer ("dresses" = "dress", "striped" = "stripes" = "stripe"). There is no closed vocabulary: a
word in a caption ("kurta") matches the same word in a description. Only items that share at least one
stem with the query are ranked: a lexical ranking says nothing about the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import bm25s
import numpy as np

from fashion_rag.catalog.vocabulary import normalise_text, stem_words
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import check_category

# bm25s sets its own logger to DEBUG on import (0.3.16), which prints a line per index build once
# logging is configured; let it follow the application's level instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)


def tokenize(text: str) -> list[str]:
    """Stemmed tokens of `text` without stop words, by bm25s's own tokeniser (the same for captions and
    queries)."""
    tokens = bm25s.tokenize(
        normalise_text(text), stopwords="en", stemmer=stem_words, return_ids=False, show_progress=False
    )
    return list(tokens[0]) if tokens else []


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
        for doc in documents:
            tokens = tokenize(doc.caption)
            if tokens:
                self._ids[check_category(doc.category)].append(doc.id)
                corpus[doc.category].append(tokens)
        for category, tokens in corpus.items():
            if tokens:
                bm25 = bm25s.BM25()  # Lucene variant, k1=1.5, b=0.75: the library's defaults
                bm25.index(tokens, show_progress=False)
                self._bm25[category] = bm25
        # Position of each id in its category, for tie-breaking by id without sorting strings.
        self._id_order = {c: np.argsort(np.array(ids, dtype=object)).argsort() for c, ids in self._ids.items() if ids}

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
