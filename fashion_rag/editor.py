"""The editor: one object that composes the stages. The UI, the CLI and the tests all call it.

    editor = Editor.from_settings(settings)          # nothing heavy yet
    person = editor.prepare(photo, "upper_body")     # frame, pose, mask (person/)
    hits = editor.search("navy blazer", "upper_body")  # catalog search (catalog/)
    result = editor.edit(EditRequest.of(person, garment_ids=[hits[0].id], seed=7))  # generation/
    result = editor.run(EditRequest("upper_body", photo=photo, garment_ids=[hits[0].id]))  # prepare, then edit

An edit is described by one EditRequest (request.py): `edit` takes one whose person is prepared, `run` prepares
its photo first.

Models load lazily on first use, or all at once with `load()` (the app does this at start-up).
The stages themselves are built in stages.py; the EditResult, its seed, images and recipe in results.py.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from fashion_rag.config import AppSettings
from fashion_rag.errors import (
    GpuOutOfMemoryError,
    InputError,
    ModelsLoadingError,
    WeightsIntegrityError,
    check_category,
)
from fashion_rag.files import sha256_file
from fashion_rag.generation.limits import MAX_GARMENTS, MAX_IMAGES, SCHEDULERS, check_options
from fashion_rag.images import to_rgb
from fashion_rag.outputs import Outputs, SavedResult, save_previews, save_result
from fashion_rag.results import EditResult, check_seed, compose_images, edit_recipe, public_name
from fashion_rag.stages import Stages
from fashion_rag.startup import LoadProgress, run_load
from fashion_rag.weights import GENERATION_PARTS, ModelSources

# torch, diffusers and transformers are imported where a model is built or run, not here: the app imports
# this module before its page is up (docs/PERFORMANCE.md, "Start-up").
if TYPE_CHECKING:
    import torch

    from fashion_rag.generation.garment_cache import GarmentTokenCache
    from fashion_rag.generation.pipeline import FashionRAGPipeline
    from fashion_rag.request import EditRequest

logger = logging.getLogger(__name__)


class Editor(Stages):  # the lazily built stages: stages.py
    def __init__(self, settings: AppSettings, sources: ModelSources) -> None:
        self.settings = settings
        self.sources = sources
        self._pipeline: FashionRAGPipeline | None = None
        self._preparer = None
        self._search = None
        self._index = None  # the CatalogIndex loaded by ensure_index, until searcher takes it
        self._retrieval_encoder = None
        self._cache: GarmentTokenCache | None = None
        # One lock per part, so a photo or a search is served while the generation models load.
        self._locks = {part: threading.Lock() for part in ("person", "encoder", "search", "pipeline")}
        self.progress = LoadProgress()  # the app's background load (startup.py); idle elsewhere
        self._generation_lock = threading.Lock()  # one GPU job at a time
        self.device = None
        self.generation_problem: str | None = None  # why generation failed to load (a checkpoint failed verification)
        self.outputs = Outputs(
            settings.output_dir, settings.output_max_age_s, max_bytes=int(settings.limits.output_gb * 2**30)
        )

    @classmethod
    def from_settings(cls, settings: AppSettings) -> Editor:
        runtime = settings.runtime
        return cls(settings, ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides))

    # ----------------------------------------------------------------------------------------------
    # What is available

    def missing_generation_parts(self) -> list[str]:
        return [name for name in GENERATION_PARTS if not self.sources.locate(name).found]

    def status(self) -> dict[str, Any]:
        from fashion_rag.devices import pick_device

        device = self.device or pick_device(self.settings.runtime.device)
        return {
            "models": public_name(self.sources.models),
            "kind": self.sources.kind,
            "device": str(device),
            "parts": self.sources.describe(),
            "generation_ready": not self.missing_generation_parts(),
        }

    def load(self, progress: LoadProgress | None = None) -> None:
        """Load everything that is available now; with `progress` (the app's background load), bring the
        catalog index up to date first and report each step.

        A generation checkpoint that fails verification does not stop the rest: photo, mask and search
        still load, `generation_problem` says what is wrong, and every edit refuses with that message.
        """
        progress = progress or LoadProgress()
        with progress.step("person models"):
            self.preparer  # noqa: B018 - properties load on first access
        with progress.step("catalog index"):
            if progress.loading:
                self.ensure_index()
            self.searcher  # noqa: B018
        if not self.missing_generation_parts():
            try:
                with progress.step("generation models"):
                    pipeline = self._load_pipeline(warm_up=False)
                with progress.step("warm-up"):
                    pipeline.warm_up()
            except WeightsIntegrityError as error:
                self.generation_problem = str(error)
                logger.warning("generation is unavailable: %s", error)

    def load_in_background(self, before=None) -> threading.Thread:
        """Load in a daemon thread (`before(editor)` first, e.g. a Space's weight fetch); `progress` says how far."""
        if not self.progress.loading:
            self.progress.begin()
        thread = threading.Thread(target=run_load, args=(self, self.progress, before), name="load-models", daemon=True)
        thread.start()
        return thread

    def check_generation_ready(self) -> None:
        """ModelsLoadingError while the background load runs: its last steps load the generation models and
        capture their CUDA graphs, which must not overlap an edit."""
        if self.progress.loading:
            raise ModelsLoadingError(
                f"models still loading ({self.progress.percent}%): Generate works once the status line says ready"
            )

    # ----------------------------------------------------------------------------------------------
    # The three operations

    def prepare(self, photo, category: str, mask_variant: str = "box"):
        """A PreparedPerson: frame, transform, keypoints, pose map and the automatic mask."""
        return self.preparer.prepare(photo, check_category(category), mask_variant=mask_variant)

    def with_user_mask(self, prepared, mask_image):
        """The same PreparedPerson with the user's edited mask."""
        return self.preparer.apply_user_mask(prepared, mask_image)

    def search(self, text: str, category: str, k: int = 6):
        return self.searcher.search(text, check_category(category), k)

    def garment_tokens(self, garment_ids: list[str], garment_images: list[Image.Image]) -> torch.Tensor:
        """(n, 16, width) tokens: catalog garments first (in the order picked), then uploaded images.

        Each is looked up in the token cache (key: file or pixel sha256 + encoder identity) and
        encoded only on a miss.
        """
        import torch

        from fashion_rag.generation.garment_cache import image_key

        pipeline = self.pipeline
        keyed: list[tuple[str, Image.Image | Path]] = []
        for garment_id in garment_ids:
            path = self.searcher.image_path(garment_id)  # InputError for an unknown id
            if not path.is_file():
                raise InputError(
                    f"catalog image of {garment_id!r} is missing on disk: rebuild the index (`index build`)"
                )
            keyed.append((sha256_file(path), path))  # hashing the file: a changed image never hits a stale entry
        for image in garment_images:
            keyed.append((image_key(image), image))
        tokens = []
        for key, source in keyed:
            cached = self.garment_cache.get(key)
            if cached is None:
                image = source if isinstance(source, Image.Image) else _open_catalog_image(source)
                cached = pipeline.encode_garments([image])[0].float().cpu()
                self.garment_cache.put(key, cached)
            tokens.append(cached)
        return torch.stack(tokens)

    def edit(self, request: EditRequest, progress=None) -> EditResult:
        """Repaint the masked garment region of the request's prepared person (`EditRequest.of(person, ...)`) with
        its garments, or from its description alone when it has none. `run` takes a request with a photo."""
        self.check_generation_ready()
        if request.person is None:
            raise InputError("Editor.edit needs a prepared person (EditRequest.of(person, ...)): use Editor.run")
        self._check_edit(request)
        request = replace(request, seed=check_seed(request.seed))  # the seed used: the recipe's
        person = request.person.prepared(request.category)  # the pose map, from the keypoints
        count = len(request.garment_ids) + len(request.garment_images)
        import torch

        timings: dict[str, float] = {}

        with self._generation_lock:
            started = time.perf_counter()
            pipeline = self.pipeline
            # No garment: the text-only prompt (recipe garment tokens rule 8) carries the description.
            tokens = self.garment_tokens(list(request.garment_ids), list(request.garment_images)) if count else None
            timings["garments_s"] = time.perf_counter() - started
            pipeline.use_scheduler(request.scheduler)
            generator = torch.Generator("cpu").manual_seed(request.seed)
            denoise_start = time.perf_counter()
            try:
                frames = pipeline(
                    person.frame,
                    person.mask,
                    person.category,
                    garment_tokens=tokens,
                    pose_map=person.pose_map,
                    description=request.description if tokens is None else "",
                    num_inference_steps=request.steps,
                    guidance_scale=request.guidance,
                    num_images=request.num_images,
                    generator=generator,
                    callback=progress,
                )
            except torch.OutOfMemoryError as error:
                _release_memory()
                raise GpuOutOfMemoryError(
                    "the GPU ran out of memory for this edit: ask for fewer images, or start with --low-vram"
                ) from error
            timings["pipeline_s"] = time.perf_counter() - denoise_start

        compose_start = time.perf_counter()
        images, raw_frames = compose_images(person, frames, request)
        timings["compose_s"] = time.perf_counter() - compose_start
        timings["total_s"] = time.perf_counter() - started
        recipe = self.recipe(request)
        return EditResult(images, raw_frames, request.seed, {k: round(v, 4) for k, v in timings.items()}, recipe)

    def _check_edit(self, request: EditRequest) -> None:
        """InputError for an edit that cannot run: too many or no garments, repeats, another category, options."""
        garment_ids, category = list(request.garment_ids), request.category
        count = len(garment_ids) + len(request.garment_images)
        if count > MAX_GARMENTS:
            raise InputError(
                f"{count} garments picked: pick at most {MAX_GARMENTS} (catalog results and/or your own garment images)"
            )
        if count == 0 and not any(ch.isalpha() for ch in request.description):
            raise InputError(
                "no garment picked and no description: pick 1 to 3 garments, or describe the garment for a text-only edit"
            )
        if len(set(garment_ids)) != len(garment_ids):
            raise InputError(f"garment ids picked twice: {garment_ids}; pick each garment once")
        others = [i for i in garment_ids if self.searcher.category_of(i) != category]  # InputError if unknown
        if others:
            raise InputError(
                f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not in the {category} category, "
                f"and the person is prepared for {category}: pick {category} garments or change the category"
            )
        if request.scheduler not in SCHEDULERS:
            raise InputError(f"scheduler={request.scheduler!r}: use one of {', '.join(SCHEDULERS)}")
        if not 1 <= request.num_images <= MAX_IMAGES:
            raise InputError(f"num_images={request.num_images!r}: use 1 to {MAX_IMAGES}")
        check_options(request.steps, request.guidance, request.num_images)

    def run(self, request: EditRequest, progress=None) -> EditResult:
        """One EditRequest: prepare its photo when it has no prepared person, then `edit`."""
        from fashion_rag.request import run_request

        return run_request(self, request, progress)

    # ----------------------------------------------------------------------------------------------
    # Files: what the app and the API hand out

    def save_result(self, result: EditResult, session: str | None = None) -> SavedResult:
        """The edit's images and recipe, written into the session's output folder."""
        with self.outputs.session_folder(session) as folder:
            return save_result(result, folder)

    def save_previews(self, prepared, session: str | None = None) -> dict[str, str]:
        """Frame, mask, overlay and pose previews of a prepared person, in the session's output folder."""
        with self.outputs.session_folder(session) as folder:
            return save_previews(prepared, folder)

    def recipe(self, request: EditRequest) -> dict[str, Any]:
        """Everything needed to reproduce the edit of `request` (its person prepared, its seed drawn) from the CLI:
        results.edit_recipe."""
        return edit_recipe(self.settings, self.sources, request)


def _open_catalog_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return to_rgb(image)


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
