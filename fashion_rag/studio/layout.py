"""The studio page's three columns (person and mask, garments, result and history), as components only:
`page.py` lays them out side by side and wires their events."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr

from fashion_rag.config import CATEGORIES, DEFAULT_GUIDANCE, DEFAULT_SCHEDULER, DEFAULT_STEPS, EXAMPLES_DIR
from fashion_rag.images import FRAME_SIZE
from fashion_rag.studio import handlers
from fashion_rag.studio.categories import LABELS
from fashion_rag.studio.masks import MAX_GROW_PX

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
# What "box", "precise" and the step's pixels mean, said where they are chosen (docs/person.md has the rules).
VARIANT_INFO = (
    "box: the whole rectangle around the garment, room for a new shape (the default). "
    "precise: the outline of what is worn now, for a garment of the same shape."
)
GROW_INFO = (
    f"How far Grow and Shrink move the mask's edge, in pixels of the {FRAME_SIZE[0]}x{FRAME_SIZE[1]} edit "
    f"(1 to {MAX_GROW_PX})."
)


def person_column() -> SimpleNamespace:
    gr.Markdown("### 1 · Person", elem_classes="step-title")
    # gr.File, not gr.Image: the photo reaches load_photo undecoded, so the pixel limit is checked from
    # the header and EXIF, 16-bit and CMYK are handled as the API handles them.
    upload = gr.File(label="Person photo (PNG, JPEG, WebP …)", file_types=IMAGE_TYPES, elem_id="person-upload")
    people = sorted((EXAMPLES_DIR / "people").glob("*.png")) + sorted((EXAMPLES_DIR / "people").glob("*.jpg"))
    if people:
        gr.Examples([[str(p)] for p in people], inputs=[upload], label="Example people")
    category = gr.Radio(
        [(LABELS[c], c) for c in CATEGORIES], value="upper_body", label="Garment category", elem_id="category"
    )
    mask_editor = gr.ImageEditor(
        label="Garment mask",
        type="pil",
        elem_id="mask-editor",
        sources=(),
        transforms=(),
        layers=False,
        height=460,
        canvas_size=FRAME_SIZE,
        fixed_canvas=True,
        brush=gr.Brush(colors=["#ff0040"], default_size=24, color_mode="fixed"),
        eraser=gr.Eraser(default_size=24),
    )
    with gr.Row(elem_id="mask-tools"):
        variant = gr.Radio(
            ["box", "precise"],
            value="box",
            label="Automatic mask",
            info=VARIANT_INFO,
            elem_id="mask-variant",
            scale=2,
        )
        grow_px = gr.Number(
            8,
            precision=0,
            minimum=1,
            maximum=MAX_GROW_PX,
            label="Grow / Shrink step",
            info=GROW_INFO,
            elem_id="grow-px",
            scale=1,
        )
    with gr.Row():
        grow = gr.Button("Grow", size="sm", elem_id="mask-grow")
        shrink = gr.Button("Shrink", size="sm", elem_id="mask-shrink")
        reset = gr.Button("Reset to automatic", size="sm", elem_id="mask-reset")
        undo = gr.Button("Undo", size="sm", elem_id="mask-undo", interactive=False)
    gr.Markdown("Paint on the photo to add to the mask, erase to remove.", elem_id="mask-hint")
    notes = gr.Markdown("", elem_id="person-notes")
    with gr.Accordion("Detected pose", open=False):
        pose = gr.Image(label="Detected pose", interactive=False, elem_id="pose-preview", height=300)
    return SimpleNamespace(
        upload=upload,
        category=category,
        mask_editor=mask_editor,
        variant=variant,
        grow_px=grow_px,
        grow=grow,
        shrink=shrink,
        reset=reset,
        undo=undo,
        notes=notes,
        pose=pose,
    )


def garment_column() -> SimpleNamespace:
    gr.Markdown("### 2 · Garments", elem_classes="step-title")
    description = gr.Textbox(
        label="Describe the garment",
        elem_id="description",
        max_lines=3,
        placeholder="navy double-breasted blazer with gold buttons",
    )
    switch = gr.Button("", visible=False, size="sm", variant="secondary", elem_id="category-suggestion")
    texts = example_descriptions()
    if texts:
        gr.Examples([[t] for t in texts], inputs=[description], label="Example descriptions")
    with gr.Row(equal_height=True):
        k = gr.Slider(1, 12, value=6, step=1, label="Results", elem_id="top-k", scale=3)
        search = gr.Button("Search", variant="secondary", elem_id="search-button", scale=1)
    results = gr.Gallery(
        label="Catalog matches (click to pick, click again to drop)",
        columns=3,
        height=340,
        allow_preview=False,
        elem_id="results",
    )
    # allow_custom_value: events that read the picks while a restore or a search is replacing choices and
    # value together must not fail Gradio's choices check; the editor refuses unknown ids by name anyway.
    picks = gr.Dropdown(
        [],
        value=[],
        multiselect=True,
        max_choices=3,
        label="Picked garments, in order",
        elem_id="picks",
        allow_custom_value=True,
    )
    with gr.Row(equal_height=True):
        own = gr.File(
            label="Or add your own garment image", file_types=IMAGE_TYPES, elem_id="own-garment", height=110, scale=3
        )
        own_preview = gr.Image(
            None,
            label="Your garment",
            interactive=False,
            height=110,
            visible=False,
            scale=1,
            elem_id="own-garment-preview",
        )
    plan = gr.Markdown(handlers.plan_note([], None, ""), elem_id="plan-note")
    return SimpleNamespace(
        description=description,
        switch=switch,
        k=k,
        search=search,
        results=results,
        picks=picks,
        own=own,
        own_preview=own_preview,
        plan=plan,
    )


def result_column() -> SimpleNamespace:
    gr.Markdown("### 3 · Result", elem_classes="step-title")
    with gr.Row(equal_height=True):
        num_images = gr.Slider(1, 4, value=1, step=1, label="Samples", elem_id="num-images", scale=2)
        generate = gr.Button("Generate", variant="primary", elem_id="generate-button", scale=1)
    note = gr.Markdown("", elem_id="result-note")
    compare = gr.ImageSlider(
        label="Before / after (drag the handle)",
        type="pil",
        interactive=False,
        elem_id="compare",
        max_height=560,
        format="jpeg",
    )
    with gr.Row(equal_height=True):
        show_mask = gr.Checkbox(False, label="Show the mask over the result", elem_id="show-mask")
        # A textbox, not a Number: empty until the first edit (a Number shows 0, a seed never used).
        seed_used = gr.Textbox("", label="Seed used", interactive=False, max_lines=1, elem_id="seed-used")
    samples = gr.Gallery(
        label="Samples (click to compare)",
        columns=4,
        height=120,
        allow_preview=False,
        object_fit="contain",
        visible=False,
        elem_id="samples",
    )
    downloads = gr.File(
        label="Full-resolution results and recipe",
        file_count="multiple",
        interactive=False,
        elem_id="downloads",
        height=120,
    )
    history = gr.Gallery(
        label="History of this session (click one to restore its settings)",
        columns=4,  # ~100 px a thumbnail at 1400x900, wide enough for a garment's name (handlers.history_caption)
        height=150,
        allow_preview=False,
        object_fit="contain",
        elem_id="history",
    )
    with gr.Accordion("Advanced options", open=False, elem_id="advanced"):
        steps = gr.Slider(1, 150, value=DEFAULT_STEPS, step=1, label="Steps", elem_id="steps")
        guidance = gr.Slider(0, 30, value=DEFAULT_GUIDANCE, step=0.5, label="Guidance", elem_id="guidance")
        seed = gr.Number(value=handlers.RANDOM_SEED, precision=0, label="Seed (-1: random)", elem_id="seed")
        scheduler = gr.Radio(["ddim", "dpm++"], value=DEFAULT_SCHEDULER, label="Sampler", elem_id="scheduler")
        paste_back = gr.Checkbox(value=True, label="Paste original pixels back outside the mask", elem_id="paste-back")
    return SimpleNamespace(
        num_images=num_images,
        generate=generate,
        note=note,
        compare=compare,
        show_mask=show_mask,
        seed_used=seed_used,
        samples=samples,
        downloads=downloads,
        history=history,
        steps=steps,
        guidance=guidance,
        seed=seed,
        scheduler=scheduler,
        paste_back=paste_back,
    )


def example_descriptions() -> list[str]:
    path = EXAMPLES_DIR / "queries.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()][:8]
