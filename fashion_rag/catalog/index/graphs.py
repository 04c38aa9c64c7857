"""The faiss file of one category in a new index folder: linked from the previous index when the
category's items are unchanged, an HNSW graph updated in place when few changed, else built anew.

faiss HNSW cannot remove a node: an update marks the nodes of changed or removed items dead (an
UpdatedGraph skips them) and adds the new vectors, until dead nodes pass DEAD_NODE_LIMIT of the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from fashion_rag.catalog.index.manifest import CategoryEntry
from fashion_rag.catalog.index.staging import link_or_copy
from fashion_rag.catalog.index.tiers import (
    DEAD_NODE_LIMIT,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IVF_PROBES,
    RERANK,
    build_faiss_index,
)


class Member(Protocol):
    """What a category's file needs of an item: its id and image content (catalog or indexed items)."""

    id: str
    sha256: str


@dataclass(frozen=True)
class PreviousCategory:
    """A category of the previous index: its entry and its items in row order."""

    entry: CategoryEntry
    members: Sequence[Member]


def category_entry(kind: str, count: int, category: str) -> CategoryEntry:
    """The manifest entry of a category newly built as `kind` with `count` items."""
    if kind == "hnsw":
        file = f"{category}.hnsw.faiss"
        return CategoryEntry(
            kind="hnsw",
            count=count,
            file=file,
            m=HNSW_M,
            ef_construction=HNSW_EF_CONSTRUCTION,
            ef_search=HNSW_EF_SEARCH,
        )
    if kind == "ivfpq":
        return CategoryEntry(
            kind="ivfpq", count=count, file=f"{category}.ivfpq.faiss", nprobe=IVF_PROBES, rerank=RERANK
        )
    return CategoryEntry(kind="flat", count=count)


def write_category_file(
    entry: CategoryEntry,
    block: np.ndarray,
    members: Sequence[Member],
    previous: PreviousCategory | None,
    index_dir: Path,
    tmp: Path,
) -> tuple[CategoryEntry, list[str]]:
    """Put the faiss file(s) of one category with a file into the new index folder `tmp`: linked from
    `index_dir` when its items are unchanged, an HNSW graph updated in place when few changed, else built
    from `block` (its (n, D) vectors, rows in `members` order). Returns its entry and the names written."""
    if previous is not None and previous.entry.same_settings(entry):
        old = previous.entry
        if [(i.id, i.sha256) for i in previous.members] == [(i.id, i.sha256) for i in members]:
            for name in (old.file, old.nodes):
                if name:
                    link_or_copy(index_dir / name, tmp / name)  # the same graph: not rebuilt
            return old, []
        if entry.kind == "hnsw":
            updated = update_graph(entry, block, members, previous, index_dir, tmp)
            if updated is not None:
                return updated
    graph = build_faiss_index(block, entry.kind)
    faiss.write_index(graph, str(tmp / str(entry.file)))
    return entry, [str(entry.file)]


def update_graph(
    entry: CategoryEntry,
    block: np.ndarray,
    members: Sequence[Member],
    previous: PreviousCategory,
    index_dir: Path,
    tmp: Path,
) -> tuple[CategoryEntry, list[str]] | None:
    """The previous HNSW graph of a category, updated to `members` without a rebuild: a live node whose
    image (sha256) is still a member keeps its vector and now names that member's row; members without
    such a node are added; the other nodes are marked dead. None when dead nodes would pass
    DEAD_NODE_LIMIT of the graph (then the caller rebuilds it)."""
    old, file = previous.entry, str(entry.file)
    old_nodes = (
        np.load(index_dir / old.nodes, allow_pickle=False)
        if old.nodes
        else np.arange(len(previous.members), dtype=np.int64)
    )
    spare: dict[str, list[int]] = {}  # sha256 -> live nodes holding that image's vector
    for node, row in enumerate(old_nodes.tolist()):
        if row >= 0:
            spare.setdefault(previous.members[row].sha256, []).append(node)
    nodes = np.full(len(old_nodes), -1, dtype=np.int64)
    added: list[int] = []
    for row, item in enumerate(members):
        holders = spare.get(item.sha256)
        if holders:
            nodes[holders.pop()] = row
        else:
            added.append(row)
    nodes = np.concatenate([nodes, np.asarray(added, dtype=np.int64)])  # (G,), added nodes at the end
    dead = int((nodes < 0).sum())
    if dead > DEAD_NODE_LIMIT * len(nodes):
        return None
    graph = faiss.read_index(str(index_dir / str(old.file)))  # fully read: a mapped graph cannot grow
    if added:
        graph.add(np.ascontiguousarray(block[added]))
    faiss.write_index(graph, str(tmp / file))
    if np.array_equal(nodes, np.arange(len(members))):  # only appended: node = row, no map needed
        return entry, [file]
    name = file.removesuffix(".faiss") + ".nodes.npy"
    np.save(tmp / name, nodes)
    return entry.model_copy(update={"nodes": name, "dead": dead}), [file, name]
