"""Side by side: one result per picked garment (or per search result when none is picked), made in one batch
with the same person, mask and seed (fashion_rag/alternatives.py); or two history entries next to each other.

Each result is a history entry: its files download from the panel, and a click puts its settings back into
the main controls (the page's history restore), so Generate makes that picture alone again (up to the batch's
float order: within 2 grey levels on the CPU, tests/test_compare_outfit.py). The `compare`
API endpoint makes the same comparison from a photo and garment ids.
"""

# No `from __future__ import annotations`: gr.api reads the endpoint's annotations as objects (see api.py).
from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
from gradio import FileData

from fashion_rag.alternatives import MAX_ALTERNATIVES, edit_alternatives
from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.request import EditRequest
from fashion_rag.studio import gpu, handlers, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.memory import hand_back_freed_heap
from fashion_rag.studio.session import HistoryEntry, add_to_history
from fashion_rag.studio.uploads import uploaded_file

PRIVATE = {"api_visibility": "private"}
GPU_LANE = {"concurrency_id": "gpu", "concurrency_limit": LANE_LIMITS["gpu"]}
HELP = (
    f"**Compare picks** makes one result per picked garment (or per search result when none is picked, "
    f"at most {MAX_ALTERNATIVES}) on the same person, mask and seed, in one batch. Click a result to restore "
    "its settings. Or choose two history entries to see them side by side."
)


# --------------------------------------------------------------------------------------------------
# What the events do (plain functions, tested without a browser)


def compare_duration(editor, request: EditRequest, alternatives, progress=None) -> int:
    """ZeroGPU's duration for a comparison: one batch of n images (studio/gpu.py)."""
    return gpu.gpu_seconds(request.steps, len(alternatives))


def _compare_on_gpu(editor, request: EditRequest, alternatives, progress=None):
    return edit_alternatives(editor, request, alternatives, progress)


compare_on_gpu = gpu.gpu_function(_compare_on_gpu, compare_duration)


def alternatives_of(picks: list[str] | None, own_path: str | None, hits: list[str] | None):
    """(catalog ids, images) per alternative: each pick and the own garment, else the first search results."""
    own = uploaded_file(own_path, "garment image")
    alternatives = [((garment_id,), ()) for garment_id in picks or []]
    if own:
        alternatives.append(((), (load_photo(own, name="your garment image"),)))
    if not alternatives:
        alternatives = [((garment_id,), ()) for garment_id in (hits or [])[:MAX_ALTERNATIVES]]
    if not alternatives:
        raise InputError("nothing to compare: search the catalog (or pick garments) first")
    return alternatives


def compare(
    editor,
    request: EditRequest,
    alternatives,
    history: list[HistoryEntry],
    session: str | None,
    progress=None,
    notes: tuple[str, ...] = (),
    garment_file: str | None = None,
) -> tuple[list[HistoryEntry], list[HistoryEntry]]:
    """(one history entry per alternative in their order, the new history) of one batched comparison of `request`'s
    person, mask, seed and options; each entry's request is `request` with the alternative's garments.
    `garment_file`: the upload the own garment's alternative was decoded from (its entry keeps it as uploaded)."""
    try:
        results = compare_on_gpu(editor, request, alternatives, progress)
        entries = []
        for (ids, images), result in zip(alternatives, results, strict=True):
            alone = replace(request, garment_ids=ids, garment_images=images, num_images=1)
            entry = handlers.file_result(editor, alone, result, history, session, notes, garment_file)
            entries.append(entry)
            history = add_to_history(history, entry)
    finally:
        hand_back_freed_heap()  # the batch's and the PNG encoder's freed buffers (studio/memory.py)
    return entries, history


def garment_name(editor, entry: HistoryEntry) -> str:
    """A side-by-side caption: the entry's number and its garments by name (catalog caption and id)."""
    names = [handlers.garment_name(editor, i) for i in entry.garment_ids]
    names += ["your own garment"] if entry.uploaded_garment else []
    return f"#{entry.number} · {', '.join(names) or 'text-only: ' + entry.description} · seed {entry.seed}"


def side_by_side(editor, entries: list[HistoryEntry]):
    """(gallery items with captions, downloadable files) of entries shown next to each other."""
    gallery = [(entry.views["results"][0], garment_name(editor, entry)) for entry in entries]
    files = [path for entry in entries for path in (*entry.images, entry.recipe)]
    return gallery, files


def history_choices(editor, history: list[HistoryEntry] | None) -> list[tuple[str, int]]:
    """The "two history entries" choices: each entry by its garments' names and its seed."""
    return [(handlers.history_choice(editor, entry), entry.number) for entry in history or []]


def entries_numbered(history: list[HistoryEntry] | None, numbers: list[int] | None) -> list[HistoryEntry]:
    """The history entries of `numbers`, oldest first (numbers no longer in the history are left out)."""
    chosen = {int(n) for n in numbers or [] if not isinstance(n, bool) and str(n).lstrip("-").isdigit()}
    return sorted((e for e in history or [] if e.number in chosen), key=lambda e: e.number)


# --------------------------------------------------------------------------------------------------
# The panel: layout and wiring


def build(editor, ui) -> SimpleNamespace:
    """The side-by-side panel under the page's columns, wired to the page's controls (`ui` from page.py)."""
    # Collapsed under the three columns: the sticky result column stays in view down to the page's end
    # (style.py), and the panel opens with one click.
    with gr.Accordion("4 · Side by side: compare picks, or two history entries", open=False, elem_id="side-panel"):
        gr.Markdown(HELP)
        with gr.Row(equal_height=True):
            button = gr.Button("Compare picks", variant="secondary", elem_id="compare-picks", scale=1)
            pair = gr.Dropdown(
                [],
                value=[],
                multiselect=True,
                max_choices=2,
                label="Or two history entries",
                elem_id="history-pair",
                scale=3,
            )
        note = gr.Markdown("", elem_id="side-note")
        gallery = gr.Gallery(
            label="Side by side (click one to restore its settings)",
            columns=MAX_ALTERNATIVES,
            height=420,
            allow_preview=False,
            object_fit="contain",
            elem_id="side-by-side",
        )
        files = gr.File(
            label="Their full-resolution results and recipes",
            file_count="multiple",
            interactive=False,
            elem_id="side-downloads",
            height=110,
        )
    panel = SimpleNamespace(button=button, pair=pair, note=note, gallery=gallery, files=files, entries=gr.State([]))
    wire(editor, ui, panel)
    register(editor)
    return panel


def wire(editor, ui, panel) -> None:
    def on_compare(
        person,
        value,
        variant,
        picks,
        own,
        hits,
        seed,
        steps,
        guidance,
        scheduler,
        paste,
        history,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio injects the progress tracker through this default)
    ):
        with user_errors_as_gradio():
            if person is None:
                raise InputError("upload a person photo first")
            prepared = handlers.person_for_edit(editor, person, value, variant)
            own = uploaded_file(own, "garment image")
            alternatives = alternatives_of(picks, own, hits)
            checked = handlers.controls(seed, steps, guidance, scheduler, 1, paste)  # one image per alternative
            track = lambda done, total: progress((done, total), desc="denoising", unit="steps")  # noqa: E731
            entries, history = compare(
                editor,
                handlers.edit_request(prepared, [], [], "", checked),
                alternatives,
                history,
                getattr(request, "session_hash", None),
                track,
                notes=(person.scale_note,) if person.scale_note else (),
                garment_file=own,  # kept as uploaded, for a history restore
            )
        gallery, files = side_by_side(editor, entries)
        said = (
            f"Compared {len(entries)} garments in one batch, seed {entries[0].seed}: click one to restore its settings."
        )
        shown = [(item.views["results"][0], handlers.history_caption(editor, item)) for item in history]
        return gallery, files, said, entries, shown, history

    def on_pair(numbers, history):
        entries = entries_numbered(history, numbers)
        if len(entries) < 2:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        gallery, files = side_by_side(editor, entries)
        return gallery, files, f"History #{entries[0].number} and #{entries[1].number} side by side.", entries

    def on_side_pick(entries, history, show, path, person, variant, hits, k, event: gr.SelectData):
        index = event.index if isinstance(event.index, int) and not isinstance(event.index, bool) else -1
        if not 0 <= index < len(entries or []):
            return (gr.skip(),) * len(ui.restore.outputs)  # a stale or forged click
        return ui.restore.run(entries[index], history, show, path, person, variant, hits, k)  # page.py's restore

    inputs = [
        ui.state.person,
        ui.mask_editor,
        ui.variant,
        ui.picks,
        ui.own,
        ui.state.hits,
        ui.seed,
        ui.steps,
        ui.guidance,
        ui.scheduler,
        ui.paste_back,
        ui.state.history,
    ]
    shown = [panel.gallery, panel.files, panel.note, panel.entries]
    panel.button.click(on_compare, inputs, [*shown, ui.history, ui.state.history], **GPU_LANE, **PRIVATE)
    panel.pair.input(on_pair, [panel.pair, ui.state.history], shown, **PRIVATE)
    # The history gallery, not its gr.State: a State's change event hashes its value (entries hold dicts).
    ui.history.change(
        lambda history: gr.update(choices=history_choices(editor, history)), [ui.state.history], [panel.pair], **PRIVATE
    )
    restoring = {"show_progress_on": ui.restore.progress_on, **PRIVATE}  # not on the mask editor: progress.py
    ui.follow_undo(
        panel.gallery.select(on_side_pick, [panel.entries, *ui.restore.inputs], ui.restore.outputs, **restoring)
    )


# --------------------------------------------------------------------------------------------------
# The API endpoint


def compare_endpoint_run(
    editor, photo, category, garment_ids, mask, seed, steps, guidance, sampler, paste_back, session
) -> dict:
    """{"seed", "results": [{"garment_ids", "caption", "image", "recipe"}]} of one batched comparison."""
    from fashion_rag.studio import api
    from fashion_rag.studio.masks import load_mask

    checked = handlers.controls(seed, steps, guidance, sampler, 1, paste_back)  # before any work
    ids = api.parse_ids(garment_ids)
    if not ids:
        raise InputError("garment_ids: give 1 to 4 catalog ids, comma-separated, one result each")
    twice = sorted({i for i in ids if ids.count(i) > 1})  # same seed and mask: a repeated id repeats its result
    if twice:
        raise InputError(f"garment_ids: {', '.join(twice)} given more than once: give each catalog id once")
    photo, scaled = api.person_photo(editor, photo)
    person = editor.prepare(photo, values.choice("category", category, None))
    mask_path = uploaded_file(mask, "mask")
    if mask_path:
        person = editor.with_user_mask(person, load_mask(mask_path))
    entries, _ = compare(
        editor,
        handlers.edit_request(person, [], [], "", checked),
        [((i,), ()) for i in ids],
        [],
        session,
        notes=(scaled,) if scaled else (),
    )
    results = [
        {
            "garment_ids": list(e.garment_ids),
            "caption": garment_name(editor, e),
            "image": api.file_data(e.images[0]),
            "recipe": api.file_data(e.recipe),
        }
        for e in entries
    ]
    return {"seed": entries[0].seed, "results": results}


def register(editor) -> None:
    """Declare the `compare` endpoint inside the current gr.Blocks."""
    from fashion_rag.studio.api import session_of

    def compare_endpoint(
        photo: FileData | None,
        category: str = "upper_body",
        garment_ids: str = "",
        mask: FileData | None = None,
        seed: int = -1,
        steps: int = 50,
        guidance: float = 7.5,
        sampler: str = "ddim",
        paste_back: bool = True,
        request: gr.Request = None,
    ) -> dict:
        """One result per catalog garment id (comma-separated, 1 to 4) on the same person, mask and seed, made in
        one batch. Returns {"seed", "results": [{"garment_ids", "caption", "image", "recipe"}]}. Seed -1: random."""
        with user_errors_as_gradio():
            return compare_endpoint_run(
                editor,
                photo,
                category,
                garment_ids,
                mask,
                seed,
                steps,
                guidance,
                sampler,
                paste_back,
                session_of(request),
            )

    gr.api(compare_endpoint, api_name="compare", **GPU_LANE)
