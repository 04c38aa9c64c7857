"""What the page's events do, as plain functions of the editor and values (no Gradio components here,
so every step can be tested without a browser). `page.py` wires them to components.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fashion_rag.config import DEFAULT_GUIDANCE, DEFAULT_SCHEDULER, DEFAULT_STEPS
from fashion_rag.errors import InputError
from fashion_rag.person.photo import fit_megapixels, load_photo
from fashion_rag.request import RANDOM, EditRequest
from fashion_rag.studio import gpu, masks, values
from fashion_rag.studio.categories import LABELS, suggested_category
from fashion_rag.studio.memory import hand_back_freed_heap
from fashion_rag.studio.session import HistoryEntry, PersonState, add_to_history, next_number
from fashion_rag.studio.status import MASK_WORDS
from fashion_rag.studio.uploads import uploaded_file

RANDOM_SEED = RANDOM  # the seed box's value for "pick one at random": the form convention of fashion_rag/request.py
DISPLAY_LONG_SIDE = 1024  # the comparison shows copies this large at most; downloads are full size
MAX_PICKS = 3


# --------------------------------------------------------------------------------------------------
# Person and mask


def photo_for_editing(editor, path: str) -> tuple[Image.Image, str | None]:
    """An uploaded photo file, upright RGB and scaled to the editing limit, and the note saying so (or None).

    Both the page and the API take photos through here; the page decodes the same upload again at edit time.
    """
    photo = load_photo(uploaded_file(path, "photo"), name=Path(path).name)
    return fit_megapixels(photo, editor.settings.limits.edit_megapixels)


def prepare_upload(editor, path: str | None, category: str, variant: str):
    """An uploaded photo file -> (PersonState, brush-editor value, pose drawing, notes) or Nones."""
    from fashion_rag.person.pose import draw_skeleton

    if not path:
        return None, None, None, ""
    try:
        photo, scaled = photo_for_editing(editor, path)
        prepared = editor.prepare(photo, category, mask_variant=variant)
        del photo
    finally:
        hand_back_freed_heap()  # a 12-megapixel photo's decode and resize buffers (studio/memory.py)
    if scaled:
        prepared.notes.insert(0, scaled)
    state = PersonState.of(prepared, uploaded_file(path, "photo"), scaled)
    notes = "  \n".join(prepared.notes) or f"Mask {MASK_WORDS.get(prepared.mask_source, 'ready')}."
    pose = draw_skeleton(masks.shown_frame(state), state.keypoints)
    return state, masks.editor_value(state, prepared.mask), pose, notes


def mask_tool(state: PersonState | None, value: dict | None, variant: str, action: str, pixels: int = 8):
    """The brush editor's new value after "grow", "shrink" or "reset" (to the automatic `variant` mask)."""
    if state is None:
        raise InputError("upload a person photo first")
    if action == "reset":
        return masks.editor_value(state, state.automatic_mask(variant))
    painted = masks.layers_mask(value)
    current = masks.binary(painted) if painted is not None else state.automatic_mask(variant)
    step = int(pixels) if action == "grow" else -int(pixels)
    if action not in ("grow", "shrink") or int(pixels) < 1:
        raise InputError(f"mask tool {action!r} by {pixels!r} px: grow or shrink by 1 to {masks.MAX_GROW_PX} px")
    return masks.editor_value(state, masks.grow(current, step))


UNDO_DEPTH = 10  # mask-tool steps that Undo can take back (each a (512, 384) bool mask, 196 kB)
UndoStack = list[tuple[str, np.ndarray]]  # (the framing the mask belongs to, the mask before a step), oldest first


def mask_tool_with_undo(
    state: PersonState | None, value: dict | None, variant: str, action: str, pixels: int, undo: UndoStack | None
):
    """(new brush-editor value, undo stack) for "grow", "shrink" or "reset": the mask before the step is kept
    (the editor's own undo covers brush strokes only, a tool replaces its whole value)."""
    new_value = mask_tool(state, value, variant, action, pixels)
    painted = masks.layers_mask(value)
    before = masks.binary(painted) if painted is not None else state.automatic_mask(variant)
    return new_value, [*undo_for(state, undo), (framing_key(state), before)][-UNDO_DEPTH:]


def undo_mask_tool(state: PersonState | None, undo: UndoStack | None):
    """(brush-editor value before the last mask-tool step, the shorter stack); InputError with nothing to undo."""
    kept = undo_for(state, undo)
    if not kept:
        raise InputError("nothing to undo: Undo takes back Grow, Shrink and Reset steps on this photo and category")
    return masks.editor_value(state, kept[-1][1]), kept[:-1]


def undo_for(state: PersonState | None, undo: UndoStack | None) -> UndoStack:
    """The steps of `undo` made on the person as `state` frames it now. A mask of another photo or category
    (another framing, another garment region) is never put back: a switch or a restore leaves them behind."""
    if state is None:
        return []
    key = framing_key(state)
    return [entry for entry in undo or [] if entry[0] == key]


def framing_key(state: PersonState) -> str:
    """Which photo, category and frame a mask belongs to."""
    crop = ",".join(f"{k}={v}" for k, v in sorted(state.transform.to_dict().items()))
    return f"{state.photo_path}|{state.category}|{crop}"


def person_for_edit(editor, state: PersonState, value: dict | None, variant: str):
    """The PreparedPerson to edit: the automatic mask, or the painted one binarised like the API's."""
    try:
        photo, _ = photo_for_editing(editor, state.photo_path)
    except InputError as error:  # the upload was cleaned away (its age passed) or is unreadable now
        raise InputError(f"the photo is no longer available on the server ({error}): upload it again") from None
    prepared = state.prepared(photo, variant)
    painted = masks.layers_mask(value)
    if painted is not None and not np.array_equal(masks.binary(painted), prepared.mask):
        prepared = editor.with_user_mask(prepared, painted)
    return prepared


# --------------------------------------------------------------------------------------------------
# Description and garments


def search(editor, text: str, category: str, k: int):
    """(gallery items, hit ids, pick choices, a note or None) for a description. The note says when no
    caption shares a word with the description (hybrid search scores those 0: the order is by look alone)."""
    hits = editor.search(text, category, int(k))
    note = None
    if hits and editor.searcher.mode == "hybrid" and all(hit.lexical_rank is None for hit in hits):
        note = (
            f"No {LABELS[category]} caption matches “{text.strip()}”: these are only the closest by look "
            "(score 0). Try other words, such as the colour and the kind of garment."
        )
    gallery = [
        (str(editor.searcher.image_path(hit.id)), f"{rank}. {hit.caption}") for rank, hit in enumerate(hits, start=1)
    ]
    return gallery, [hit.id for hit in hits], pick_choices(editor, [hit.id for hit in hits], []), note


def pick_choices(editor, hit_ids: list[str], picks: list[str] | None) -> list[tuple[str, str]]:
    """The picks dropdown's (label, id) choices: the search hits, then picked ids not among them (a restored
    history entry's), so every picked id is a valid choice whatever the current search shows."""
    ids = list(hit_ids or []) + [i for i in picks or [] if i not in (hit_ids or [])]
    return [(garment_name(editor, i), i) for i in ids if i in editor.searcher]


def garment_name(editor, garment_id: str) -> str:
    """A catalog garment as the designer saw it among the picks: its caption, then its id in brackets."""
    if editor is None or garment_id not in editor.searcher:
        return garment_id  # no longer in the catalog: the id is all there is
    return f"{editor.searcher.caption(garment_id)} ({garment_id})"


def picks_in_category(editor, picks: list[str] | None, category: str) -> tuple[list[str], list[str]]:
    """(kept, dropped): the picks of `category`, and those of another one (or no longer in the catalog)."""
    kept = [i for i in picks or [] if i in editor.searcher and editor.searcher.category_of(i) == category]
    return kept, [i for i in picks or [] if i not in kept]


def results_for_category(editor, hit_ids: list[str], text: str, category: str, k: int):
    """(gallery, hit ids) searched again for `category` when the shown hits are of another one; None when
    they are of it already (or there are none). Without a usable description the results are cleared."""
    if not hit_ids or all(i in editor.searcher and editor.searcher.category_of(i) == category for i in hit_ids):
        return None
    try:
        gallery, ids, _, _ = search(editor, text, category, k)
    except InputError:
        return [], []
    return gallery, ids


def toggle_pick(hit_ids: list[str], picks: list[str] | None, index: int) -> tuple[list[str], str | None]:
    """Picks after clicking result `index`: added, or dropped when picked already. Second: a warning or None."""
    picks = list(picks or [])
    picked = hit_ids[index]
    if picked in picks:
        picks.remove(picked)
    elif len(picks) >= MAX_PICKS:
        return picks, f"Fashion-RAG takes at most {MAX_PICKS} garments: drop one first."
    else:
        picks.append(picked)
    return picks, None


def category_hint(text: str, selected: str) -> str | None:
    """The category to offer when the description names another one than `selected`, else None."""
    return suggested_category(text, selected)


def hint_label(category: str) -> str:
    return f"Switch to {LABELS[category]}"


def plan_note(picks: list[str] | None, own_garment: str | None, text: str) -> str:
    """What Generate will do with the current picks, said before it runs."""
    if picks or own_garment:  # an own garment is not "picked": it is named as the designer's own
        count = len(picks or [])
        parts = [f"the {count} picked garment{'s' if count > 1 else ''}"] if count else []
        parts += ["your own garment"] if own_garment else []
        return f"Generate dresses the person in {' and '.join(parts)}."
    if any(ch.isalpha() for ch in text or ""):
        return "No garment picked: Generate makes a **text-only** edit from the description."
    return "Pick 1 to 3 garments, or describe one for a text-only edit."


# --------------------------------------------------------------------------------------------------
# Generate, compare, history


def seed_value(seed: float | int | None) -> int | None:
    """The seed box: empty or -1 means random; anything else must be a whole number."""
    if seed is None or seed == "" or seed == RANDOM_SEED:
        return None
    if isinstance(seed, bool) or float(seed) != int(float(seed)):
        raise InputError(f"seed={seed!r}: use a whole number from 0 to 4294967295, or -1 for a random one")
    return int(float(seed))


def controls(seed, steps, guidance, scheduler, num_images, paste_back) -> dict[str, Any]:
    """The generation controls of the page or the API, each checked, as EditRequest fields (fashion_rag/request.py).
    The only place where the seed box's convention (-1 or empty: random) becomes the request's (None: random)."""
    return {
        "seed": seed_value(values.whole("seed", seed, RANDOM_SEED)),
        "steps": values.whole("steps", steps, DEFAULT_STEPS),  # 0 is refused, not replaced by 50
        "guidance": values.real("guidance", guidance, DEFAULT_GUIDANCE),
        "scheduler": values.choice("sampler", scheduler, DEFAULT_SCHEDULER),
        "num_images": values.whole("num_images", num_images, 1),
        "paste_back": values.flag("paste_back", paste_back, True),
    }


def edit_request(
    person,
    picks: list[str] | None,
    garment_images: list[Image.Image] | None,
    description: str | None,
    checked: dict[str, Any],
) -> EditRequest:
    """The EditRequest of a prepared person (its mask painted or not), garments, description and `controls`."""
    return EditRequest.of(
        person,
        garment_ids=tuple(picks or ()),
        garment_images=tuple(garment_images or ()),
        description=description or "",
        **checked,
    )


def generate(
    editor,
    request: EditRequest,
    history: list[HistoryEntry],
    session: str | None = None,
    progress=None,
    notes: tuple[str, ...] = (),
    garment_file: str | None = None,
):
    """Run one edit and file it: (the new HistoryEntry, the new history).

    `notes` are said with the result and kept in its recipe (e.g. that the photo was scaled for the edit).
    `garment_file` is the uploaded file the request's garment image was decoded from (kept as uploaded).
    """
    try:
        result = gpu.edit_on_gpu(editor, request, progress)
        entry = file_result(editor, request, result, history, session, notes, garment_file)
    finally:
        hand_back_freed_heap()  # the edit's and the PNG encoder's freed buffers (studio/memory.py)
    return entry, add_to_history(history, entry)


def file_result(
    editor,
    request: EditRequest,
    result,
    history: list[HistoryEntry],
    session: str | None,
    notes: tuple[str, ...] = (),
    garment_file: str | None = None,
) -> HistoryEntry:
    """An EditResult of `request` saved (images, recipe, display views) as the session's next history entry;
    `garment_file`: the upload its garment image came from, if any (save_views keeps it as uploaded)."""
    if notes:
        result.recipe["notes"] = list(notes)
    saved = editor.save_result(result, session)
    garment = (garment_file or request.garment_images[0]) if request.garment_images else None
    views = save_views(editor, request.person, result.images, saved.images, session, garment)
    return HistoryEntry(
        number=next_number(history),
        images=tuple(saved.images),
        recipe=saved.recipe,
        request={**request.to_dict(pixels=False), "seed": result.seed, "num_images": len(result.images)},
        prompt=result.recipe["prompt"],
        notes=tuple(notes),
        views=views,
    )


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, DISPLAY_LONG_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def save_views(editor, person, images: list[Image.Image], paths: list[str], session: str | None, garment=None) -> dict:
    """Display-size copies for the comparison (original, each result, the mask at the photo's framing), and
    the own garment, which a history restore puts back into the upload box: an uploaded file (a path) is
    copied byte for byte under its own name (a JPEG stays that JPEG: nothing uploaded is silently altered);
    garment pixels with no file (a caller's PIL image) are saved as a PNG."""
    size = display_size(person.original.size)
    alpha = person.transform.unframe(person.mask.astype(np.float32))  # (H, W) photo pixels
    mask = Image.fromarray((alpha >= 0.5).astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    stem = Path(paths[0]).with_suffix("").as_posix().rsplit("-", 1)[0]
    with editor.outputs.session_folder(session):
        views = {"original": f"{stem}-view-original.jpg", "mask": f"{stem}-view-mask.png", "results": []}
        person.original.resize(size, Image.Resampling.LANCZOS).save(views["original"], quality=90)
        mask.save(views["mask"])
        for index, image in enumerate(images):
            views["results"].append(f"{stem}-view-{index + 1}.jpg")
            image.resize(size, Image.Resampling.LANCZOS).save(views["results"][-1], quality=90)
        if isinstance(garment, str | Path):  # in a folder of its own, so that it keeps its name
            folder = Path(f"{stem}-garment")
            folder.mkdir(exist_ok=True)
            views["garment"] = str(shutil.copyfile(garment, folder / Path(garment).name))
        elif garment is not None:
            views["garment"] = f"{stem}-garment.png"
            garment.save(views["garment"])
    return views


def comparison(entry: HistoryEntry | None, sample: int = 0, show_mask: bool = False):
    """(original, result) display images of a history entry's `sample`, the mask tinted over the result."""
    if entry is None:
        return None
    sample = min(max(0, int(sample)), len(entry.views["results"]) - 1)
    result = Image.open(entry.views["results"][sample])
    if show_mask:
        result = masks.overlay(result, np.asarray(Image.open(entry.views["mask"])) > 127)
    return entry.views["original"], result


# A history thumbnail (~100 px wide at 1400x900 and at 390 px) shows three lines of its caption (studio/style.py),
# about 40 characters; catalog captions run to 51 (examples/catalog).
HISTORY_CAPTION_CHARS = 38


def history_caption(editor, entry: HistoryEntry) -> str:
    """A history entry as a designer names it, short enough for its thumbnail: its number and what it wore (the
    first garment's catalog caption and how many more, "your own garment", or a text-only edit's description).
    The ids stay in the entry's request and recipe; the result note of a restore names them in brackets."""
    if entry.prompt == "text-only":
        names = [f"“{entry.description.strip()}”"]
    else:
        names = [editor.searcher.caption(i) if i in editor.searcher else i for i in entry.garment_ids]
        names += ["your own garment"] if entry.uploaded_garment else []
    number, more = f"#{entry.number} · ", f" +{len(names) - 1}" if len(names) > 1 else ""
    first = shortened(names[0], HISTORY_CAPTION_CHARS - len(number) - len(more)) if names else "no garment"
    return number + first + more


def history_choice(editor, entry: HistoryEntry) -> str:
    """A history entry among the side-by-side panel's choices: its caption and its seed (two entries of the same
    garment differ by it)."""
    return f"{history_caption(editor, entry)} · seed {entry.seed}"


def shortened(text: str, chars: int) -> str:
    """`text` cut at a word boundary to at most `chars` characters, with "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    cut = text[: chars - 1].rsplit(" ", 1)[0] if " " in text[: chars - 1] else text[: chars - 1]
    return cut.rstrip(" ,.;:·") + "…"


def result_note(entry: HistoryEntry, editor=None) -> str:
    """What the last Generate did, in words: each garment by its caption (the picks show captions, so bare ids
    such as "top-005" meant nothing to a designer)."""
    if entry.prompt == "text-only":
        made = f"**Text-only edit** from the description “{entry.description}” (no garment picked)"
    else:
        garments = [garment_name(editor, i) for i in entry.garment_ids]
        garments += ["your own garment"] if entry.uploaded_garment else []
        made = f"Edit with {', '.join(garments)}"
    count = len(entry.images)
    said = "".join(f"  \n{note}" for note in entry.notes)
    return f"{made} · seed {entry.seed} · {count} sample{'s' if count > 1 else ''}{said}"
