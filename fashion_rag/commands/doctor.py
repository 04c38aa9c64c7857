"""`doctor [--models SRC] [--json]`: the first thing to run on a new machine, and what a bug report pastes.

It checks, in order, and reports every check (ok / FAIL / skip):

1. the machine: device, dtype, free memory and disk, the versions of the libraries that load the models;
2. every model part: where it was found, its revision or commit, and for each file its size and sha256,
   compared with the lock file (weights/), the bundle's own record (bundle.json) and the published values
   (weights/sources.json);
3. every part loaded through the loaders the product uses (strict UNet and adapter loads that name bad
   keys; the UNet's tensor count: 686 for the published checkpoint, its own config's for a bundle);
4. a short smoke edit of an example photo: output finite and not constant, pixels outside the mask unchanged;
5. with the real weights, semantic checks that random weights fail: the retrieval encoder ranks each
   colour's shirt first for "a <colour> shirt"; the parser labels the example person's face as face.
   With a bundle they are skipped, and the report says why.

Exit status 0 only when nothing failed; each failure is one line with its fix.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from fashion_rag.cli import add_models_flags, print_json
from fashion_rag.config import REPO_ROOT, runtime_from_env
from fashion_rag.weights import ADAPTER_CHECKPOINT, UNET_CHECKPOINT

EXAMPLE_PERSON = REPO_ROOT / "examples" / "people" / "astronaut.png"
LIBRARIES = ("torch", "diffusers", "transformers", "open_clip_torch", "gradio", "huggingface_hub", "safetensors")
# docs/recipe.md, sources rule 2: the published UNet state dict has exactly these many tensors and parameters.
PUBLISHED_UNET_TENSORS = 686
PUBLISHED_UNET_PARAMETERS = 865_976_964
FACE_LABEL = 11  # ATR "face/head" (docs/recipe.md, mask)
COLOURS = {"red": (200, 20, 30), "blue": (25, 50, 200), "green": (30, 150, 50), "yellow": (235, 210, 30)}


@dataclass
class Check:
    section: str
    name: str
    status: str  # "ok", "FAIL" or "skip"
    detail: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)

    def add(self, section: str, name: str, ok: bool | None, detail: str, fix: str = "") -> bool:
        status = "skip" if ok is None else ("ok" if ok else "FAIL")
        self.checks.append(Check(section, name, status, detail, fix if status == "FAIL" else ""))
        return bool(ok)

    @property
    def problems(self) -> list[str]:
        return [
            f"{c.name}: {c.detail}" + (f"; fix: {c.fix}" if c.fix else "") for c in self.checks if c.status == "FAIL"
        ]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check the machine, the model files, loading and a smoke edit")
    add_models_flags(parser)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--steps", type=int, default=3, help="denoising steps of the smoke edit (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every check")
    parser.set_defaults(run=run)


# --------------------------------------------------------------------------------------------------
# 1. The machine


def check_environment(report: Report, device, dtype, weights_dir: Path) -> None:
    import shutil

    import psutil
    import torch

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        memory = f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB GPU memory free ({torch.cuda.get_device_name(device)})"
    else:
        memory = f"{psutil.virtual_memory().available / 2**30:.1f} GiB RAM available"
    disk_dir = weights_dir if weights_dir.exists() else weights_dir.parent
    disk = shutil.disk_usage(disk_dir).free / 2**30 if disk_dir.exists() else float("nan")
    report.environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "memory": memory,
        "disk_free_gib": round(disk, 1),
        "torch_threads": torch.get_num_threads(),
    }
    missing = [name for name, version in versions.items() if version is None]
    report.add(
        "machine",
        "libraries",
        not missing,
        ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + (f"; missing {', '.join(missing)}" if missing else ""),
        "`make install` (pip install -r requirements.txt -c constraints.txt)",
    )
    report.add("machine", "device", True, f"{device}, {str(dtype).removeprefix('torch.')}; {memory}")


# --------------------------------------------------------------------------------------------------
# 2. The files of every part


def _revision_of(location, sources, lock: dict) -> str:
    if location.where == "bundle":
        return f"{sources.kind} bundle, seed {sources.bundle_info.get('seed', '?')}"
    if location.where == "hf-cache":
        return f"commit {location.path.name} (HF cache snapshot)"
    commits = {
        e.get("revision") for k, e in lock.items() if k.startswith(location.part.name + "/") and e.get("revision")
    }
    return f"commit {', '.join(sorted(commits))} (lock file)" if commits else "not recorded (placed by hand?)"


def check_files(report: Report, sources) -> dict:
    from fashion_rag.files import sha256_file
    from fashion_rag.weights import LOCK_FILE_NAME, is_default_source, known_files, read_lock

    lock = read_lock(sources.weights_dir)
    bundle_hashes = sources.bundle_info.get("sha256", {})
    locations = {}
    for location in sources.status():
        part = location.part
        name = part.name
        locations[name] = location
        if not location.found:
            fix = (
                f"`python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
                if sources.bundle_dir
                else f"`python -m fashion_rag weights download {name}` (~{part.size_gb} GB from {part.repo_id})"
            )
            report.add("files", name, False, f"missing ({part.repo_id}@{part.revision[:12]})", fix)
            report.parts[name] = {"where": "missing", "repo_id": part.repo_id, "revision": part.revision}
            continue
        revision = _revision_of(location, sources, lock)
        report.add("files", name, True, f"{location.where} {location.path}; {part.repo_id}; {revision}")
        files = {}
        for preferred in part.file_names:
            path = location.file(preferred)
            relative = str(path.relative_to(location.path))
            key = f"{name}/{relative}"
            digest, size = sha256_file(path), path.stat().st_size
            files[relative] = {"size": size, "sha256": digest}
            expected = []  # (recorded sha256, size or None, where)
            if location.where == "weights/" and key in lock:
                expected.append((lock[key]["sha256"], lock[key].get("size"), LOCK_FILE_NAME))
            if location.where == "bundle" and key in bundle_hashes:
                expected.append((bundle_hashes[key], None, "bundle.json"))
            known = known_files(part.repo_id).get(relative, {}) if is_default_source(part) else {}
            if location.where != "bundle" and known.get("sha256"):
                expected.append((known["sha256"], known.get("size"), "weights/sources.json"))
            bad = [where for sha, want_size, where in expected if sha != digest or (want_size and want_size != size)]
            matches = ", ".join(f"matches {where}" for _, _, where in expected) or "no recorded value to compare"
            fix = (
                f"delete {path} and run `python -m fashion_rag weights download {name}`"
                if location.where != "bundle"
                else f"rebuild the bundle: `python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
            )
            report.add(
                "files",
                key,
                not bad,
                f"{size:,} bytes, sha256 {digest[:16]}…, " + (f"differs from {', '.join(bad)}" if bad else matches),
                fix,
            )
        report.parts[name] = {
            "where": location.where,
            "path": str(location.path),
            "repo_id": part.repo_id,
            "revision": part.revision,
            "found_revision": revision,
            "files": files,
        }
    return locations


# --------------------------------------------------------------------------------------------------
# 3. Loading through the product's loaders


def _attempt(report: Report, section: str, name: str, fix: str, load):
    """Run `load()`; a failure of any kind becomes one FAIL line (reporting it is the point of the doctor)."""
    try:
        return load()
    except Exception as error:  # noqa: BLE001
        message = str(error).splitlines()[0] if str(error) else ""
        report.add(section, name, False, f"{type(error).__name__}: {message}"[:600], fix)
        return None


def check_loading(report: Report, sources, locations: dict, device, dtype) -> dict:
    """Load each present part; returns the loaded objects by name (absent when a part is missing or failed)."""
    from fashion_rag.generation import loading

    real = sources.kind == "real"
    loaded: dict = {}

    def fix_for(name: str) -> str:
        if sources.bundle_dir:
            return f"rebuild the bundle: `python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
        return f"delete weights/{name}/ and run `python -m fashion_rag weights download {name}`"

    def hashed(file_name: str) -> str | None:  # hashed above: the checkpoint loader need not hash it again
        return report.parts.get("fashion-rag", {}).get("files", {}).get(file_name, {}).get("sha256")

    def skip(name: str) -> bool:
        if not locations[name].found:
            report.add("load", name, None, "skipped: the part is missing")
            return True
        return False

    if not skip("sd2-inpainting"):
        sd2 = _attempt(
            report, "load", "sd2-inpainting", fix_for("sd2-inpainting"), lambda: sources.require("sd2-inpainting")
        )
        if sd2 is not None:

            def load_sd2():
                return {
                    "tokenizer": loading.load_tokenizer(sd2),
                    "text_encoder": loading.load_text_encoder(sd2, device, dtype),
                    "vae": loading.load_vae(sd2, device, dtype),
                    "scheduler": loading.load_scheduler(sd2),
                    "sd2_dir": sd2,
                }

            parts = _attempt(report, "load", "sd2-inpainting", fix_for("sd2-inpainting"), load_sd2)
            if parts is not None:
                width = parts["text_encoder"].config.hidden_size
                scaling = parts["vae"].config.scaling_factor
                prediction = parts["scheduler"].config.prediction_type
                ok = scaling == 0.18215 and prediction == "epsilon" and (width == 1024 or not real)
                report.add(
                    "load",
                    "sd2-inpainting",
                    ok,
                    f"tokenizer {len(parts['tokenizer'])} ids, text encoder width {width}, VAE scaling {scaling}, "
                    f"DDIM {prediction} prediction",
                    "the published parts have width 1024, VAE scaling 0.18215 and epsilon prediction: "
                    + fix_for("sd2-inpainting"),
                )
                if ok:
                    loaded.update(parts)

    if not skip("garment-encoder"):
        encoder = _attempt(
            report,
            "load",
            "garment-encoder",
            fix_for("garment-encoder"),
            lambda: loading.load_garment_encoder(sources.require("garment-encoder"), device, dtype),
        )
        if encoder is not None:
            hidden = encoder[0].config.hidden_size
            ok = hidden == 1280 or not real
            report.add("load", "garment-encoder", ok, f"CLIP vision tower, hidden {hidden}", fix_for("garment-encoder"))
            if ok:
                loaded["garment_encoder"], loaded["image_processor"] = encoder

    if not skip("fashion-rag") and "sd2_dir" in loaded:
        unet = _attempt(
            report,
            "load",
            f"fashion-rag/{UNET_CHECKPOINT}",
            fix_for("fashion-rag"),
            lambda: loading.load_fashion_unet(
                loaded["sd2_dir"], sources.require("fashion-rag"), device, dtype, hashed(UNET_CHECKPOINT)
            ),
        )
        if unet is not None:
            tensors = len(unet.state_dict())
            parameters = sum(p.numel() for p in unet.parameters())
            if real:
                ok = tensors == PUBLISHED_UNET_TENSORS and parameters == PUBLISHED_UNET_PARAMETERS
                want = f"published: {PUBLISHED_UNET_TENSORS} tensors, {PUBLISHED_UNET_PARAMETERS:,} parameters"
            else:
                ok, want = True, "the bundle's own UNet config"
            report.add(
                "load",
                f"fashion-rag/{UNET_CHECKPOINT}",
                ok,
                f"strict load: {tensors} tensors, {parameters:,} parameters, conv_in {unet.config.in_channels} "
                f"channels ({want})",
                fix_for("fashion-rag"),
            )
            if ok:
                loaded["unet"] = unet
        if "garment_encoder" in loaded:
            adapter = _attempt(
                report,
                "load",
                f"fashion-rag/{ADAPTER_CHECKPOINT}",
                fix_for("fashion-rag"),
                lambda: loading.load_adapter(
                    sources.require("fashion-rag"),
                    loaded["garment_encoder"].config,
                    device,
                    dtype,
                    hashed(ADAPTER_CHECKPOINT),
                ),
            )
            if adapter is not None:
                report.add(
                    "load",
                    f"fashion-rag/{ADAPTER_CHECKPOINT}",
                    True,
                    f"strict load: {len(adapter.state_dict())} tensors, {adapter.token_dim}-wide garment tokens",
                )
                loaded["adapter"] = adapter
    elif locations["fashion-rag"].found:
        report.add("load", "fashion-rag", None, "skipped: needs sd2-inpainting's UNet config, which did not load")

    if not skip("retrieval-encoder"):
        from fashion_rag.catalog.encoder import RetrievalEncoder

        retrieval = _attempt(
            report,
            "load",
            "retrieval-encoder",
            fix_for("retrieval-encoder"),
            lambda: RetrievalEncoder.from_sources(sources, device=device),
        )
        if retrieval is not None:
            report.add("load", "retrieval-encoder", True, f"open_clip, {retrieval.dim}-d embeddings")
            loaded["retrieval"] = retrieval

    if not skip("clothes-parser"):
        from fashion_rag.person.parser import ClothesParser

        parser = _attempt(
            report,
            "load",
            "clothes-parser",
            fix_for("clothes-parser"),
            lambda: ClothesParser.from_pretrained(sources.require("clothes-parser"), device),
        )
        if parser is not None:
            report.add("load", "clothes-parser", True, f"SegFormer, {parser.model.config.num_labels} ATR labels")
            loaded["parser"] = parser
    return loaded


# --------------------------------------------------------------------------------------------------
# 4. Smoke edit


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

    from fashion_rag.config import GenerationSettings
    from fashion_rag.generation.compose import feathered_alpha, paste_back
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
    preparer = _attempt(
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
    frames = _attempt(
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
    feather = GenerationSettings().feather_px
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


# --------------------------------------------------------------------------------------------------
# 5. Semantic checks (real weights only)


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

        person = _attempt(
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


# --------------------------------------------------------------------------------------------------


def diagnose(models: str, weights_dir: Path, repo_overrides: dict, device: str = "auto", steps: int = 3) -> Report:
    from fashion_rag.devices import default_dtype, pick_device
    from fashion_rag.weights import ModelSources

    report = Report()
    sources = ModelSources(models, weights_dir, repo_overrides)
    torch_device = pick_device(device)
    dtype = default_dtype(torch_device)
    check_environment(report, torch_device, dtype, sources.weights_dir)
    locations = check_files(report, sources)
    loaded = check_loading(report, sources, locations, torch_device, dtype)
    check_smoke_edit(report, sources, loaded, torch_device, dtype, steps)
    check_semantics(report, sources, loaded)
    return report


def run(args: argparse.Namespace) -> int:
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir, device=args.device)
    started = time.perf_counter()
    report = diagnose(runtime.models, runtime.weights_dir, runtime.repo_overrides, runtime.device, args.steps)
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print_json(
            {
                "models": runtime.models,
                "environment": report.environment,
                "parts": report.parts,
                "checks": [asdict(c) for c in report.checks],
                "problems": report.problems,
                "ok": not report.problems,
                "seconds": seconds,
            }
        )
    else:
        print(f"fashion-rag doctor: models {runtime.models}, weights dir {runtime.weights_dir}")
        section = None
        for check in report.checks:
            if check.section != section:
                section = check.section
                print(f"{section}:")
            print(f"  {check.status:4}  {check.name}: {check.detail}")
        print(f"{len(report.problems)} problem(s) in {seconds} s" + (":" if report.problems else ""))
        for line in report.problems:
            print(f"  {line}")
    return 1 if report.problems else 0
