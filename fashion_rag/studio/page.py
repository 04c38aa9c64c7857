"""The studio page: its three columns (built in `layout.py`) side by side, then their event wiring.

Every event calls a plain function of `handlers` (or `restoring`); this module only moves values between
components and those functions. The API endpoints are declared in `api.py`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from fashion_rag.config import AppSettings
from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.studio import api, compare, handlers, outfit, restoring, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.categories import LABELS
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.layout import garment_column, person_column, result_column
from fashion_rag.studio.progress import progress_on
from fashion_rag.studio.session import forget_closed_session
from fashion_rag.studio.status import generate_ready, status_markdown
from fashion_rag.studio.style import wire_pick_highlight
from fashion_rag.studio.uploads import uploaded_file

PRIVATE = {"api_visibility": "private"}  # the page's own events; the public API is api.py's
HOLD_TOOLS = "() => Array(4).fill({__type__: 'update', interactive: false})"  # in the browser, no round trip
# Events that decode or prepare a photo share the API's prepare lane (studio/admission.py).
PREPARE_LANE = {"concurrency_id": "prepare", "concurrency_limit": LANE_LIMITS["prepare"]}


def build_demo(editor, settings: AppSettings | None = None) -> gr.Blocks:
    """The studio page around an Editor (models load lazily on first use)."""
    settings = settings or editor.settings
    with gr.Blocks(title="Fashion-RAG studio", delete_cache=(3600, settings.output_max_age_s)) as demo:
        gr.Markdown(
            "# Fashion-RAG studio\n**1** Upload a person · **2** describe a garment and pick what the "
            "catalog finds (or pick nothing for a text-only edit) · **3** Generate and compare."
        )
        status = gr.Markdown(status_markdown(editor), elem_id="status")
        state = SimpleNamespace(person=gr.State(None), hits=gr.State([]), history=gr.State([]), current=gr.State(None))
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=340):
                person = person_column()
            with gr.Column(scale=4, min_width=340):
                garments = garment_column()
            with gr.Column(scale=5, min_width=380, elem_id="result-column"):  # sticky: style.py
                result = result_column()
        ui = SimpleNamespace(**vars(person), **vars(garments), **vars(result), state=state)
        wire_person(editor, ui)
        wire_garments(editor, ui)
        wire_category(editor, ui)
        wire_result(editor, ui)
        compare.build(editor, ui)  # 4 · Side by side (studio/compare.py), under the three columns
        outfit.build(editor, ui)  # 5 · An outfit in one go (studio/outfit.py)
        api.register(editor)
        wire_status(demo, editor, status, ui.generate)

        def on_close(request: gr.Request) -> None:
            forget_closed_session(demo, request, settings.limits.closed_session_ttl_s)  # session.py

        demo.unload(on_close)
    return demo  # its CSS (style.CSS) goes to launch(css=...): Gradio 6 reads css there only


# --------------------------------------------------------------------------------------------------
# Wiring


def wire_person(editor, ui) -> None:
    def on_photo(path, category, variant):
        with user_errors_as_gradio():
            return handlers.prepare_upload(editor, path, category, variant)

    def undo_button(undo):
        """The Undo button says how many mask-tool steps it can take back."""
        return gr.update(value=f"Undo ({len(undo)})" if undo else "Undo", interactive=bool(undo))

    def on_tool(action):
        def run(person, value, variant, pixels, undo):
            with user_errors_as_gradio():
                value, undo = handlers.mask_tool_with_undo(person, value, variant, action, pixels or 0, undo)
            return value, undo, undo_button(undo)

        return run

    def on_undo(person, undo):
        with user_errors_as_gradio():
            value, undo = handlers.undo_mask_tool(person, undo)
        return value, undo, undo_button(undo)

    inputs, outputs = [ui.upload, ui.category, ui.variant], [ui.state.person, ui.mask_editor, ui.pose, ui.notes]
    # Progress and a refusal show on the upload box (and in the toast), not as "Error" on the mask and notes.
    ui.upload.change(on_photo, inputs, outputs, show_progress_on=[ui.upload], **PREPARE_LANE, **PRIVATE)
    # The previous person's before/after, note and samples go with a new photo (history and downloads stay).
    ui.upload.change(
        lambda: (None, "", gr.update(value=None, visible=False), ""),
        None,
        [ui.compare, ui.note, ui.samples, ui.seed_used],
        **PRIVATE,
    )
    undo = gr.State([])  # masks before each Grow/Shrink/Reset, oldest first
    tool_inputs = [ui.state.person, ui.mask_editor, ui.variant, ui.grow_px, undo]
    tool_outputs = [ui.mask_editor, undo, ui.undo]
    # No progress on the editor, whose statuses Gradio applies out of order (studio/progress.py); the tools
    # answer in well under a second and the Undo count says when a step is done.
    quiet = {"show_progress": "hidden", "show_progress_on": progress_on(tool_outputs, ui.mask_editor), **PRIVATE}
    # `input`, not `change`: a history restore sets the variant and its own mask, which a reset would undo.
    ui.variant.input(on_tool("reset"), tool_inputs, tool_outputs, **quiet)
    for button, action in ((ui.grow, "grow"), (ui.shrink, "shrink"), (ui.reset, "reset")):
        button.click(on_tool(action), tool_inputs, tool_outputs, **quiet)
    ui.undo.click(on_undo, [ui.state.person, undo], tool_outputs, **quiet)
    ui.upload.change(lambda: ([], undo_button([])), None, [undo, ui.undo], **PRIVATE)  # another photo's masks

    def on_person_framed(person, undo):
        kept = handlers.undo_for(person, undo)
        return kept, undo_button(kept)

    # After a category switch or a restore the Undo count drops the steps of the other framing (handlers.undo_for).
    ui.follow_undo = lambda event: event.then(
        on_person_framed, [ui.state.person, undo], [undo, ui.undo], show_progress="hidden", **PRIVATE
    )


def wire_garments(editor, ui) -> None:
    def on_search(text, category, k):
        with user_errors_as_gradio():
            text = values.description(text, editor.settings.limits.description_chars)
            gallery, ids, choices, note = handlers.search(editor, text, category, k)
        if not ids:
            gr.Info("No catalog garment matches that description.")
        elif note:
            gr.Warning(note)
        return gallery, ids, gr.update(choices=choices, value=[])

    def on_pick(hit_ids, picks, event: gr.SelectData):
        if not 0 <= selected(event) < len(hit_ids):
            return picks  # a stale or forged click: nothing at that place any more
        picks, warning = handlers.toggle_pick(hit_ids, picks, event.index)
        if warning:
            gr.Warning(warning)
        return picks

    def on_describe(text, category):
        other = handlers.category_hint(text, category)
        return gr.update(visible=other is not None, value=handlers.hint_label(other) if other else "")

    search_inputs, search_outputs = [ui.description, ui.category, ui.k], [ui.results, ui.state.hits, ui.picks]
    lane = {"concurrency_id": "search", "concurrency_limit": LANE_LIMITS["search"]}
    ui.search.click(on_search, search_inputs, search_outputs, **lane, **PRIVATE)
    ui.description.submit(on_search, search_inputs, search_outputs, **lane, **PRIVATE)
    ui.results.select(on_pick, [ui.state.hits, ui.picks], [ui.picks], **PRIVATE)
    wire_pick_highlight(ui.picks, ui.results, ui.state.hits, PRIVATE)  # every pick marked, not the last click
    for trigger in (ui.description.change, ui.category.change):
        trigger(on_describe, [ui.description, ui.category], [ui.switch], **PRIVATE)

    def on_own(path):
        """A thumbnail of the uploaded garment, or the upload refused now (not at Generate) when unreadable."""
        if not path:
            return None, gr.update(value=None, visible=False)
        try:
            image = load_photo(path, name=Path(path).name)
        except InputError as error:
            gr.Warning(f"{error}. Your garment image was not added.")
            return None, gr.update(value=None, visible=False)
        image.thumbnail((256, 256))
        return gr.update(), gr.update(value=image, visible=True)

    ui.own.upload(on_own, [ui.own], [ui.own, ui.own_preview], **PREPARE_LANE, **PRIVATE)
    ui.own.clear(lambda: gr.update(value=None, visible=False), None, [ui.own_preview], **PRIVATE)
    for trigger in (ui.picks.change, ui.own.change, ui.description.change):
        trigger(handlers.plan_note, [ui.picks, ui.own, ui.description], [ui.plan], **PRIVATE)


def wire_category(editor, ui) -> None:
    """The user's category switch (the radio, or the suggestion button): the photo is prepared again for
    it, or the radio goes back when that is refused; picks of another category are dropped with a word and
    the results searched again. Wired to `input`, not `change`: a history restore sets the radio itself,
    and a `change` handler would race the picks it restores."""

    def on_category(path, category, variant, person, picks, hits, text, k):
        view, refusal = restoring.switch_category(editor, path, person, category, variant)
        if refusal:
            gr.Warning(refusal)
        final = view.category if view else category
        kept, dropped = handlers.picks_in_category(editor, picks, final)
        if dropped:
            gr.Info(f"Dropped {', '.join(dropped)} from the picks: not {LABELS[final]} garments.")
        found = handlers.results_for_category(editor, hits, text, final, k)
        gallery, hits = found if found is not None else (gr.update(), hits)
        picks = gr.update(choices=handlers.pick_choices(editor, hits, kept), value=kept)
        if view is None:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gallery, hits, picks
        return (
            view.state,
            kept_if_none(view.editor_value),
            kept_if_none(view.pose),
            view.notes or gr.update(),
            final if final != category else gr.update(),
            gallery,
            hits,
            picks,
        )

    def on_switch(text, category):
        return handlers.category_hint(text, category) or category

    inputs = [ui.upload, ui.category, ui.variant, ui.state.person, ui.picks, ui.state.hits, ui.description, ui.k]
    outputs = [ui.state.person, ui.mask_editor, ui.pose, ui.notes, ui.category, ui.results, ui.state.hits, ui.picks]
    shown = {"show_progress_on": progress_on(outputs, ui.mask_editor)}  # not on the editor: studio/progress.py
    # The mask tools wait for the switch, held in the browser at once: a Grow clicked meanwhile acted on the old
    # category's mask, which the switch's answer then replaced, and the step was lost without a word.
    tools = [ui.grow, ui.shrink, ui.reset, ui.undo]
    hold = {"fn": None, "inputs": None, "outputs": tools, "js": HOLD_TOOLS, **PRIVATE}
    release = lambda: [gr.update(interactive=True)] * 3  # noqa: E731  (Undo's follows its count: follow_undo)
    for held in (
        ui.category.input(**hold),
        ui.switch.click(on_switch, [ui.description, ui.category], [ui.category], **PRIVATE).then(**hold),
    ):
        switch = held.then(on_category, inputs, outputs, **shown, **PREPARE_LANE, **PRIVATE)
        ui.follow_undo(switch).then(release, None, tools[:3], show_progress="hidden", **PRIVATE)


def wire_result(editor, ui) -> None:
    def on_generate(
        person,
        value,
        variant,
        picks,
        own,
        text,
        seed,
        steps,
        guidance,
        scheduler,
        paste,
        images,
        history,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008
    ):
        with user_errors_as_gradio():
            if person is None:
                raise InputError("upload a person photo first")
            prepared = handlers.person_for_edit(editor, person, value, variant)
            own = uploaded_file(own, "garment image")
            garments = [load_photo(own, name="your garment image")] if own else []
            text = values.description(text, editor.settings.limits.description_chars)
            checked = handlers.controls(seed, steps, guidance, scheduler, images, paste)
            edit = handlers.edit_request(prepared, picks, garments, text, checked)
            track = lambda done, total: progress((done, total), desc="denoising", unit="steps")  # noqa: E731
            entry, history = handlers.generate(
                editor,
                edit,
                history,
                getattr(request, "session_hash", None),
                track,
                notes=(person.scale_note,) if person.scale_note else (),
                garment_file=own,  # kept as uploaded, for a history restore
            )
        return show_entry(entry, history, editor)

    def on_sample(current, show, event: gr.SelectData):
        if current is None or not 0 <= selected(event) < len(current.images):
            return gr.skip(), gr.skip()  # a stale or forged click: nothing at that place
        return handlers.comparison(current, event.index, show), event.index

    sample_index = gr.State(0)
    shown = [ui.compare, ui.note, ui.samples, ui.downloads, ui.seed_used]  # show_entry's values, in its order
    shown += [ui.history, ui.state.history, ui.state.current, sample_index]
    ui.generate.click(
        on_generate,
        [
            ui.state.person,
            ui.mask_editor,
            ui.variant,
            ui.picks,
            ui.own,
            ui.description,
            ui.seed,
            ui.steps,
            ui.guidance,
            ui.scheduler,
            ui.paste_back,
            ui.num_images,
            ui.state.history,
        ],
        shown,
        concurrency_limit=LANE_LIMITS["gpu"],
        concurrency_id="gpu",
        **PRIVATE,
    )
    ui.show_mask.change(handlers.comparison, [ui.state.current, sample_index, ui.show_mask], [ui.compare], **PRIVATE)
    ui.samples.select(on_sample, [ui.state.current, ui.show_mask], [ui.compare, sample_index], **PRIVATE)
    wire_history(editor, ui, shown)


def wire_history(editor, ui, shown: list) -> None:
    """A click on the history puts the page back as that entry was made (`shown`: the result outputs)."""

    def on_history(history, show, path, person, variant, hits, k, event: gr.SelectData):
        if not 0 <= selected(event) < len(history or []):
            return (gr.skip(),) * len(history_outputs)  # a stale or forged click: nothing at that place
        return restore(history[event.index], history, show, path, person, variant, hits, k)

    def restore(entry, history, show, path, person, variant, hits, k):
        """The values of `history_outputs` putting the page back to `entry` (also studio/compare.py's restore)."""
        view, words = restoring.restore_person(editor, entry, path, person, variant)
        kept, dropped = handlers.picks_in_category(editor, entry.garment_ids, view.category)
        found = handlers.results_for_category(editor, hits, entry.description, view.category, k)
        gallery, hits = found if found is not None else (gr.update(), hits)
        shown = list(show_entry(entry, history, editor))
        shown[1] += "  \n" + restoring.restore_words(entry, words, kept, dropped)
        restored = list(restoring.restored_values(entry))
        restored[0] = gr.update(choices=handlers.pick_choices(editor, hits, kept), value=kept)
        restored[2] = view.category
        person_values = [
            view.state,
            kept_if_none(view.editor_value),
            kept_if_none(view.pose),
            view.notes or gr.update(),
            view.variant,
            entry.views.get("garment"),
            gr.update(value=entry.views.get("garment"), visible="garment" in entry.views),
        ]
        return (*shown, *restored, *person_values, gallery, hits)

    restored = [
        ui.picks,
        ui.description,
        ui.category,
        ui.seed,
        ui.steps,
        ui.guidance,
        ui.scheduler,
        ui.paste_back,
        ui.num_images,
    ]
    person_outputs = [ui.state.person, ui.mask_editor, ui.pose, ui.notes, ui.variant, ui.own, ui.own_preview]
    history_outputs = shown + restored + person_outputs + [ui.results, ui.state.hits]
    history_inputs = [ui.state.history, ui.show_mask, ui.upload, ui.state.person, ui.variant, ui.state.hits, ui.k]
    shown = progress_on(history_outputs, ui.mask_editor)  # not on the editor: studio/progress.py
    picked = ui.history.select(
        on_history, history_inputs, history_outputs, show_progress_on=shown, **PREPARE_LANE, **PRIVATE
    )
    ui.follow_undo(picked)
    # studio/compare.py restores from its side-by-side gallery with these
    ui.restore = SimpleNamespace(run=restore, inputs=history_inputs, outputs=history_outputs, progress_on=shown)


def kept_if_none(value):
    """An output value, or "leave the component as it is" for None."""
    return gr.update() if value is None else value


def selected(event: gr.SelectData) -> int:
    """The clicked gallery index, -1 when the event carries none (only whole numbers are places)."""
    index = getattr(event, "index", None)
    return index if isinstance(index, int) and not isinstance(index, bool) else -1


def wire_status(demo: gr.Blocks, editor, status, generate) -> None:
    """The status line and Generate follow the background load: refreshed each second while it runs."""
    loading = not generate_ready(editor)
    timer = gr.Timer(1.0, active=loading)
    generate.interactive = not loading

    def refresh():
        ready = generate_ready(editor)
        return status_markdown(editor), gr.update(interactive=ready), gr.Timer(active=not ready)

    outputs = [status, generate, timer]
    timer.tick(refresh, None, outputs, **PRIVATE)
    demo.load(refresh, None, outputs, **PRIVATE)


def show_entry(entry, history, editor=None):
    """Component values showing one history entry (the first sample in the comparison)."""
    many = len(entry.images) > 1
    samples = gr.update(
        value=[(path, f"sample {i + 1}") for i, path in enumerate(entry.views["results"])], visible=many
    )
    gallery = [(item.views["results"][0], handlers.history_caption(editor, item)) for item in history]
    return (
        handlers.comparison(entry),
        handlers.result_note(entry, editor),
        samples,
        [*entry.images, entry.recipe],
        str(entry.seed),
        gallery,
        history,
        entry,
        0,
    )
