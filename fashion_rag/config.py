"""Settings as frozen dataclasses. This is the only module that reads environment variables.

Command-line flags override environment variables, which override the defaults below; the result is
passed down explicitly to every stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

CATEGORIES: tuple[str, ...] = ("upper_body", "lower_body", "dresses")

# Environment variables, one per setting that a deployment may want to change without flags.
ENV_MODELS = "FASHION_RAG_MODELS"
ENV_WEIGHTS_DIR = "FASHION_RAG_WEIGHTS_DIR"
ENV_DEVICE = "FASHION_RAG_DEVICE"
ENV_CATALOG = "FASHION_RAG_CATALOG"
ENV_INDEX = "FASHION_RAG_INDEX"
ENV_OUTPUT_DIR = "FASHION_RAG_OUTPUT_DIR"
ENV_REPO_PREFIX = "FASHION_RAG_REPO_"
ENV_HOST = "FASHION_RAG_HOST"
ENV_SPACE_ID = "SPACE_ID"  # set by Hugging Face Spaces


@dataclass(frozen=True)
class GenerationSettings:
    """How one edit is sampled. Defaults are the published recipe (docs/recipe.md, sampler rules 1-2)."""

    steps: int = 50  # DDIM steps of the published configuration
    guidance: float = 7.5  # classifier-free guidance scale of the published configuration
    scheduler: str = "ddim"  # "ddim" (published) or "dpm++" (faster, fewer steps)
    num_images: int = 1  # images per edit, 1 to 4, sampled in one UNet batch
    paste_back: bool = True  # paste the original pixels back outside a feathered mask
    feather_px: int = 8  # width of the blend band at the mask edge, in frame pixels


@dataclass(frozen=True)
class RuntimeSettings:
    """Where models come from and where they run."""

    models: str = "default"  # "default" (the published sources: docs/recipe.md) or the path of a model bundle
    weights_dir: Path = REPO_ROOT / "weights"  # where `weights download` puts files
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    compile_unet: bool = False  # torch.compile the UNet (GPU; warm-up cost on the first edit)
    low_vram: bool = False  # model CPU offload and VAE slicing for small GPUs
    # Part name -> "org/repo[@revision]" replacing a default source (docs/recipe.md sources), e.g. a fashion-tuned
    # retrieval encoder. From FASHION_RAG_REPO_<PART> (part name upper-cased, "-" as "_").
    repo_overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppSettings:
    """What the studio serves and where it writes."""

    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 7860  # Gradio's usual port
    share: bool = False  # no public share link unless asked
    catalog_dir: Path = REPO_ROOT / "examples" / "catalog"  # the offline example catalog
    index_dir: Path | None = None  # None: <catalog_dir>/index
    output_dir: Path = REPO_ROOT / "outputs"  # per-session result folders live below this
    output_max_age_s: int = 24 * 3600  # results older than this are deleted
    max_upload_mb: int = 20  # uploads above this are refused by the server
    on_space: bool = False  # running as a Hugging Face Space: listen on all interfaces, fetch weights at start
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir if self.index_dir is not None else self.catalog_dir / "index"


def runtime_from_env(environ: dict[str, str] | None = None, **overrides: object) -> RuntimeSettings:
    """RuntimeSettings from environment variables, then explicit (non-None) overrides."""
    env = os.environ if environ is None else environ
    settings = RuntimeSettings(
        models=env.get(ENV_MODELS, RuntimeSettings.models),
        weights_dir=Path(env.get(ENV_WEIGHTS_DIR, str(RuntimeSettings.weights_dir))),
        device=env.get(ENV_DEVICE, RuntimeSettings.device),
        repo_overrides={
            key[len(ENV_REPO_PREFIX) :].lower().replace("_", "-"): value
            for key, value in env.items()
            if key.startswith(ENV_REPO_PREFIX) and value
        },
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "weights_dir" in given:
        given["weights_dir"] = Path(given["weights_dir"])  # type: ignore[arg-type]
    return replace(settings, **given)  # type: ignore[arg-type]


def app_from_env(environ: dict[str, str] | None = None, **overrides: object) -> AppSettings:
    """AppSettings from environment variables, then explicit (non-None) overrides.

    Overrides may name RuntimeSettings fields too (`app_from_env(models="default", device="cpu")`); they
    go to the runtime, unless a whole `runtime=` is given, which then must not be mixed with them.
    """
    env = os.environ if environ is None else environ
    runtime_fields = {
        name: overrides.pop(name) for name in list(overrides) if name in RuntimeSettings.__dataclass_fields__
    }
    runtime = overrides.pop("runtime", None)
    if runtime is not None and any(value is not None for value in runtime_fields.values()):
        raise TypeError(f"give either runtime= or runtime fields ({', '.join(runtime_fields)}), not both")
    runtime = runtime or runtime_from_env(env, **runtime_fields)
    on_space = bool(env.get(ENV_SPACE_ID))
    settings = AppSettings(
        # A Space's proxy reaches the app from outside the container; anywhere else stay on loopback.
        host=env.get(ENV_HOST, "0.0.0.0" if on_space else AppSettings.host),
        on_space=on_space,
        catalog_dir=Path(env.get(ENV_CATALOG, str(AppSettings.catalog_dir))),
        index_dir=Path(env[ENV_INDEX]) if env.get(ENV_INDEX) else None,
        output_dir=Path(env.get(ENV_OUTPUT_DIR, str(AppSettings.output_dir))),
        runtime=runtime,  # type: ignore[arg-type]
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("catalog_dir", "index_dir", "output_dir"):
        if key in given:
            given[key] = Path(given[key])  # type: ignore[arg-type]
    return replace(settings, **given)  # type: ignore[arg-type]
