"""The Fashion-RAG studio web app (Gradio). UI only: the editor does the work, models load in main().

    python app.py [--models SRC] [--catalog DIR] [--host H] [--port P] [--share]

Layout first (person, description and garments, result, advanced options), event wiring last. The
named API endpoints `prepare`, `search` and `edit` take plain values (file paths, text, numbers) so
that `gradio_client` scripts can call them; the page's own events are private.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from fashion_rag.config import CATEGORIES, REPO_ROOT, AppSettings, GenerationSettings, app_from_env, runtime_from_env
from fashion_rag.errors import CatalogIndexError, InputError, MissingWeightsError, WeightsIntegrityError

logger = logging.getLogger(__name__)

USER_ERRORS = (InputError, MissingWeightsError, WeightsIntegrityError, CatalogIndexError)
EXAMPLES_DIR = REPO_ROOT / "examples"
MASK_RGBA = (255, 0, 64, 150)  # how the mask layer shows over the photo in the brush editor
RANDOM_SEED = -1  # the seed box's value for "pick one at random"

try:  # On a Hugging Face ZeroGPU Space the GPU is attached only inside functions marked with spaces.GPU.
    import spaces

    gpu_task = spaces.GPU(duration=120)
except ImportError:

    def gpu_task(fn):
        return fn


# --------------------------------------------------------------------------------------------------
# Conversions between the editor's objects and what the components show


def mask_layer(mask: np.ndarray) -> Image.Image:
    """(512, 384) bool mask -> the RGBA layer the brush editor paints on."""
    layer = np.zeros(mask.shape + (4,), np.uint8)
    layer[mask] = MASK_RGBA
    return Image.fromarray(layer, "RGBA")


def editor_value(prepared) -> dict[str, Any]:
    return {"background": prepared.frame, "layers": [mask_layer(prepared.mask)], "composite": None}


def painted_mask(value: dict | None) -> np.ndarray | None:
    """The mask the user left in the brush editor: any painted pixel of any layer, or None."""
    if not value or not value.get("layers"):
        return None
    alpha = None
    for layer in value["layers"]:
        if layer is None:
            continue
        channel = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        alpha = channel if alpha is None else alpha | channel
    return alpha


def parse_ids(text: str | list | None) -> list[str]:
    """Catalog ids from a list or a comma-separated string (never file paths: unknown ids are refused later)."""
    if not text:
        return []
    items = text if isinstance(text, list) else str(text).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def seed_value(seed: float | int | None) -> int | None:
    """The seed box: empty or -1 means random; anything else must be a whole number."""
    if seed is None or seed == "" or seed == RANDOM_SEED:
        return None
    if float(seed) != int(float(seed)):
        raise InputError(f"seed={seed!r}: use a whole number from 0 to 4294967295, or -1 for a random one")
    return int(float(seed))


class Outputs:
    """Per-session result folders under `root`, deleted after `max_age_s`."""

    def __init__(self, root: Path, max_age_s: int) -> None:
        self.root = Path(root)
        self.max_age_s = max_age_s

    def folder(self, session: str | None) -> Path:
        self.clean()
        name = "".join(ch for ch in (session or "cli") if ch.isalnum())[:64] or "anonymous"
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def clean(self) -> None:
        if not self.root.is_dir():
            return
        cutoff = time.time() - self.max_age_s
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def status_markdown(editor) -> str:
    status = editor.status()
    kind = status["kind"]
    label = {"real": "published weights"}.get(kind, f"{kind} bundle (random weights: pictures are noise)")
    if kind == "real" and editor.missing_generation_parts():
        label = "published weights, not all present"
    lines = [f"**Models:** `{status['models']}` ({label}) · **device:** `{status['device']}`"]
    missing = editor.missing_generation_parts()
    if missing:
        lines.append(
            f"**Generate is unavailable:** missing {', '.join(missing)}. Fetch with "
            f"`python -m fashion_rag weights download {' '.join(missing)}`. Photo, mask and search still work."
        )
    elif getattr(editor, "generation_problem", None):
        lines.append(f"**Generate is unavailable:** {editor.generation_problem}. Photo, mask and search still work.")
    else:
        lines.append("**Generate:** ready (Fashion-RAG weights: CC BY-NC 4.0, non-commercial use only).")
    search = editor.searcher
    reason = f" ({search.mode_reason})" if getattr(search, "mode_reason", "") else ""
    lines.append(f"**Search:** {search.mode}{reason}")
    masks = "clothes parser" if editor.preparer.parser is not None else "offline path (pose + person segmentation)"
    lines.append(f"**Masks:** {masks}")
    return "  \n".join(lines)


# --------------------------------------------------------------------------------------------------
# The page


def build_demo(editor, settings: AppSettings | None = None) -> gr.Blocks:
    """The studio page around an Editor (models load lazily on first use)."""
    settings = settings or editor.settings
    outputs = Outputs(settings.output_dir, settings.output_max_age_s)
    example_people = sorted((EXAMPLES_DIR / "people").glob("*.png")) + sorted((EXAMPLES_DIR / "people").glob("*.jpg"))
    example_texts = _example_descriptions()

    with gr.Blocks(title="Fashion-RAG studio", delete_cache=(3600, settings.output_max_age_s)) as demo:
        prepared_state = gr.State(None)
        hits_state = gr.State([])

        gr.Markdown("# Fashion-RAG studio\nUpload a person, describe a garment, pick what the catalog finds, generate.")
        status = gr.Markdown(status_markdown(editor), elem_id="status")

        with gr.Row():
            with gr.Column(scale=1):
                gr.Markdown("### 1 · Person")
                person = gr.Image(label="Person photo", type="pil", image_mode=None, elem_id="person-upload",
                                  sources=["upload", "clipboard"], height=360)  # fmt: skip
                category = gr.Radio(list(CATEGORIES), value="upper_body", label="Garment category", elem_id="category")
                if example_people:
                    gr.Examples([[str(p)] for p in example_people], inputs=[person], label="Example people")
                mask_editor = gr.ImageEditor(
                    label="Garment mask: paint to add, erase to remove", type="pil", elem_id="mask-editor",
                    sources=(), transforms=(), layers=False, height=420, canvas_size=(384, 512), fixed_canvas=True,
                    brush=gr.Brush(colors=["#ff0040"], default_size=24, color_mode="fixed"),
                    eraser=gr.Eraser(default_size=24),
                )  # fmt: skip
                notes = gr.Markdown("", elem_id="person-notes")
                with gr.Accordion("Pose", open=False):
                    pose_preview = gr.Image(label="Detected pose", interactive=False, elem_id="pose-preview")

            with gr.Column(scale=1):
                gr.Markdown("### 2 · Garments")
                description = gr.Textbox(label="Describe the garment", elem_id="description", max_lines=3,
                                         placeholder="navy double-breasted blazer with gold buttons")  # fmt: skip
                if example_texts:
                    gr.Examples([[t] for t in example_texts], inputs=[description], label="Example descriptions")
                with gr.Row():
                    k = gr.Slider(1, 12, value=6, step=1, label="Results", elem_id="top-k")
                    search_button = gr.Button("Search", variant="secondary", elem_id="search-button")
                results = gr.Gallery(label="Catalog matches (click to pick, click again to drop)", columns=3,
                                     height=360, allow_preview=False, elem_id="results")  # fmt: skip
                picks = gr.Dropdown([], value=[], multiselect=True, max_choices=3, label="Picked garments, in order",
                                    elem_id="picks")  # fmt: skip
                own_garment = gr.Image(label="Or add your own garment image", type="pil", elem_id="own-garment",
                                       height=180)  # fmt: skip

            with gr.Column(scale=1):
                gr.Markdown("### 3 · Result")
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
                result = gr.Gallery(label="Result", columns=2, height=420, elem_id="result")
                original = gr.Image(label="Original", interactive=False, height=240, elem_id="original")
                with gr.Row():
                    seed_used = gr.Number(label="Seed used", interactive=False, precision=0, elem_id="seed-used")
                    recipe = gr.File(label="Recipe (reproduce from the CLI)", interactive=False, elem_id="recipe")
                with gr.Accordion("Advanced options", open=False, elem_id="advanced"):
                    steps = gr.Slider(1, 150, value=GenerationSettings.steps, step=1, label="Steps", elem_id="steps")
                    guidance = gr.Slider(0, 30, value=GenerationSettings.guidance, step=0.5, label="Guidance",
                                         elem_id="guidance")  # fmt: skip
                    seed = gr.Number(value=RANDOM_SEED, precision=0, label="Seed (-1: random)", elem_id="seed")
                    scheduler = gr.Radio(["ddim", "dpm++"], value=GenerationSettings.scheduler, label="Sampler",
                                         elem_id="scheduler")  # fmt: skip
                    mask_variant = gr.Radio(["box", "precise"], value="box", label="Automatic mask",
                                            elem_id="mask-variant")  # fmt: skip
                    paste_back = gr.Checkbox(value=True, label="Paste original pixels back outside the mask",
                                             elem_id="paste-back")  # fmt: skip
                    num_images = gr.Slider(1, 4, value=1, step=1, label="Images", elem_id="num-images")

        # API-only components: the named endpoints take plain values. Image inputs are gr.File, not gr.Image:
        # gr.Image would decode and convert the upload itself (16-bit clipped to white, CMYK and greyscale
        # decoded before the pixel limit, unreadable files failing with Gradio's generic error); load_photo
        # does all of that with the pixel limit checked from the header and messages that say what to upload.
        with gr.Column(visible=False):
            api_photo = gr.File(type="filepath")
            api_mask = gr.File(type="filepath")
            api_garment = gr.File(type="filepath")
            api_text = gr.Textbox()
            api_category = gr.Textbox()
            api_ids = gr.Textbox()
            api_variant = gr.Textbox()
            api_k = gr.Number(precision=0)
            api_seed = gr.Number(precision=0)
            api_steps = gr.Number(precision=0)
            api_guidance = gr.Number()
            api_scheduler = gr.Textbox()
            api_images = gr.Number(precision=0)
            api_paste = gr.Checkbox()
            api_frame = gr.Image(type="filepath")
            api_overlay = gr.Image(type="filepath")
            api_pose = gr.Image(type="filepath")
            api_json = gr.JSON()
            api_gallery = gr.Gallery()
            api_seed_out = gr.Number(precision=0)
            api_recipe = gr.File()
            api_prepare_button = gr.Button()
            api_search_button = gr.Button()
            api_edit_button = gr.Button()

        # ------------------------------------------------------------------------------------------
        # Handlers

        def prepare_person(photo, category_value, variant):
            if photo is None:
                return None, None, None, ""
            try:
                prepared = editor.prepare(photo, category_value, mask_variant=variant)
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            from fashion_rag.person.pose import draw_skeleton

            note_text = "  \n".join(prepared.notes) or f"Mask from the {prepared.mask_source} path."
            return prepared, editor_value(prepared), draw_skeleton(prepared.frame, prepared.keypoints), note_text

        def switch_variant(prepared, variant):
            if prepared is None:
                return None, gr.update()
            prepared = replace(prepared, mask_variant=variant,
                               mask=prepared.mask_box if variant == "box" else prepared.mask_precise)  # fmt: skip
            return prepared, editor_value(prepared)

        def show_matches(text, category_value, k_value):
            try:
                hits = editor.search(text, category_value, int(k_value))
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            gallery = [
                (str(editor.searcher.image_path(hit.id)), f"{rank}. {hit.caption} · {hit.score:.3f}")
                for rank, hit in enumerate(hits, start=1)
            ]
            choices = [(f"{hit.caption} ({hit.id})", hit.id) for hit in hits]
            if not hits:
                gr.Info("No catalog garment matches that description.")
            return gallery, [hit.id for hit in hits], gr.update(choices=choices, value=[])

        def toggle_pick(hit_ids, current, event: gr.SelectData):
            current = list(current or [])
            picked = hit_ids[event.index]
            if picked in current:
                current.remove(picked)
            elif len(current) >= 3:
                gr.Warning("Fashion-RAG takes at most 3 garments: drop one first.")
            else:
                current.append(picked)
            return current

        @gpu_task
        def run_edit(prepared, mask_value, ids, own, text, steps_v, guidance_v, seed_v, scheduler_v, paste_v, images_v,
                     request: gr.Request, progress=gr.Progress()):  # noqa: B008  # fmt: skip
            if prepared is None:
                raise gr.Error("Upload a person photo first.")
            try:
                user_mask = painted_mask(mask_value)
                if user_mask is not None and not np.array_equal(user_mask, prepared.mask):
                    prepared = editor.with_user_mask(prepared, user_mask)
                result_value = edit_and_save(
                    prepared, parse_ids(ids), [own] if own is not None else [], text, seed_v, steps_v, guidance_v,
                    scheduler_v, paste_v, images_v, request, progress,
                )  # fmt: skip
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            paths, used_seed, recipe_path = result_value
            return paths, prepared.original, used_seed, recipe_path

        def edit_and_save(prepared, ids, garment_images, text, seed_v, steps_v, guidance_v, scheduler_v, paste_v,
                          images_v, request, progress):  # fmt: skip
            options = replace(
                GenerationSettings(), steps=int(steps_v), guidance=float(guidance_v), scheduler=str(scheduler_v),
                num_images=int(images_v), paste_back=bool(paste_v),
            )  # fmt: skip
            track = (lambda done, total: progress((done, total), desc="denoising", unit="steps")) if progress else None
            result_value = editor.edit(prepared, garment_ids=ids, garment_images=garment_images, description=text or "",
                                       seed=seed_value(seed_v), options=options, progress=track)  # fmt: skip
            folder = outputs.folder(getattr(request, "session_hash", None))
            stamp = time.strftime("%Y%m%d-%H%M%S")
            paths = []
            for index, image in enumerate(result_value.images):
                path = folder / f"{stamp}-seed{result_value.seed}-{index + 1}.png"
                image.save(path, compress_level=1)  # ~10% larger, ~3x faster to write than level 6
                paths.append(str(path))
            recipe_path = folder / f"{stamp}-seed{result_value.seed}.recipe.json"
            recipe_path.write_text(json.dumps(result_value.recipe, indent=2) + "\n")
            return paths, result_value.seed, str(recipe_path)

        # API endpoints ------------------------------------------------------------------------------

        def api_prepare(photo_path, category_value, variant, request: gr.Request):
            """Frame, mask, overlay and pose preview of a person photo, plus keypoints and notes."""
            from fashion_rag.person.photo import load_photo
            from fashion_rag.person.pose import draw_skeleton
            from fashion_rag.person.prepare import mask_image, overlay_preview

            try:
                if not photo_path:
                    raise InputError("no photo given: send a PNG or JPEG of a person")
                prepared = editor.prepare(load_photo(photo_path), category_value, mask_variant=variant or "box")
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            folder = outputs.folder(getattr(request, "session_hash", None))
            stamp = time.strftime("%Y%m%d-%H%M%S")
            files = {}
            for name, image in (("frame", prepared.frame), ("mask", mask_image(prepared.mask)),
                                ("overlay", overlay_preview(prepared)),
                                ("pose", draw_skeleton(prepared.frame, prepared.keypoints))):  # fmt: skip
                files[name] = str(folder / f"{stamp}-{name}.png")
                image.save(files[name])
            keypoints = [None if np.isnan(p).any() else [round(float(p[0]), 1), round(float(p[1]), 1)]
                         for p in prepared.keypoints]  # fmt: skip
            info = {"mask_source": prepared.mask_source, "notes": prepared.notes, "keypoints": keypoints,
                    "transform": prepared.transform.to_dict(), "category": prepared.category}  # fmt: skip
            return files["frame"], files["mask"], files["overlay"], files["pose"], info

        def api_search(text, category_value, k_value):
            """Top-k catalog garments of a category for a description."""
            try:
                k_value = 6 if k_value is None else int(k_value)  # an explicit 0 is refused, not replaced by 6
                hits = editor.search(text, category_value, k_value)
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            return {"mode": editor.searcher.mode, "hits": [hit.to_dict() for hit in hits]}

        @gpu_task
        def api_edit(photo_path, category_value, ids, garment_path, mask_path, text, seed_v, steps_v, guidance_v,
                     scheduler_v, images_v, paste_v, request: gr.Request, progress=gr.Progress()):  # noqa: B008  # fmt: skip
            """Edit a person photo with catalog garment ids (comma-separated) and/or one garment image."""
            from fashion_rag.person.photo import load_photo

            try:
                if not photo_path:
                    raise InputError("no photo given: send a PNG or JPEG of a person")
                prepared = editor.prepare(load_photo(photo_path), category_value)
                if mask_path:
                    prepared = editor.with_user_mask(prepared, load_photo(mask_path))
                garments = [load_photo(garment_path)] if garment_path else []
                paths, used_seed, recipe_path = edit_and_save(
                    prepared, parse_ids(ids), garments, text, seed_v,
                    GenerationSettings.steps if steps_v is None else steps_v,  # 0 is refused, not 50 steps
                    GenerationSettings.guidance if guidance_v is None else guidance_v, scheduler_v or "ddim",
                    True if paste_v is None else paste_v, 1 if images_v is None else images_v, request, progress,
                )  # fmt: skip
            except USER_ERRORS as error:
                raise gr.Error(str(error)) from None
            return paths, used_seed, recipe_path

        # ------------------------------------------------------------------------------------------
        # Wiring

        private = {"api_visibility": "private"}
        person_inputs = [person, category, mask_variant]
        person_outputs = [prepared_state, mask_editor, pose_preview, notes]
        person.change(prepare_person, person_inputs, person_outputs, concurrency_id="cpu", **private)
        category.change(prepare_person, person_inputs, person_outputs, concurrency_id="cpu", **private)
        mask_variant.change(switch_variant, [prepared_state, mask_variant], [prepared_state, mask_editor], **private)
        search_inputs = [description, category, k]
        search_outputs = [results, hits_state, picks]
        search_button.click(show_matches, search_inputs, search_outputs, concurrency_id="cpu", **private)
        description.submit(show_matches, search_inputs, search_outputs, concurrency_id="cpu", **private)
        results.select(toggle_pick, [hits_state, picks], [picks], **private)
        generate_button.click(
            run_edit,
            [prepared_state, mask_editor, picks, own_garment, description, steps, guidance, seed, scheduler,
             paste_back, num_images],
            [result, original, seed_used, recipe],
            concurrency_limit=1, concurrency_id="gpu", **private,
        )  # fmt: skip

        api_prepare_button.click(api_prepare, [api_photo, api_category, api_variant],
                                 [api_frame, api_mask, api_overlay, api_pose, api_json], api_name="prepare",
                                 concurrency_id="cpu")  # fmt: skip
        api_search_button.click(api_search, [api_text, api_category, api_k], [api_json], api_name="search",
                                concurrency_id="cpu")  # fmt: skip
        api_edit_button.click(
            api_edit,
            [api_photo, api_category, api_ids, api_garment, api_mask, api_text, api_seed, api_steps, api_guidance,
             api_scheduler, api_images, api_paste],
            [api_gallery, api_seed_out, api_recipe], api_name="edit", concurrency_limit=1, concurrency_id="gpu",
        )  # fmt: skip
        demo.load(lambda: status_markdown(editor), None, status, **private)
    return demo


def _example_descriptions() -> list[str]:
    path = EXAMPLES_DIR / "queries.jsonl"
    if not path.is_file():
        return []
    texts = []
    for line in path.read_text().splitlines():
        if line.strip():
            texts.append(json.loads(line)["text"])
    return texts[:8]


# --------------------------------------------------------------------------------------------------
# Start-up


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fashion-RAG studio")
    parser.add_argument("--models", default=None, help="'default' (real weights) or a model bundle directory")
    parser.add_argument("--weights-dir", default=None, help="where downloaded weights live (default: weights/)")
    parser.add_argument("--catalog", default=None, help="catalog folder (default: examples/catalog)")
    parser.add_argument("--index", default=None, help="index folder (default: <catalog>/index)")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: auto)")
    parser.add_argument("--low-vram", action="store_true", help="model CPU offload and VAE slicing")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    parser.add_argument("--host", default=None, help="address to listen on (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=AppSettings.port)
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--max-upload-mb", type=int, default=AppSettings.max_upload_mb)
    return parser.parse_args(argv)


def fetch_weights(editor) -> None:
    """On a Space (no `make demo`), fetch what is missing at start; say so and go on if that fails."""
    from fashion_rag.weights import REGISTRY, download

    missing = [name for name in REGISTRY if not editor.sources.locate(name).found]
    if not missing:
        return
    try:
        download(missing, editor.sources)
    except USER_ERRORS as error:
        print(f"weights not fetched: {error}", flush=True)


def main(argv: list[str] | None = None) -> None:
    from fashion_rag.cli import quiet_libraries
    from fashion_rag.editor import Editor

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("fashion_rag").setLevel(logging.INFO)
    quiet_libraries()
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir, device=args.device,
                               low_vram=args.low_vram or None, compile_unet=args.compile or None)  # fmt: skip
    settings = app_from_env(runtime=runtime, catalog_dir=args.catalog, index_dir=args.index, host=args.host,
                            port=args.port, share=args.share, max_upload_mb=args.max_upload_mb)  # fmt: skip
    editor = Editor.from_settings(settings)
    if settings.on_space:
        fetch_weights(editor)
    editor.ensure_index()
    editor.load()  # once, at start-up: every request reuses the loaded models
    print(status_markdown(editor).replace("**", "").replace("`", ""), flush=True)
    demo = build_demo(editor, settings)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=settings.host, server_port=settings.port, share=settings.share,
        max_file_size=f"{settings.max_upload_mb}mb",
        allowed_paths=[str(EXAMPLES_DIR), str(settings.catalog_dir), str(settings.output_dir)],
    )  # fmt: skip


if __name__ == "__main__":
    main()
