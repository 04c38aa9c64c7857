"""An outfit in one go on the page and in the API: a top, then a bottom on its result (fashion_rag/outfit.py),
with one recipe that repeats both (`python -m fashion_rag edit --recipe OUTFIT.recipe.json --person PHOTO`).

The top takes the mask painted in the editor when the person is prepared for upper body; the bottom is
prepared on the top's result. Both use the seed and options of the page's advanced controls.
"""

# No `from __future__ import annotations`: gr.api reads the endpoint's annotations as objects (see api.py).
from types import SimpleNamespace

import gradio as gr
from gradio import FileData

from fashion_rag.config import DEFAULT_STEPS
from fashion_rag.errors import InputError
from fashion_rag.outfit import OutfitStep, dress_outfit
from fashion_rag.results import EditResult
from fashion_rag.studio import api, gpu, handlers, values
from fashion_rag.studio.admission import LANE_LIMITS
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.studio.memory import hand_back_freed_heap
from fashion_rag.studio.session import PersonState

PRIVATE = {"api_visibility": "private"}
GPU_LANE = {"concurrency_id": "gpu", "concurrency_limit": LANE_LIMITS["gpu"]}
HELP = (
    "A top and a bottom on the same photo: the top is made first and the bottom on its result, with one "
    "recipe that repeats both. Describe each part and press Enter to find it in the catalog."
)


def outfit_duration(editor, photo, parts, progress=None, **fields) -> int:
    """ZeroGPU's duration for an outfit: one edit per part (studio/gpu.py); `fields` as dress_outfit's."""
    return len(parts) * gpu.gpu_seconds(fields.get("steps", DEFAULT_STEPS), 1)


def _outfit_on_gpu(editor, photo, parts, progress=None, **fields):
    return dress_outfit(editor, photo, parts, progress, **fields)


outfit_on_gpu = gpu.gpu_function(_outfit_on_gpu, outfit_duration)


def make_outfit(editor, photo, top: OutfitStep, bottom: OutfitStep, checked: dict, session, progress=None):
    """(OutfitResult, SavedResult): the two steps made and saved, images in step order, then the one recipe.
    `checked`: handlers.controls' seed and options."""
    try:
        result = outfit_on_gpu(editor, photo, [top, bottom], progress, **checked)
        saved = editor.save_result(EditResult(result.images, [], result.seed, {}, result.recipe), session)
    finally:
        hand_back_freed_heap()  # the two edits' and the PNG encoder's freed buffers (studio/memory.py)
    return result, saved


def page_outfit(
    editor, state: PersonState | None, value, variant: str, top_id, bottom_id, checked: dict, session, progress=None
):
    """The page's outfit: the uploaded photo, the top with the painted mask when prepared for upper body."""
    if state is None:
        raise InputError("upload a person photo first")
    if not top_id or not bottom_id:
        raise InputError("an outfit needs a top and a bottom: describe each and choose one from the catalog")
    photo, _ = handlers.photo_for_editing(editor, state.photo_path)
    person = handlers.person_for_edit(editor, state, value, variant) if state.category == "upper_body" else None
    top = OutfitStep("upper_body", (str(top_id),), person=person, mask_variant=variant)
    return make_outfit(
        editor,
        photo,
        top,
        OutfitStep("lower_body", (str(bottom_id),), mask_variant=variant),
        checked,
        session,
        progress,
    )


def captions(editor, result) -> list[str]:
    names = [", ".join(editor.searcher.caption(i) for i in step["garment_ids"]) for step in result.recipe["outfit"]]
    return [f"1 · top: {names[0]}", f"2 · outfit: {names[0]} + {names[1]} · seed {result.seed}"]


# --------------------------------------------------------------------------------------------------
# The panel


def build(editor, ui) -> SimpleNamespace:
    """The outfit panel under the side-by-side one, wired to the page's person and advanced controls."""
    # Collapsed under the three columns: the sticky result column stays in view down to the page's end
    # (style.py), and the panel opens with one click.
    with gr.Accordion("5 · An outfit in one go: a top, then a bottom", open=False, elem_id="outfit-panel"):
        gr.Markdown(HELP)
        with gr.Row(equal_height=True):
            top_text = gr.Textbox(
                label="Top: describe", elem_id="outfit-top-text", max_lines=1, placeholder="striped shirt"
            )
            top = gr.Dropdown([], label="Top from the catalog", elem_id="outfit-top", allow_custom_value=True)
            bottom_text = gr.Textbox(
                label="Bottom: describe", elem_id="outfit-bottom-text", max_lines=1, placeholder="blue jeans"
            )
            bottom = gr.Dropdown([], label="Bottom from the catalog", elem_id="outfit-bottom", allow_custom_value=True)
            button = gr.Button("Dress the outfit", variant="primary", elem_id="outfit-button")
        note = gr.Markdown("", elem_id="outfit-note")
        with gr.Row(equal_height=False):
            gallery = gr.Gallery(
                label="Top, then the whole outfit",
                columns=2,
                height=420,
                allow_preview=False,
                object_fit="contain",
                elem_id="outfit-result",
                scale=3,
            )
            files = gr.File(
                label="Full-resolution results and the outfit recipe",
                file_count="multiple",
                interactive=False,
                elem_id="outfit-downloads",
                scale=1,
            )
    panel = SimpleNamespace(
        top_text=top_text,
        top=top,
        bottom_text=bottom_text,
        bottom=bottom,
        button=button,
        note=note,
        gallery=gallery,
        files=files,
    )
    wire(editor, ui, panel)
    register(editor)
    return panel


def wire(editor, ui, panel) -> None:
    def finder(category):
        def on_text(text):
            with user_errors_as_gradio():
                text = values.description(text, editor.settings.limits.description_chars)
                _, ids, choices, _ = handlers.search(editor, text, category, 6)
            return gr.update(choices=choices, value=ids[0] if ids else None)

        return on_text

    def on_outfit(
        person,
        value,
        variant,
        top,
        bottom,
        seed,
        steps,
        guidance,
        scheduler,
        paste,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio injects the progress tracker through this default)
    ):
        with user_errors_as_gradio():
            checked = handlers.controls(seed, steps, guidance, scheduler, 1, paste)
            track = lambda done, total: progress((done, total), desc="denoising", unit="steps")  # noqa: E731
            result, saved = page_outfit(
                editor, person, value, variant, top, bottom, checked, getattr(request, "session_hash", None), track
            )
        notes = "".join(f"  \n{note}" for step in result.results for note in step.notes)
        said = f"Outfit made in two steps, seed {result.seed}: the recipe repeats both.{notes}"
        return list(zip(saved.images, captions(editor, result), strict=True)), [*saved.images, saved.recipe], said

    for text, choice, category in (
        (panel.top_text, panel.top, "upper_body"),
        (panel.bottom_text, panel.bottom, "lower_body"),
    ):
        text.submit(finder(category), [text], [choice], **PRIVATE)
        text.blur(finder(category), [text], [choice], **PRIVATE)
    inputs = [
        ui.state.person,
        ui.mask_editor,
        ui.variant,
        panel.top,
        panel.bottom,
        ui.seed,
        ui.steps,
        ui.guidance,
        ui.scheduler,
        ui.paste_back,
    ]
    panel.button.click(on_outfit, inputs, [panel.gallery, panel.files, panel.note], **GPU_LANE, **PRIVATE)


# --------------------------------------------------------------------------------------------------
# The API endpoint


def outfit_endpoint_run(
    editor, photo, upper_ids, lower_ids, seed, steps, guidance, sampler, paste_back, session
) -> dict:
    """{"seed", "images": [top, outfit], "recipe"} of one outfit from a photo and catalog ids per part."""
    checked = handlers.controls(seed, steps, guidance, sampler, 1, paste_back)  # before any work
    upper, lower = api.parse_ids(upper_ids, "upper_ids"), api.parse_ids(lower_ids, "lower_ids")
    photo, _ = api.person_photo(editor, photo)
    result, saved = make_outfit(
        editor, photo, OutfitStep("upper_body", tuple(upper)), OutfitStep("lower_body", tuple(lower)), checked, session
    )
    return {
        "seed": result.seed,
        "images": [api.file_data(path) for path in saved.images],
        "recipe": api.file_data(saved.recipe),
        "notes": [n for step in result.results for n in step.notes],
    }


def register(editor) -> None:
    """Declare the `outfit` endpoint inside the current gr.Blocks."""

    def outfit_endpoint(
        photo: FileData | None,
        upper_ids: str = "",
        lower_ids: str = "",
        seed: int = -1,
        steps: int = 50,
        guidance: float = 7.5,
        sampler: str = "ddim",
        paste_back: bool = True,
        request: gr.Request = None,
    ) -> dict:
        """An outfit: the upper-body catalog garments (comma-separated ids), then the lower-body ones on that
        result, one seed for both. Returns {"seed", "images": [top, outfit], "recipe", "notes"}; the recipe
        repeats both steps with `edit --recipe`. Seed -1: random."""
        with user_errors_as_gradio():
            return outfit_endpoint_run(
                editor, photo, upper_ids, lower_ids, seed, steps, guidance, sampler, paste_back, api.session_of(request)
            )

    gr.api(outfit_endpoint, api_name="outfit", **GPU_LANE)
