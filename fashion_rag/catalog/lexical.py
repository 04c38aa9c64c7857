"""Lexical search over catalog captions and titles: BM25 (the bm25s library), one index per category.

Captions and queries are tokenised the same way (vocabulary.canonical_tokens: lower case, synonyms and
plurals folded, "striped" = "stripes"), English stop words removed. Only items that share at least one
word with the query are ranked: a lexical ranking says nothing about the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from fashion_rag.catalog.vocabulary import canonical_tokens
from fashion_rag.config import CATEGORIES
from fashion_rag.errors import check_category

# bm25s sets its own logger to DEBUG on import (0.3.16), which prints a line per index build once
# logging is configured; let it follow the application's level instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

STOPWORDS = frozenset(STOPWORDS_EN) | {"s"}


def tokenize(text: str) -> list[str]:
    """Canonical words of `text` without stop words (the same for captions and queries)."""
    return [token for token in canonical_tokens(text) if token not in STOPWORDS]


@dataclass(frozen=True)
class LexicalDocument:
    """What the lexical index needs of one catalog or index item."""

    id: str
    category: str
    caption: str


class LexicalIndex:
    """BM25 over the captions of each category. Items without a caption are never returned."""

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

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def has_captions(self, category: str | None = None) -> bool:
        """Whether any item (of `category`, or of any category) has a caption to match."""
        return bool(self._ids[category]) if category is not None else len(self) > 0

    def rank(self, text: str, category: str, depth: int | None = None) -> list[tuple[str, float]]:
        """(id, BM25 score) of the items of `category` matching `text`, best first; ties by id; at most
        `depth` of them (all matching items when None)."""
        check_category(category)
        bm25 = self._bm25.get(category)
        tokens = tokenize(text)
        if bm25 is None or not tokens:
            return []
        scores = np.asarray(bm25.get_scores(tokens), dtype=np.float64)  # (items in category,)
        ids = self._ids[category]
        order = sorted((i for i in range(len(ids)) if scores[i] > 0), key=lambda i: (-scores[i], ids[i]))
        if depth is not None:
            order = order[:depth]
        return [(ids[i], float(scores[i])) for i in order]
