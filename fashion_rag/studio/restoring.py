"""A history restore and a category switch, as plain functions: what the person column shows then
(`PersonView`), and the page's controls as they were for a history entry. `page.py` wires them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.person.mask_codec import decode_mask
from fashion_rag.studio import masks
from fashion_rag.studio.categories import LABELS
from fashion_rag.studio.handlers import prepare_upload
from fashion_rag.studio.session import HistoryEntry, PersonState


def restored_values(entry: HistoryEntry) -> tuple:
    """The page's controls as they were for `entry`: picks, description, category, seed, steps, guidance,
    sampler, paste-back, samples (the seed is the one used, so Generate makes the same picture again)."""
    r = entry.request
    return (
        list(entry.garment_ids),
        entry.description,
        entry.category,
        entry.seed,
        r["steps"],
        r["guidance"],
        r["scheduler"],
        r["paste_back"],
        r["num_images"],
    )


@dataclass
class PersonView:
    """What the person column shows: state, brush-editor value, pose drawing, notes, category, mask variant."""

    state: PersonState | None
    editor_value: dict | None
    pose: Image.Image | None
    notes: str
    category: str
    variant: str


def switch_category(editor, path: str | None, state: PersonState | None, category: str, variant: str):
    """(PersonView or None when nothing changes, refusal message or None) for the category radio's change.

    The photo is prepared again for the new category; when that is refused (say dresses on a half-body
    photo) the view keeps the prepared person and puts the radio back to its category.
    """
    if not path or (state is not None and state.category == category):
        return None, None
    try:
        new_state, value, pose, notes = prepare_upload(editor, path, category, variant)
    except InputError as error:
        if state is None:
            return None, str(error)
        return PersonView(state, None, None, "", state.category, variant), f"{error} (kept {LABELS[state.category]})"
    return PersonView(new_state, value, pose, notes, category, variant), None


def restore_person(editor, entry: HistoryEntry, path: str | None, state: PersonState | None, variant: str):
    """(PersonView, words) putting the person column back as `entry` was made: its category (the photo
    prepared again if it differs), its mask variant and its mask when the entry was made on this photo's
    framing; otherwise the automatic mask, said in words."""
    recipe = json.loads(Path(entry.recipe).read_text())
    variant = recipe.get("mask_variant", variant)
    view, refusal = switch_category(editor, path, state, entry.category, variant)
    words = [refusal] if refusal else []
    if view is None:
        view = PersonView(state, None, None, "", state.category if state else entry.category, variant)
    if view.state is None:
        return view, words
    same_photo = recipe.get("transform") == view.state.transform.to_dict() and view.category == entry.category
    if same_photo and "mask" in recipe:
        view.editor_value = masks.editor_value(view.state, decode_mask(recipe["mask"]))
        words.append(f"the mask of #{entry.number} is back in the editor")
    else:
        view.editor_value = masks.editor_value(view.state, view.state.automatic_mask(variant))
        words.append(f"#{entry.number} was made on another photo: the editor shows this photo's automatic mask")
    return view, words


def restore_words(entry: HistoryEntry, person_words: list[str], kept: list[str], dropped: list[str]) -> str:
    """What a history restore did, for the result note: the seed is fixed from now on, and why."""
    words = [f"Restored the settings of #{entry.number}", *person_words]
    if dropped:
        words.append(f"dropped {', '.join(dropped)} (another category)")
    if entry.uploaded_garment and not entry.views.get("garment"):
        words.append("upload your own garment again")
    words.append(f"seed {entry.seed} is now fixed, so Generate repeats it: set the seed to -1 for new ones")
    return "; ".join(words) + "."
