"""What a build or update did: a BuildReport, with the previous index's fate as a typed value."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from fashion_rag.catalog.catalog import CatalogProblem
from fashion_rag.catalog.index.loaded import CatalogIndex


class Previous(StrEnum):
    """What became of the index that was in the target folder."""

    NONE = "none"  # there was none
    UNCHANGED = "unchanged"  # it was up to date: nothing embedded, no file written
    UPDATED = "updated"  # it was reused: only new images embedded, unchanged files linked
    REBUILT = "rebuilt"  # it could not be reused (BuildReport.rebuilt_because says why)


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did. Ids in `embedded` had their image embedded in this run; `index` is the
    index as loaded after the build (the search can use it instead of loading it again)."""

    index_dir: Path
    counts: dict[str, int]
    kinds: dict[str, str]
    embedded: tuple[str, ...]
    reused: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    problems: tuple[CatalogProblem, ...]
    previous: Previous
    rebuilt_because: str = ""  # with Previous.REBUILT: why the previous index could not be reused
    encoder: dict = field(default_factory=dict)
    resumed: int = 0  # vectors taken from the checkpoint of an interrupted build
    written: tuple[str, ...] = ()  # index files written in this run (unchanged ones are linked, not rewritten)
    index: CatalogIndex | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        counts = ", ".join(f"{c} {n} ({self.kinds[c]})" for c, n in self.counts.items())
        if self.previous is Previous.UNCHANGED:
            return f"index at {self.index_dir} is up to date: {counts}; nothing embedded, no file written"
        lines = [
            f"indexed {self.count} items into {self.index_dir}: {counts}",
            f"embedded {len(self.embedded)}, reused {self.reused}; added {len(self.added)}, changed "
            f"{len(self.changed)}, removed {len(self.removed)}",
        ]
        if self.resumed:
            lines.append(f"resumed an interrupted build: {self.resumed} vectors from its checkpoint")
        if self.previous is Previous.REBUILT:
            lines.append(f"previous index not reused: {self.rebuilt_because}")
        lines += [f"skipped {problem}" for problem in self.problems]
        return "\n".join(lines)
