"""Settings as frozen dataclasses. This is the only module that reads environment variables.

Command-line flags override environment variables, which override the defaults below; the result is
passed down explicitly to every stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"  # example people and the example catalog; the page may serve them

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
ENV_LIMITS = "FASHION_RAG_LIMITS"  # "name=value,name=value" overriding ServingLimits fields


# How an edit is sampled by default: the published recipe (docs/recipe.md, sampler rules 1-2). They are the
# defaults of EditRequest (fashion_rag/request.py), the one form an edit's settings take, and of the page's and
# the CLI's controls.
DEFAULT_STEPS = 50  # DDIM steps of the published configuration
DEFAULT_GUIDANCE = 7.5  # classifier-free guidance scale of the published configuration
DEFAULT_SCHEDULER = "ddim"  # "ddim" (published) or "dpm++" (faster, fewer steps)


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
class ServingLimits:
    """What one visitor may ask of a public studio; each is checked before work starts and named in the
    refusal (docs/RELIABILITY.md, "Limits", lists each with the test that enforces it)."""

    edit_megapixels: float = 16.0  # larger photos are scaled down for the edit (the result note says so)
    files_per_upload: int = 4  # one upload request; the page sends 1, gradio_client 1 per file input
    description_chars: int = 10_000  # longer ones are refused unread; search reads the first 300 anyway
    request_kb: int = 256  # JSON body of one API call (files travel as uploads, not in the body)
    output_gb: float = 5.0  # all session folders together; the oldest folders not in use go first
    queue_size: int = 64  # events waiting in the whole queue; more are answered "busy"
    edits_per_session: int = 1  # queued + running edits of one browser or API session
    prepares_per_session: int = 2  # queued + running photo preparations of one session
    searches_per_session: int = 4  # queued + running searches of one session
    edits_per_address: int = 8  # the same across every session of one client address (sessions are free)
    prepares_per_address: int = 8
    closed_session_ttl_s: int = 300  # a closed tab's state is dropped this long after its last change
    listener_grace_s: float = 10.0  # a job nobody listens to after this long is dropped before it starts


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
    limits: ServingLimits = field(default_factory=ServingLimits)
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
        limits=limits_from_text(env.get(ENV_LIMITS, "")),
        runtime=runtime,  # type: ignore[arg-type]
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("catalog_dir", "index_dir", "output_dir"):
        if key in given:
            given[key] = Path(given[key])  # type: ignore[arg-type]
    return replace(settings, **given)  # type: ignore[arg-type]


def limits_from_text(text: str) -> ServingLimits:
    """ServingLimits with the fields named in "name=value,name=value" changed (FASHION_RAG_LIMITS)."""
    defaults = ServingLimits()
    changes: dict[str, float | int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        kind = type(getattr(defaults, name.strip(), None))
        if kind not in (int, float):
            known = ", ".join(ServingLimits.__dataclass_fields__)
            raise ValueError(f"{ENV_LIMITS}: unknown limit {name.strip()!r}; known limits: {known}")
        try:
            changes[name.strip()] = kind(value)
        except ValueError:
            raise ValueError(f"{ENV_LIMITS}: {item!r} needs a {kind.__name__} value") from None
    return replace(defaults, **changes)
