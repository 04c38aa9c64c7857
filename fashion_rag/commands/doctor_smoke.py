"""Sections 4 and 5 of `doctor` (fashion_rag/commands/doctor.py): a short smoke edit of an example photo
(output finite and not constant, pixels outside the mask unchanged) and, with the real weights, semantic
checks that random weights fail (the retrieval encoder ranks each colour's shirt first for "a <colour> shirt";
the parser labels the example person's face as face).

Not a command: cli.COMMAND_MODULES names the commands; this module only serves `doctor`.
"""

from __future__ import annotations

import time

import numpy as np

from fashion_rag.commands.doctor_report import Report, attempt
from fashion_rag.config import REPO_ROOT

EXAMPLE_PERSON = REPO_ROOT / "examples" / "people" / "astronaut.png"
FACE_LABEL = 11  # ATR "face/head" (docs/recipe.md, mask)
COLOURS = {"red": (200, 20, 30), "blue": (25, 50, 200), "green": (30, 150, 50), "yellow": (235, 210, 30)}


def shirt_image(colour: tuple[int, int, int]):
    """A plain T-shirt of one colour on white, 384x512: a garment picture any CLIP model can name."""
    from PIL import Image, ImageDraw

    from fashion_rag.images import FRAME_SIZE

    image = Image.new("RGB", FRAME_SIZE, "white")  # the size garments are stretched to: drawn at it
    draw = ImageDraw.Draw(image)
    draw.polygon([(110, 90), (60, 130), (20, 210), (80, 235), (105, 190)], fill=colour)  # left sleeve
    draw.polygon([(274, 90), (324, 130), (364, 210), (304, 235), (279, 190)], fill=colour)  # right sleeve
    draw.polygon([(110, 90), (160, 80), (192, 105), (224, 80), (274, 90), (284, 440), (100, 440)], fill=colour)
    return image


def outside_mask_region(person, margin_frame_px: int) -> np.ndarray:
    """(H, W) bool in photo pixels: farther than `margin_frame_px` frame pixels from the mask's bounding box.

    Written from the framing transform alone (not from the paste-back code it checks): the box corners
    go through `transform.to_original`, and the margin covers the feather and resampling.
    """
    rows, cols = np.nonzero(person.mask)
    x0, x1 = cols.min() - margin_frame_px, cols.max() + margin_frame_px
    y0, y1 = rows.min() - margin_frame_px, rows.max() + margin_frame_px
    corners = person.transform.to_original(np.array([[x0, y0], [x1, y1]], dtype=np.float64))
    (ox0, oy0), (ox1, oy1) = np.floor(corners.min(axis=0)), np.ceil(corners.max(axis=0))
    height, width = person.original.height, person.original.width
    ys, xs = np.mgrid[0:height, 0:width]
    return ~((xs >= ox0) & (xs <= ox1) & (ys >= oy0) & (ys <= oy1))


def check_smoke_edit(report: Report, sources, loaded: dict, device, dtype, steps: int) -> None:
    import torch

    from fashion_rag.generation.compose import FEATHER_PX, feathered_alpha, paste_back
    from fashion_rag.generation.loading import GenerationComponents
    from fashion_rag.generation.pipeline import FashionRAGPipeline
    from fashion_rag.person.prepare import PersonPreparer

    needed = ("tokenizer", "text_encoder", "vae", "unet", "scheduler", "garment_encoder", "image_processor", "adapter")
    absent = [k for k in needed if k not in loaded]
    if absent:
        report.add("smoke edit", "smoke edit", None, "skipped: the generation parts did not all load (see above)")
        return
    started = time.perf_counter()
    components = GenerationComponents(**{k: loaded[k] for k in needed})
    pipeline = FashionRAGPipeline.from_components(components)
    pipeline.set_progress_bar_config(disable=True)
    parser_sources = sources if sources.kind == "real" else None  # a bundle's parser labels are noise
    preparer = attempt(
        report,
        "smoke edit",
        "prepare",
        "`make install` (mediapipe ships its pose model)",
        lambda: PersonPreparer.from_sources(parser_sources, device=device),
    )
    if preparer is None:
        return
    person = preparer.prepare(EXAMPLE_PERSON, "upper_body")
    loaded["person"] = person
    frames = attempt(
        report,
        "smoke edit",
        "smoke edit",
        "run with --device cpu to tell a GPU problem from a weights problem",
        lambda: pipeline(
            person.frame,
            person.mask,
            person.category,
            garment_images=[shirt_image(COLOURS["red"])],
            pose_map=person.pose_map,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(0),
        ),
    )
    if frames is None:
        return
    seconds = time.perf_counter() - started
    frame = frames[0]
    report.add(
        "smoke edit",
        "output finite",
        bool(np.isfinite(frame).all()),
        f"{steps} steps on {EXAMPLE_PERSON.name} in {seconds:.1f} s; {int((~np.isfinite(frame)).sum())} non-finite values",
        "NaNs in fp16 point at the VAE or UNet weights: try --device cpu (fp32); else re-download fashion-rag",
    )
    inside = frame[person.mask]
    spread = float(inside.std()) if inside.size else 0.0
    report.add(
        "smoke edit",
        "output not constant",
        spread > 1e-3,
        f"std {spread:.4f} inside the mask",
        "a constant picture means the decoder or UNet output is degenerate: "
        "check the sd2-inpainting and fashion-rag files above",
    )
    original = np.asarray(person.original.convert("RGB"))
    feather = FEATHER_PX
    edited = paste_back(original, np.nan_to_num(frame), feathered_alpha(person.mask, feather), person.transform.unframe)
    outside = outside_mask_region(person, margin_frame_px=feather + 2)
    changed = int((edited != original).any(axis=-1)[outside].sum())
    report.add(
        "smoke edit",
        "pixels outside the mask unchanged",
        outside.any() and changed == 0,
        f"{changed} of {int(outside.sum())} pixels outside the mask changed",
        "the paste-back broke: this is a bug, please report it with this output",
    )


def check_semantics(report: Report, sources, loaded: dict) -> None:
    if sources.kind != "real":
        reason = f"skipped: the {sources.kind} bundle has random weights, so search ranks and parser labels are noise"
        report.add("semantic", "semantic checks", None, reason)
        return
    retrieval = loaded.get("retrieval")
    if retrieval is None:
        report.add("semantic", "retrieval ranks colours", None, "skipped: the retrieval encoder did not load")
    else:
        images = retrieval.encode_images([shirt_image(rgb) for rgb in COLOURS.values()])
        texts = retrieval.encode_texts([f"a {name} shirt" for name in COLOURS])
        ranked = [list(COLOURS)[int(i)] for i in np.argmax(texts @ images.T, axis=1)]
        ok = ranked == list(COLOURS)
        report.add(
            "semantic",
            "retrieval ranks colours",
            ok,
            "best image per query: " + ", ".join(f"'a {q} shirt' -> {r}" for q, r in zip(COLOURS, ranked, strict=True)),
            "the retrieval encoder's weights are not ViT-L-14 laion2b_s32b_b82k: re-download retrieval-encoder",
        )
    parser, person = loaded.get("parser"), loaded.get("person")
    if parser is not None and person is None:  # the smoke edit did not run: keypoints of the example photo
        from fashion_rag.person.prepare import PersonPreparer

        person = attempt(
            report,
            "semantic",
            "example photo",
            "`make install` (mediapipe ships its pose model)",
            lambda: PersonPreparer.from_sources(None).prepare(EXAMPLE_PERSON, "upper_body"),
        )
    if parser is None or person is None:
        report.add("semantic", "parser labels the face", None, "skipped: the parser or the example photo did not load")
        return
    labels = parser(person.frame)
    nose = person.keypoints[0]
    if not np.isfinite(nose).all():
        report.add("semantic", "parser labels the face", None, "skipped: no nose keypoint found on the example photo")
        return
    x, y = int(round(nose[0])), int(round(nose[1]))
    patch = labels[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4]
    share = float((patch == FACE_LABEL).mean())
    report.add(
        "semantic",
        "parser labels the face",
        share >= 0.5,
        f"{share:.0%} of the pixels around the nose keypoint labelled face (label {FACE_LABEL})",
        "the clothes parser's weights are not mattmdjaga/segformer_b2_clothes: re-download clothes-parser",
    )
