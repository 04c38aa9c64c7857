"""Retrieval evaluation: recall@k and MRR of dense, lexical and hybrid search on a queries file.

A queries file is JSON Lines, one query per line::

    {"text": "navy slip dress with white polka dots", "category": "dresses", "relevant": ["dress-007"]}

recall@k is the share of queries with at least one relevant id in the top k (with one relevant id per
query, as in the paper's Dress Code tables (docs/recipe.md), this is the usual recall@k); MRR is the mean over
queries of 1 / rank of the first relevant id (0 when none is in the top max(ks)).

Two protocols:
- "product" (the default): every search mode the catalog has, exactly as the app searches (chunks,
  fusion, one hit per image content).
- "paper": the retrieval protocol of the Fashion-RAG paper (docs/recipe.md, "Retrieval in the paper"): dense
  only, the query is one noun chunk or three joined with ", ", embedded as it is, no fusion and no
  de-duplication. A query line may give its noun chunks (`"chunks": [...]`, as Dress Code's annotations
  do); otherwise they come from chunking its text. Its recall sits beside the paper's table when the
  catalog is the Dress Code test gallery.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fashion_rag.catalog.chunking import chunk_description
from fashion_rag.catalog.search import MODES, CatalogSearch
from fashion_rag.errors import InputError, check_category

DEFAULT_KS = (1, 5, 10)
PAPER_CHUNKS = (1, 3)  # the paper's two query forms


@dataclass(frozen=True)
class EvalQuery:
    text: str
    category: str
    relevant: tuple[str, ...]
    chunks: tuple[str, ...] = ()  # noun chunks given by the queries file (the paper protocol uses them)


@dataclass(frozen=True)
class ModeScores:
    """The metrics of one search mode over the queries it could answer."""

    mode: str
    queries: int
    recall: dict[int, float]  # k -> share of queries with a relevant id in the top k
    mrr: float

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "queries": self.queries,
            "mrr": self.mrr,
            **{f"R@{k}": v for k, v in self.recall.items()},
        }


def load_queries(path: Path | str) -> list[EvalQuery]:
    """Read a queries file; InputError naming the line for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"queries file {str(path)!r} does not exist")
    queries: list[EvalQuery] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: not valid JSON ({error.msg})") from error
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row.get("text", "").strip():
            raise InputError(f"{where}: each line needs a non-empty 'text', a 'category' and a 'relevant' id list")
        relevant = row.get("relevant")
        if isinstance(relevant, str):
            relevant = [relevant]
        if not isinstance(relevant, list) or not relevant or not all(isinstance(r, str) for r in relevant):
            raise InputError(f"{where}: 'relevant' must be a non-empty list of catalog ids, got {relevant!r}")
        try:
            category = check_category(str(row.get("category")))
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        chunks = row.get("chunks", [])
        if not isinstance(chunks, list) or not all(isinstance(c, str) and c.strip() for c in chunks):
            raise InputError(f"{where}: 'chunks' must be a list of non-empty noun chunks, got {chunks!r}")
        queries.append(EvalQuery(row["text"], category, tuple(relevant), tuple(chunks)))
    if not queries:
        raise InputError(f"queries file {str(path)!r} holds no query")
    return queries


def first_relevant_rank(ranked_ids: Sequence[str], relevant: Sequence[str]) -> int | None:
    """1-based rank of the first relevant id in `ranked_ids`, or None."""
    wanted = set(relevant)
    return next((rank for rank, item in enumerate(ranked_ids, start=1) if item in wanted), None)


def score_rankings(
    rankings: Sequence[Sequence[str]], relevants: Sequence[Sequence[str]], ks: Sequence[int] = DEFAULT_KS
) -> tuple[dict[int, float], float]:
    """recall@k for each k and MRR of ranked id lists against their relevant ids."""
    if not rankings:
        return {k: 0.0 for k in ks}, 0.0
    ranks = [first_relevant_rank(r, rel) for r, rel in zip(rankings, relevants, strict=True)]
    recall = {k: sum(r is not None and r <= k for r in ranks) / len(ranks) for k in ks}
    mrr = sum(1.0 / r for r in ranks if r is not None) / len(ranks)
    return recall, mrr


def evaluate(
    search: CatalogSearch, queries: Sequence[EvalQuery], ks: Sequence[int] = DEFAULT_KS
) -> tuple[list[ModeScores], list[str]]:
    """Scores of every mode `search` has, and one note per query that was skipped (with why).

    A query is skipped when its text has no garment words, or when none of its relevant ids is
    searchable (not in the catalog or index): it would only measure the catalog, not the search.
    """
    notes: list[str] = []
    usable: list[EvalQuery] = []
    for query in queries:
        known = [r for r in query.relevant if r in search]
        if not known:
            notes.append(f"skipped {query.text!r}: none of its relevant ids {list(query.relevant)} is searchable")
            continue
        usable.append(query)
    results = []
    for mode in (m for m in MODES if m in search.available_modes):
        rankings, relevants = [], []
        for query in usable:
            depth = min(max(ks), search.count(query.category))
            try:
                hits = search.search(query.text, query.category, depth, mode=mode)
            except InputError as error:
                if mode == search.available_modes[0]:
                    notes.append(f"skipped {query.text!r}: {error}")
                continue
            rankings.append([hit.id for hit in hits])
            relevants.append(query.relevant)
        recall, mrr = score_rankings(rankings, relevants, ks)
        results.append(ModeScores(mode, len(rankings), recall, mrr))
    return results, notes


def paper_query(query: EvalQuery, chunks: int) -> str:
    """The paper's query text: the first noun chunk, or the first three joined with ", "."""
    found = list(query.chunks) or chunk_description(query.text)
    return ", ".join(found[:chunks])


def evaluate_paper(
    search: CatalogSearch, queries: Sequence[EvalQuery], ks: Sequence[int] = DEFAULT_KS
) -> tuple[list[ModeScores], list[str]]:
    """Scores of the paper's protocol (module docstring): one row per query form ("paper, 1 chunk",
    "paper, 3 chunks"), and notes on skipped queries. InputError when the search has no dense index."""
    if "dense" not in search.available_modes:
        raise InputError(f"the paper protocol is dense retrieval, not available here ({search.mode_reason})")
    notes = [
        f"skipped {q.text!r}: none of its relevant ids {list(q.relevant)} is searchable"
        for q in queries
        if not any(r in search for r in q.relevant)
    ]
    usable = [q for q in queries if any(r in search for r in q.relevant)]
    results = []
    for chunks in PAPER_CHUNKS:
        rankings = [
            search.dense_ranking(paper_query(q, chunks), q.category, min(max(ks), search.count(q.category)))
            for q in usable
        ]
        recall, mrr = score_rankings(rankings, [q.relevant for q in usable], ks)
        label = f"paper, {chunks} chunk{'s' if chunks > 1 else ''}"
        results.append(ModeScores(label, len(rankings), recall, mrr))
    return results, notes


def format_table(scores: Sequence[ModeScores], ks: Sequence[int] = DEFAULT_KS) -> str:
    """A markdown table, one row per mode."""
    header = "| mode | queries | " + " | ".join(f"R@{k}" for k in ks) + " | MRR |"
    rule = "|---|---|" + "---|" * len(ks) + "---|"
    rows = [
        f"| {s.mode} | {s.queries} | " + " | ".join(f"{s.recall[k]:.3f}" for k in ks) + f" | {s.mrr:.3f} |"
        for s in scores
    ]
    return "\n".join([header, rule, *rows])
