"""Model sources: the registry of every model part, where each is found, download and verification.

All network access of the project sits in this module. A *source* is either `default` (the real
model parts of SPEC.md, found in `weights/<part>/`, in the Hugging Face cache, or downloaded) or the
path of a *bundle*: a directory with one sub-directory per part in the same on-disk layout as the
real repositories (the tiny bundle of the tests is one), plus a `bundle.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fashion_rag.errors import MissingWeightsError, WeightsIntegrityError

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "weights.lock.json"
BUNDLE_FILE_NAME = "bundle.json"
VERIFIED_STAMP_NAME = ".verified.json"


@dataclass(frozen=True)
class ModelPart:
    """One downloadable model part: a Hub repository at a revision and the files the project reads."""

    name: str
    repo_id: str
    revision: str
    files: tuple[str, ...]
    licence: str
    size_gb: float  # approximate download size, for the status table
    used_for: str


# The defaults of SPEC.md. Revisions are branch names: the commit actually fetched is recorded in the
# lock file on first download, and every later file must match the sha256 recorded there.
REGISTRY: dict[str, ModelPart] = {
    part.name: part
    for part in (
        ModelPart(
            name="sd2-inpainting",
            repo_id="stabilityai/stable-diffusion-2-inpainting",
            revision="main",
            files=(
                "scheduler/scheduler_config.json",
                "tokenizer/merges.txt",
                "tokenizer/vocab.json",
                "tokenizer/special_tokens_map.json",
                "tokenizer/tokenizer_config.json",
                "text_encoder/config.json",
                "text_encoder/model.safetensors",
                "vae/config.json",
                "vae/diffusion_pytorch_model.safetensors",
                # Only the UNet *config*: the fine-tuned checkpoint replaces every UNet weight.
                "unet/config.json",
            ),
            licence="CreativeML Open RAIL++-M",
            size_gb=1.7,
            used_for="generation: scheduler, tokenizer, text encoder, VAE, UNet config",
        ),
        ModelPart(
            name="fashion-rag",
            repo_id="furio19/fashion-rag",
            revision="main",
            files=("unet_120000.pth", "inversion_adapter_120000.pth"),
            licence="CC BY-NC 4.0 (non-commercial use only)",
            size_gb=3.9,
            used_for="generation: fine-tuned 27-channel UNet and inversion adapter",
        ),
        ModelPart(
            name="garment-encoder",
            repo_id="laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
            revision="main",
            files=("config.json", "preprocessor_config.json", "model.safetensors"),
            licence="MIT",
            size_gb=3.9,
            used_for="generation: CLIP ViT-H/14 image features of the garments",
        ),
        ModelPart(
            name="retrieval-encoder",
            repo_id="laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
            revision="main",
            files=("open_clip_config.json", "open_clip_model.safetensors"),
            licence="MIT",
            size_gb=1.7,
            used_for="search: open_clip ViT-L-14 text/image embeddings",
        ),
        ModelPart(
            name="clothes-parser",
            repo_id="mattmdjaga/segformer_b2_clothes",
            revision="main",
            files=("config.json", "preprocessor_config.json", "model.safetensors"),
            licence="MIT",
            size_gb=0.1,
            used_for="masks: SegFormer-B2 clothes parser with the 18 ATR labels",
        ),
    )
}

# What each capability of the product needs.
GENERATION_PARTS = ("sd2-inpainting", "fashion-rag", "garment-encoder")
SEARCH_PARTS = ("retrieval-encoder",)
PARSER_PARTS = ("clothes-parser",)


def part_with_overrides(part: ModelPart, repo_overrides: dict[str, str]) -> ModelPart:
    """`part` with its repo (and optional `@revision`) replaced when `repo_overrides` names it."""
    spec = repo_overrides.get(part.name)
    if not spec:
        return part
    repo_id, _, revision = spec.partition("@")
    return ModelPart(**{**part.__dict__, "repo_id": repo_id, "revision": revision or part.revision})


# --------------------------------------------------------------------------------------------------
# Locating parts


@dataclass(frozen=True)
class PartLocation:
    """Where one part was found: `where` is 'weights/', 'hf-cache', 'bundle' or 'missing'."""

    part: ModelPart
    where: str
    path: Path | None

    @property
    def found(self) -> bool:
        return self.path is not None


def _complete(directory: Path, files: tuple[str, ...]) -> bool:
    return directory.is_dir() and all((directory / name).is_file() for name in files)


def _find_in_hf_cache(part: ModelPart) -> Path | None:
    """The snapshot folder of `part` in the Hugging Face cache, if every file of it is there."""
    from huggingface_hub import try_to_load_from_cache

    root: Path | None = None
    for name in part.files:
        cached = try_to_load_from_cache(part.repo_id, name, revision=part.revision)
        if not isinstance(cached, str):
            return None
        # The file sits at <snapshot>/<name>; walk up as many levels as `name` has parts.
        snapshot = Path(cached).parents[len(Path(name).parts) - 1]
        if root is not None and snapshot != root:
            return None
        root = snapshot
    return root


class ModelSources:
    """Resolves model parts for one `--models` setting: `default` or a bundle directory."""

    def __init__(
        self,
        models: str = "default",
        weights_dir: Path | str = Path("weights"),
        repo_overrides: dict[str, str] | None = None,
    ) -> None:
        self.models = models
        self.weights_dir = Path(weights_dir)
        self.repo_overrides = dict(repo_overrides or {})
        self.bundle_dir: Path | None = None
        self.bundle_info: dict = {}
        if models != "default":
            bundle = Path(models).expanduser()
            if not (bundle / BUNDLE_FILE_NAME).is_file():
                raise MissingWeightsError(
                    f"--models {models!r} is neither 'default' nor a model bundle directory "
                    f"(no {BUNDLE_FILE_NAME} there); make one with "
                    f"`python -m fashion_rag weights make-tiny DIR`"
                )
            self.bundle_dir = bundle.resolve()
            self.bundle_info = json.loads((bundle / BUNDLE_FILE_NAME).read_text())

    @property
    def kind(self) -> str:
        """'real' for the default sources, else the bundle's name (e.g. 'tiny')."""
        return "real" if self.bundle_dir is None else str(self.bundle_info.get("name", "bundle"))

    def part(self, name: str) -> ModelPart:
        if name not in REGISTRY:
            raise MissingWeightsError(f"unknown model part {name!r}: known parts are {', '.join(REGISTRY)}")
        return part_with_overrides(REGISTRY[name], self.repo_overrides)

    def locate(self, name: str) -> PartLocation:
        part = self.part(name)
        if self.bundle_dir is not None:
            directory = self.bundle_dir / name
            found = _complete(directory, part.files)
            return PartLocation(part, "bundle" if found else "missing", directory if found else None)
        local = self.weights_dir / name
        if _complete(local, part.files):
            return PartLocation(part, "weights/", local)
        cached = _find_in_hf_cache(part)
        if cached is not None:
            return PartLocation(part, "hf-cache", cached)
        return PartLocation(part, "missing", None)

    def require(self, name: str) -> Path:
        """The directory of part `name`, or MissingWeightsError saying how to get it."""
        location = self.locate(name)
        if location.path is None:
            raise MissingWeightsError(missing_message([name], self))
        if location.where == "weights/":
            verify_part(location.path, name, read_lock(self.weights_dir))
        return location.path

    def status(self) -> list[PartLocation]:
        return [self.locate(name) for name in REGISTRY]

    def describe(self) -> dict[str, str]:
        """Part name -> 'found in X' or 'missing', for status lines and recipes."""
        return {loc.part.name: (f"{loc.where} {loc.path}" if loc.found else "missing") for loc in self.status()}


def missing_message(names: list[str], sources: ModelSources) -> str:
    """One message naming the missing parts and the command that fetches them."""
    if sources.bundle_dir is not None:
        return (
            f"model bundle {sources.bundle_dir} lacks {', '.join(names)}; rebuild it with "
            f"`python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
        )
    size = sum(REGISTRY[n].size_gb for n in names if n in REGISTRY)
    return (
        f"missing model weights: {', '.join(names)} (about {size:.1f} GB); fetch them with "
        f"`python -m fashion_rag weights download {' '.join(names)}` (needs internet), or run offline "
        f"with a bundle: `--models DIR`"
    )


# --------------------------------------------------------------------------------------------------
# Lock file and verification


def read_lock(weights_dir: Path) -> dict[str, dict]:
    path = Path(weights_dir) / LOCK_FILE_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def write_lock(weights_dir: Path, lock: dict[str, dict]) -> None:
    path = Path(weights_dir) / LOCK_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_key(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def verify_part(directory: Path, name: str, lock: dict[str, dict], force: bool = False) -> None:
    """Check every file of part `name` in `directory` against its lock entry.

    Hashing several GB at every start would cost seconds, so a verified file's size and mtime are
    stamped in `<part>/.verified.json` and it is re-hashed only when they change (or with `force`).
    Raises WeightsIntegrityError naming the first file that does not match.
    """
    stamp_path = directory / VERIFIED_STAMP_NAME
    stamps: dict[str, str] = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    changed = False
    for file_name, entry in lock.items():
        part_name, _, relative = file_name.partition("/")
        if part_name != name:
            continue
        path = directory / relative
        if not path.is_file():
            continue
        key = _stamp_key(path)
        if not force and stamps.get(relative) == f"{key}:{entry['sha256']}":
            continue
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise WeightsIntegrityError(
                f"{file_name}: sha256 {actual[:12]}… does not match the lock entry {entry['sha256'][:12]}… "
                f"in {LOCK_FILE_NAME}; delete the file and run `python -m fashion_rag weights download {name}`"
            )
        stamps[relative] = f"{key}:{entry['sha256']}"
        changed = True
    if changed:
        stamp_path.write_text(json.dumps(stamps, indent=1, sort_keys=True))


def verify_all(weights_dir: Path) -> list[str]:
    """Hash every locked file under `weights_dir`; return one line per problem (empty if all match)."""
    lock = read_lock(weights_dir)
    problems = []
    for name in sorted({key.partition("/")[0] for key in lock}):
        try:
            verify_part(Path(weights_dir) / name, name, lock, force=True)
        except WeightsIntegrityError as error:
            problems.append(str(error))
    return problems


# --------------------------------------------------------------------------------------------------
# Safe checkpoint loading


def load_torch_state_dict(path: Path | str) -> dict:
    """Load a plain `.pth` state dict with `weights_only=True`: tensors and containers, no code.

    A pickle that asks for any other object (a class, a function) is refused with
    WeightsIntegrityError instead of being executed.
    """
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise WeightsIntegrityError(
            f"{path}: refused to load, it holds objects other than tensors ({str(error).splitlines()[0]})"
        ) from error
    except RuntimeError as error:
        # A non-zip file goes through the legacy unpickler, which reports through RuntimeError.
        raise WeightsIntegrityError(f"{path}: not a readable torch checkpoint ({error})") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsIntegrityError(f"{path}: expected a flat dict of tensors (a state dict)")
    return state


# --------------------------------------------------------------------------------------------------
# Download


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A TCP connection to the Hub endpoint within `timeout_s`: the fast offline check."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def download(names: list[str], sources: ModelSources, timeout_s: float = 3.0) -> list[Path]:
    """Fetch parts into `weights/<part>/` with a progress bar, skipping files already present.

    Each file is hashed after download: the first download records its sha256 in the lock file,
    later ones must match it. huggingface_hub writes to a temporary `.incomplete` file and renames
    only when complete, so an interrupted download never leaves a truncated file in place; a rerun
    resumes it.
    """
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise MissingWeightsError(f"unknown model part(s) {', '.join(unknown)}: known parts are {', '.join(REGISTRY)}")
    todo = [sources.part(n) for n in (names or list(REGISTRY))]
    weights_dir = sources.weights_dir
    lock = read_lock(weights_dir)
    wanted = [p for p in todo if not _complete(weights_dir / p.name, p.files)]
    if wanted and not hub_reachable(timeout_s):
        raise MissingWeightsError(
            f"cannot reach the Hugging Face Hub at {hub_endpoint()} (no network?); still missing: "
            f"{', '.join(p.name for p in wanted)}. Download on a machine with internet and copy the files "
            f"into {weights_dir}/<part>/ (see weights/README.md), or run offline with `--models DIR`."
        )
    from httpx2 import HTTPError  # the HTTP client of the pinned huggingface_hub 2.x: its transfer errors
    from huggingface_hub import hf_hub_download

    written = []
    for part in todo:
        target = weights_dir / part.name
        for file_name in part.files:
            path = target / file_name
            key = f"{part.name}/{file_name}"
            if not path.is_file():
                logger.info("downloading %s/%s from %s@%s", part.name, file_name, part.repo_id, part.revision)
                try:
                    hf_hub_download(part.repo_id, file_name, revision=part.revision, local_dir=str(target))
                except (HTTPError, OSError) as error:
                    # The partial download stays in <part>/.cache/huggingface/download/*.incomplete, never at
                    # `path`: nothing truncated can be verified or loaded, and the next run resumes it.
                    write_lock(weights_dir, lock)  # keep what the files finished so far recorded
                    raise MissingWeightsError(
                        f"download of {key} from {part.repo_id}@{part.revision} was interrupted "
                        f"({type(error).__name__}: {error}); run `python -m fashion_rag weights download "
                        f"{part.name}` again to resume it"
                    ) from error
            actual = sha256_of(path)
            if key in lock and lock[key]["sha256"] != actual:
                rejected = path.with_name(path.name + ".rejected")
                os.replace(path, rejected)
                raise WeightsIntegrityError(
                    f"{key}: downloaded file's sha256 {actual[:12]}… differs from the lock entry "
                    f"{lock[key]['sha256'][:12]}…; moved it to {rejected.name}. If the upstream file "
                    f"changed on purpose, remove its entry from {LOCK_FILE_NAME}."
                )
            lock.setdefault(key, {"sha256": actual, "size": path.stat().st_size, "repo_id": part.repo_id})
            written.append(path)
        write_lock(weights_dir, lock)
    return written
