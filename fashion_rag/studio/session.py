"""What one browser session keeps between events, at the size the next step needs.

The page's gr.State lives on the server, per session, until the tab has been closed for
`ServingLimits.closed_session_ttl_s`. It holds a `PersonState` (not the whole PreparedPerson: its
(18, 512, 384) float32 pose map is 14 MB and the 18 keypoints rebuild it in ~5 ms) and a short history
of results, about 1 MB a session. The photo itself stays on disk where its upload put it: paste-back
needs every pixel, so the edit decodes it again (~0.1 s for 12 megapixels) instead of every open or
recently closed tab holding it in memory (36 MB for a 12-megapixel photo). It never travels back to the
browser (the comparison shows display-size copies).
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

    photo_path: str  # the uploaded file, as uploaded (in Gradio's upload folder)
    photo_size: tuple[int, int]  # (W, H) of the photo as edited: upright, scaled to the editing limit
    frame: Image.Image  # 384x512 RGB
    transform: Any  # FrameTransform
    keypoints: np.ndarray  # (18, 2) frame pixels, NaN where missing
    mask_box: np.ndarray  # (512, 384) bool, the automatic box variant
    mask_precise: np.ndarray  # (512, 384) bool, the automatic precise variant
    mask_source: str  # "parser" or "offline": where the automatic masks came from
    category: str
    notes: tuple[str, ...] = ()
    scale_note: str | None = None  # set when the photo was scaled down to the editing limit

    @classmethod
    def of(cls, prepared, photo_path: str, scale_note: str | None = None) -> PersonState:
        return cls(
            photo_path,
            prepared.original.size,
            prepared.frame,
            prepared.transform,
            prepared.keypoints,
            prepared.mask_box,
            prepared.mask_precise,
            prepared.mask_source,
            prepared.category,
            tuple(prepared.notes),
            scale_note,
        )

    def automatic_mask(self, variant: str) -> np.ndarray:
        return self.mask_box if variant == "box" else self.mask_precise

    def prepared(self, original: Image.Image, variant: str = "box"):
        """The PreparedPerson the editor takes, with the pose map rebuilt from the keypoints.

        `original` is the photo decoded again from `photo_path` (handlers.person_for_edit) at `photo_size`.
        """
        from fashion_rag.person.pose import pose_heatmaps
        from fashion_rag.person.prepare import PreparedPerson

        if original.size != self.photo_size:
            raise ValueError(f"photo decoded at {original.size}, prepared at {self.photo_size}")
        return PreparedPerson(
            original=original,
            frame=self.frame,
            transform=self.transform,
            keypoints=self.keypoints,
            pose_map=pose_heatmaps(self.keypoints),
            mask=self.automatic_mask(variant),
            mask_precise=self.mask_precise,
            mask_box=self.mask_box,
            mask_source=self.mask_source,
            category=self.category,
            mask_variant=variant,
            notes=list(self.notes),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One result of the session: its files and everything needed to set the page back to it.

    `request` is the edit's EditRequest as a dict without pixels (`EditRequest.to_dict(pixels=False)`, the recipe's
    part of the request; fashion_rag/request.py), with the seed used: the photo stays on disk (see above), and
    `EditRequest.from_dict(entry.request, person=...)` makes the typed request again.
    """

    number: int  # 1, 2, … in the order made
    images: tuple[str, ...]  # full-resolution PNGs
    recipe: str  # the recipe JSON beside them
    request: dict = field(repr=False)  # garment_ids, uploaded_garments, description, category, seed, steps, …
    prompt: str  # "text-only" or "garment-tokens" (the recipe's)
    notes: tuple[str, ...]  # what the result note adds, e.g. that the photo was scaled for the edit
    views: dict = field(repr=False)  # display-size files: "original", "mask" (photo framing), "results" (list)

    @property
    def garment_ids(self) -> tuple[str, ...]:
        return tuple(self.request["garment_ids"])

    @property
    def uploaded_garment(self) -> bool:
        return bool(self.request["uploaded_garments"])

    @property
    def description(self) -> str:
        return self.request["description"]

    @property
    def category(self) -> str:
        return self.request["category"]

    @property
    def seed(self) -> int:
        return self.request["seed"]


def add_to_history(history: list[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    """A new list, newest first, at most HISTORY_LENGTH long."""
    return [entry, *history][:HISTORY_LENGTH]


def next_number(history: list[HistoryEntry]) -> int:
    return (history[0].number + 1) if history else 1


def forget_closed_session(demo, request, ttl_s: int) -> None:
    """A closed tab's state goes `ttl_s` after its last change, not Gradio's hour.

    Gradio keeps a closed session's gr.State for SessionState.STATE_TTL_WHEN_CLOSED (3,600 s in 6.31) in
    case the tab comes back, and its sweeper drops it once that long has passed since the state last
    changed; the unload event runs when the tab's connection ends, so the session's own value is lowered.
    """
    session = demo.state_holder.session_data.get(getattr(request, "session_hash", None))
    if session is not None:
        session.STATE_TTL_WHEN_CLOSED = ttl_s
