"""What one browser session keeps between events, at the size the next step needs.

The page's gr.State lives on the server, per session. It holds a `PersonState` (not the whole
PreparedPerson: its (18, 512, 384) float32 pose map is 14 MB and the 18 keypoints rebuild it in ~5 ms)
and a short history of results. The original photo is kept at full resolution because paste-back needs
it; it never travels back to the browser (the comparison shows display-size copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

HISTORY_LENGTH = 12  # results remembered per session (newest first); older ones drop off


@dataclass(frozen=True)
class PersonState:
    """A prepared person without its pose map."""

    original: Image.Image  # the upright RGB photo at its own size (paste-back needs every pixel)
    frame: Image.Image  # 384x512 RGB
    transform: Any  # FrameTransform
    keypoints: np.ndarray  # (18, 2) frame pixels, NaN where missing
    mask_box: np.ndarray  # (512, 384) bool, the automatic box variant
    mask_precise: np.ndarray  # (512, 384) bool, the automatic precise variant
    mask_source: str  # "parser" or "offline": where the automatic masks came from
    category: str
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, prepared) -> PersonState:
        return cls(prepared.original, prepared.frame, prepared.transform, prepared.keypoints, prepared.mask_box,
                   prepared.mask_precise, prepared.mask_source, prepared.category, tuple(prepared.notes))  # fmt: skip

    def automatic_mask(self, variant: str) -> np.ndarray:
        return self.mask_box if variant == "box" else self.mask_precise

    def prepared(self, variant: str = "box"):
        """The PreparedPerson the editor takes, with the pose map rebuilt from the keypoints."""
        from fashion_rag.person.pose import pose_heatmaps
        from fashion_rag.person.prepare import PreparedPerson

        return PreparedPerson(
            original=self.original, frame=self.frame, transform=self.transform, keypoints=self.keypoints,
            pose_map=pose_heatmaps(self.keypoints), mask=self.automatic_mask(variant), mask_precise=self.mask_precise,
            mask_box=self.mask_box, mask_source=self.mask_source, category=self.category, mask_variant=variant,
            notes=list(self.notes),
        )  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The page's generation controls, as a history entry remembers them."""

    seed: int
    steps: int
    guidance: float
    scheduler: str
    num_images: int
    paste_back: bool


@dataclass(frozen=True)
class HistoryEntry:
    """One result of the session: its files and everything needed to set the page back to it."""

    number: int  # 1, 2, … in the order made
    images: tuple[str, ...]  # full-resolution PNGs
    recipe: str  # the recipe JSON beside them
    garment_ids: tuple[str, ...]
    uploaded_garment: bool
    description: str
    category: str
    prompt: str  # "text-only" or "garment-tokens" (the recipe's)
    settings: Settings
    views: dict = field(repr=False)  # display-size files: "original", "mask" (photo framing), "results" (list)

    @property
    def caption(self) -> str:
        garments = "text-only" if self.prompt == "text-only" else ", ".join(self.garment_ids) or "own garment"
        return f"#{self.number} · seed {self.settings.seed} · {garments} · {self.settings.steps} steps"


def add_to_history(history: list[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    """A new list, newest first, at most HISTORY_LENGTH long."""
    return [entry, *history][:HISTORY_LENGTH]


def next_number(history: list[HistoryEntry]) -> int:
    return (history[0].number + 1) if history else 1
