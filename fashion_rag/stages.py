"""The editor's stages, built lazily (issue 24 split them out of editor.py): the person preparer, the catalog
search and its index, the retrieval encoder, and the generation pipeline with its garment-token cache.

`Editor` (editor.py) inherits them; its `__init__` sets the attributes used here (`settings`, `sources`,
`device`, `generation_problem`, the `_locks` per part and the `_`-named stages, None until built). One lock
per part, so a photo or a search is served while the generation models load.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fashion_rag.errors import CatalogIndexError, InputError, MissingWeightsError
from fashion_rag.weights import missing_message

# torch, diffusers and transformers are imported where a model is built or run, not here: the app imports
# this module before its page is up (docs/PERFORMANCE.md, "Start-up").
if TYPE_CHECKING:
    import torch

    from fashion_rag.generation.garment_cache import GarmentTokenCache
    from fashion_rag.generation.pipeline import FashionRAGPipeline

logger = logging.getLogger(__name__)


class Stages:
    """Each stage loads on first access, under its part's lock."""

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
                            self.settings.catalog_dir,
                            self.settings.resolved_index_dir,
                            self.sources,
                            device=self._device(),
                            encoder=encoder,
                        )
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
