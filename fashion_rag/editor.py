"""The editor: one object that composes the stages. The UI, the CLI and the tests all call it.

    editor = Editor.from_settings(settings)          # nothing heavy yet
    person = editor.prepare(photo, "upper_body")     # frame, pose, mask (person/)
    hits = editor.search("navy blazer", "upper_body")  # catalog search (catalog/)
    result = editor.edit(person, garment_ids=[hits[0].id], seed=7)  # generation/

Models load lazily on first use, or all at once with `load()` (the app does this at start-up).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from fashion_rag.config import REPO_ROOT, AppSettings, GenerationSettings
from fashion_rag.errors import (
    CatalogIndexError,
    GpuOutOfMemoryError,
    InputError,
    MissingWeightsError,
    ModelsLoadingError,
    WeightsIntegrityError,
    check_category,
)
from fashion_rag.files import sha256_file
from fashion_rag.generation.compose import feathered_alpha, paste_back, raw_output
from fashion_rag.generation.limits import MAX_GARMENTS, MAX_IMAGES, SCHEDULERS, check_options
from fashion_rag.images import to_rgb
from fashion_rag.outputs import Outputs, SavedResult, save_previews, save_result
from fashion_rag.person.mask_codec import encode_mask
from fashion_rag.startup import LoadProgress, run_load
from fashion_rag.weights import GENERATION_PARTS, ModelSources, missing_message

# torch, diffusers and transformers are imported where a model is built or run, not here: the app imports
# this module before its page is up (docs/PERFORMANCE.md, "Start-up").
if TYPE_CHECKING:
    import torch

    from fashion_rag.generation.garment_cache import GarmentTokenCache
    from fashion_rag.generation.pipeline import FashionRAGPipeline

logger = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1


@dataclass
class EditResult:
    """Edited photos at the photo's own size, the raw decoded frames, and how they were made."""

    images: list[Image.Image]
    frames: list[Image.Image]
    seed: int
    timings: dict[str, float]
    recipe: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def check_seed(seed: int | None) -> int:
    """`seed`, or a fresh random one when None; InputError outside 0..2**32-1."""
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) <= MAX_SEED:
        raise InputError(f"seed={seed!r}: use a whole number from 0 to {MAX_SEED}, or leave it empty for a random one")
    return int(seed)


class Editor:
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
    # Lazily built stages

    @property
    def preparer(self):
        from fashion_rag.person.prepare import PersonPreparer

        with self._locks["person"]:
            if self._preparer is None:
                # A bundle's parser has random weights (its labels are noise), so bundles take the
                # offline mask path; the parser's loading code is exercised by its own tests.
                parser_sources = self.sources if self.sources.kind == "real" else None
                self._preparer = PersonPreparer.from_sources(parser_sources, device=self._device())
            return self._preparer

    @property
    def searcher(self):
        from fashion_rag.catalog.search import CatalogSearch

        encoder = self.retrieval_encoder if self._search is None else None  # before the (non-reentrant) lock
        with self._locks["search"]:
            if self._search is None:
                try:
                    if self._index is not None and encoder is not None:
                        # The index the start-up check just built or found up to date: not loaded twice.
                        self._search = CatalogSearch.from_index(
                            self._index, encoder, catalog_root=self.settings.catalog_dir
                        )
                    else:
                        self._search = CatalogSearch.open(
                            self.settings.catalog_dir, self.settings.resolved_index_dir, self.sources,
                            device=self._device(), encoder=encoder,
                        )  # fmt: skip
                except CatalogIndexError as error:
                    if not self.settings.catalog_dir.is_dir():
                        raise
                    # A corrupt, half-written or foreign index must not take search down: the captions still
                    # work. The reason shows in the status line (`mode_reason`) until the index is rebuilt.
                    from fashion_rag.catalog.catalog import load_catalog

                    logger.warning("catalog index refused, searching captions only: %s", error)
                    catalog = load_catalog(self.settings.catalog_dir)
                    self._search = CatalogSearch.from_catalog(catalog, reason=f"lexical search only: {error}")
                self._index = None  # the search holds it now
            return self._search

    def ensure_index(self):
        """Bring the catalog index up to date when the retrieval encoder is there (called at start-up).

        Cost follows change: an unchanged catalog folder is recognised from its files' sizes and mtimes
        without reading them, writes no file and rebuilds no graph; otherwise only files whose size or
        mtime changed are hashed, and only new or changed images are embedded. An index built by another encoder (say the tiny bundle's, then the real one) is rebuilt.
        The loaded index is kept for `searcher`, so start-up loads it once. Returns the BuildReport, or
        None when there is nothing to index with.
        """
        from fashion_rag.catalog.index import update_index

        settings = self.settings
        index_dir = settings.resolved_index_dir
        if not self.sources.locate("retrieval-encoder").found or not settings.catalog_dir.is_dir():
            return None
        print(f"checking the catalog index at {index_dir} …", flush=True)
        encoder = self.retrieval_encoder  # shared with the search, which opens after this
        try:
            report = update_index(settings.catalog_dir, encoder, index_dir)
        except (InputError, CatalogIndexError) as error:
            # E.g. a half-written index folder without its manifest: the app still starts and searches the
            # captions; the status line says "no index at ..." and this line says why none was built.
            print(f"could not build the catalog index: {error}", flush=True)
            return None
        with self._locks["search"]:
            self._index, self._search = report.index, None  # a search opened before this used the old index
        _ = self.searcher  # opened now, not at the first user's search (after a change: BM25 of every caption)
        print(f"index ready: {report.summary()}", flush=True)
        return report

    @property
    def retrieval_encoder(self):
        """The catalog's open_clip encoder, loaded once (None without its weights): the start-up index
        check and the search share it."""
        from fashion_rag.catalog.encoder import RetrievalEncoder

        with self._locks["encoder"]:
            if self._retrieval_encoder is None and self.sources.locate("retrieval-encoder").found:
                self._retrieval_encoder = RetrievalEncoder.from_sources(self.sources, device=self._device())
            return self._retrieval_encoder

    @property
    def pipeline(self) -> FashionRAGPipeline:
        """The generation pipeline, loaded (and its fast path warmed up) on first use."""
        return self._load_pipeline(warm_up=True)

    def _load_pipeline(self, warm_up: bool) -> FashionRAGPipeline:
        import torch

        from fashion_rag.generation.garment_cache import GarmentTokenCache, encoder_identity
        from fashion_rag.generation.pipeline import FashionRAGPipeline

        with self._locks["pipeline"]:
            if self._pipeline is None:
                missing = self.missing_generation_parts()
                if missing:
                    raise MissingWeightsError(missing_message(missing, self.sources))
                from fashion_rag.devices import default_dtype

                runtime = self.settings.runtime
                device = self._device()
                # --low-vram: load into CPU memory in the GPU's precision; offload moves one component at a time
                # to `device` (loading onto the GPU first would need the whole pipeline's memory there).
                load_device = torch.device("cpu") if runtime.low_vram else device
                pipeline = FashionRAGPipeline.from_sources(self.sources, load_device, default_dtype(device))
                pipeline.set_progress_bar_config(disable=True)
                if runtime.low_vram:  # offload to the --device GPU; eager
                    pipeline.enable_low_vram(device)
                else:  # CUDA graphs (or compile) on a GPU, none in a ZeroGPU Space's main process; eager elsewhere
                    pipeline.enable_fast_path(compile_unet=runtime.compile_unet, cuda_graphs=not self.settings.on_space)
                if warm_up:
                    pipeline.warm_up()
                identity = encoder_identity(
                    self.sources.require("garment-encoder"), self.sources.require("fashion-rag")
                )
                self._cache = GarmentTokenCache(identity, self.settings.output_dir.parent / ".cache" / "garment-tokens")
                self._pipeline = pipeline
                self.generation_problem = None
            return self._pipeline

    @property
    def garment_cache(self) -> GarmentTokenCache:
        self.pipeline  # noqa: B018 - the cache is keyed by the loaded encoder
        assert self._cache is not None
        return self._cache

    def _device(self) -> torch.device:
        from fashion_rag.devices import pick_device

        if self.device is None:
            self.device = pick_device(self.settings.runtime.device)
        return self.device

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

    def edit(
        self,
        person,
        garment_ids: list[str] | None = None,
        garment_images: list[Image.Image] | None = None,
        description: str = "",
        seed: int | None = None,
        options: GenerationSettings | None = None,
        progress=None,
    ) -> EditResult:
        """Repaint the masked garment region of a PreparedPerson with the picked garments."""
        self.check_generation_ready()
        options = options or GenerationSettings()
        garment_ids = list(garment_ids or [])
        garment_images = list(garment_images or [])
        count = len(garment_ids) + len(garment_images)
        self._check_edit(person, garment_ids, count, description, options)
        seed = check_seed(seed)
        import torch

        timings: dict[str, float] = {}

        with self._generation_lock:
            started = time.perf_counter()
            pipeline = self.pipeline
            # No garment: the text-only prompt (recipe garment tokens rule 8) carries the description.
            tokens = self.garment_tokens(garment_ids, garment_images) if count else None
            timings["garments_s"] = time.perf_counter() - started
            pipeline.use_scheduler(options.scheduler)
            generator = torch.Generator("cpu").manual_seed(seed)
            denoise_start = time.perf_counter()
            try:
                frames = pipeline(
                    person.frame, person.mask, person.category, garment_tokens=tokens, pose_map=person.pose_map,
                    description=description if tokens is None else "",
                    num_inference_steps=options.steps, guidance_scale=options.guidance, num_images=options.num_images,
                    generator=generator, callback=progress,
                )  # fmt: skip
            except torch.OutOfMemoryError as error:
                _release_memory()
                raise GpuOutOfMemoryError(
                    "the GPU ran out of memory for this edit: ask for fewer images, or start with --low-vram"
                ) from error
            timings["pipeline_s"] = time.perf_counter() - denoise_start

        compose_start = time.perf_counter()
        original = np.asarray(person.original.convert("RGB"))
        unframe = person.transform.unframe
        alpha = feathered_alpha(person.mask, options.feather_px)
        images, raw_frames = [], []
        for frame in frames:
            raw_frames.append(Image.fromarray(np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)))
            if options.paste_back:
                images.append(Image.fromarray(paste_back(original, frame, alpha, unframe)))
            else:
                images.append(Image.fromarray(raw_output(original.shape, frame, unframe)))
        timings["compose_s"] = time.perf_counter() - compose_start
        timings["total_s"] = time.perf_counter() - started
        recipe = self.recipe(person, garment_ids, len(garment_images), description, seed, options)
        return EditResult(images, raw_frames, seed, {k: round(v, 4) for k, v in timings.items()}, recipe)

    def _check_edit(self, person, garment_ids: list[str], count: int, description: str, options) -> None:
        """InputError for an edit that cannot run: too many or no garments, repeats, another category, options."""
        if count > MAX_GARMENTS:
            raise InputError(
                f"{count} garments picked: pick at most {MAX_GARMENTS} (catalog results and/or your own garment images)"
            )
        if count == 0 and not any(ch.isalpha() for ch in description):
            raise InputError(
                "no garment picked and no description: pick 1 to 3 garments, or describe the garment for a text-only edit"
            )
        if len(set(garment_ids)) != len(garment_ids):
            raise InputError(f"garment ids picked twice: {garment_ids}; pick each garment once")
        others = [i for i in garment_ids if self.searcher.category_of(i) != person.category]  # InputError if unknown
        if others:
            raise InputError(
                f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not in the {person.category} category, "
                f"and the person is prepared for {person.category}: pick {person.category} garments or change the "
                "category"
            )
        if options.scheduler not in SCHEDULERS:
            raise InputError(f"scheduler={options.scheduler!r}: use one of {', '.join(SCHEDULERS)}")
        if not 1 <= options.num_images <= MAX_IMAGES:
            raise InputError(f"num_images={options.num_images!r}: use 1 to {MAX_IMAGES}")
        check_options(options.steps, options.guidance, options.num_images)

    def run(self, request, progress=None) -> EditResult:
        """One EditRequest (fashion_rag/request.py): prepare its photo when it has no prepared person, then edit."""
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

    def recipe(self, person, garment_ids, uploaded: int, description: str, seed: int, options: GenerationSettings):
        """Everything needed to reproduce an edit from the CLI."""
        return {
            "category": person.category,
            "description": description,
            "garment_ids": list(garment_ids),
            "uploaded_garments": uploaded,
            # Garment tokens rule 8 (docs/recipe.md): with no garment the description drives the edit.
            "prompt": "text-only" if not garment_ids and not uploaded else "garment-tokens",
            "seed": seed,
            "steps": options.steps,
            "guidance": options.guidance,
            "scheduler": options.scheduler,
            "num_images": options.num_images,
            "paste_back": options.paste_back,
            "mask_source": getattr(person, "mask_source", "user"),
            "mask_variant": getattr(person, "mask_variant", "box"),
            # The mask this edit used (automatic, painted or grown) and the framing it belongs to.
            "mask": encode_mask(person.mask),
            "transform": person.transform.to_dict(),
            "models": public_name(self.sources.models),
            "model_sources": {
                name: {"repo_id": self.sources.part(name).repo_id, "revision": self.sources.part(name).revision}
                for name in GENERATION_PARTS
            },
            "catalog": public_name(self.settings.catalog_dir),
        }


def public_name(location: str | Path) -> str:
    """A folder as a recipe names it: relative to the repository when inside it, else its own name.

    Recipes are handed to visitors, so they carry no absolute server path; "default" stays as it is.
    """
    if str(location) == "default":
        return "default"
    path = Path(location).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name


def _open_catalog_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return to_rgb(image)


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
