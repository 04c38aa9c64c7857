"""Model sources: the registry of every model part, where each is found, download and verification.

All network access of the project sits in this module (model weights, and the catalog datasets of
`index build --dataset`, at the end). A *source* is either `default` (the real
model parts of SPEC.md, found in `weights/<part>/`, in the Hugging Face cache, or downloaded) or the
path of a *bundle*: a directory with one sub-directory per part in the same on-disk layout as the
real repositories (the tiny bundle of the tests is one), plus a `bundle.json`.

The facts about the upstream repositories (repository, revision, licence, the files they hold, known
sha256 values) are data in `weights/sources.json`; this module says which of those files the project
reads. Downloads go through `huggingface_hub` and check what they can before the first large transfer:
the repository and revision (`model_info`, one call), that every file exists, and access to each
(a HEAD request per file), so a removed or gated repository is refused in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import socket
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from fashion_rag.config import ENV_REPO_PREFIX, REPO_ROOT
from fashion_rag.errors import MissingWeightsError, WeightsIntegrityError

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "weights.lock.json"
BUNDLE_FILE_NAME = "bundle.json"
VERIFIED_STAMP_NAME = ".verified.json"
SOURCES_FILE = REPO_ROOT / "weights" / "sources.json"


@cache
def load_sources_file(path: Path = SOURCES_FILE) -> dict:
    """The facts of `weights/sources.json`: per part its repository and revision, per repository its files."""
    return json.loads(Path(path).read_text())


def known_files(repo_id: str) -> dict[str, dict]:
    """File name -> known facts (`sha256`, `size`) of a repository listed in sources.json ({} if not listed)."""
    return load_sources_file()["repositories"].get(repo_id, {}).get("files", {})


@dataclass(frozen=True)
class ModelPart:
    """One downloadable model part: a Hub repository at a revision and the files the project reads.

    Each entry of `files` is the names one file may have upstream, in order of preference: the first
    that exists is used (a safetensors file first, then its `.bin` pickle twin).
    """

    name: str
    repo_id: str
    revision: str  # a pinned commit where one is known, else a branch (the commit fetched goes in the lock)
    files: tuple[tuple[str, ...], ...]
    licence: str
    size_gb: float  # approximate download size, for the status table
    used_for: str
    note: str = ""  # where the source comes from (e.g. a community mirror), for the status table

    @property
    def file_names(self) -> tuple[str, ...]:
        """The preferred name of every file (what a download asks for first and the tiny bundle writes)."""
        return tuple(choices[0] for choices in self.files)

    @property
    def env_var(self) -> str:
        """The environment variable that points this part at another repository."""
        return ENV_REPO_PREFIX + self.name.upper().replace("-", "_")


# Which files of each repository the project reads (the repositories themselves: weights/sources.json).
_FILES_READ: dict[str, tuple[tuple[str, ...], ...]] = {
    "sd2-inpainting": (
        ("scheduler/scheduler_config.json",),
        ("tokenizer/merges.txt",),
        ("tokenizer/vocab.json",),
        ("tokenizer/special_tokens_map.json",),
        ("tokenizer/tokenizer_config.json",),
        ("text_encoder/config.json",),
        ("text_encoder/model.safetensors",),
        ("vae/config.json",),
        ("vae/diffusion_pytorch_model.safetensors",),
        # Only the UNet *config*: the fine-tuned checkpoint replaces every UNet weight.
        ("unet/config.json",),
    ),
    "fashion-rag": (("unet_120000.pth",), ("inversion_adapter_120000.pth",)),
    "garment-encoder": (("config.json",), ("preprocessor_config.json",), ("model.safetensors",)),
    # No open_clip_model.safetensors upstream: open_clip_pytorch_model.safetensors, or its .bin pickle twin
    # (open_clip loads that with weights_only=True).
    "retrieval-encoder": (
        ("open_clip_config.json",),
        ("open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"),
    ),
    "clothes-parser": (("config.json",), ("preprocessor_config.json",), ("model.safetensors",)),
}
_USED_FOR = {
    "sd2-inpainting": "generation: scheduler, tokenizer, text encoder, VAE, UNet config",
    "fashion-rag": "generation: fine-tuned 27-channel UNet and inversion adapter",
    "garment-encoder": "generation: CLIP ViT-H/14 image features of the garments",
    "retrieval-encoder": "search: open_clip ViT-L-14 text/image embeddings",
    "clothes-parser": "masks: SegFormer-B2 clothes parser with the 18 ATR labels",
}


def _build_registry() -> dict[str, ModelPart]:
    facts = load_sources_file()["parts"]
    return {
        name: ModelPart(
            name=name,
            repo_id=facts[name]["repo_id"],
            revision=facts[name]["revision"],
            files=files,
            licence=facts[name]["licence"],
            size_gb=float(facts[name]["size_gb"]),
            used_for=_USED_FOR[name],
            note=facts[name].get("note", ""),
        )
        for name, files in _FILES_READ.items()
    }


REGISTRY: dict[str, ModelPart] = _build_registry()

# What each capability of the product needs.
GENERATION_PARTS = ("sd2-inpainting", "fashion-rag", "garment-encoder")
SEARCH_PARTS = ("retrieval-encoder",)
PARSER_PARTS = ("clothes-parser",)


def part_with_overrides(part: ModelPart, repo_overrides: dict[str, str]) -> ModelPart:
    """`part` with its repo (and optional `@revision`) replaced when `repo_overrides` names it.

    Another repository without `@revision` means its `main` branch: a pinned commit belongs to the
    default repository only.
    """
    spec = repo_overrides.get(part.name)
    if not spec:
        return part
    repo_id, _, revision = spec.partition("@")
    if repo_id == part.repo_id:
        revision = revision or part.revision
    return replace(part, repo_id=repo_id, revision=revision or "main", note=f"set by {part.env_var}")


def is_default_source(part: ModelPart) -> bool:
    """True when `part` points at the repository and revision of sources.json (its known facts apply)."""
    default = REGISTRY.get(part.name)
    return default is not None and (part.repo_id, part.revision) == (default.repo_id, default.revision)


# --------------------------------------------------------------------------------------------------
# Locating parts


def present_files(directory: Path, part: ModelPart) -> dict[str, str] | None:
    """Preferred name -> the name actually present in `directory`, for every file of `part`; None if any is absent."""
    if not directory.is_dir():
        return None
    chosen = {}
    for choices in part.files:
        name = next((n for n in choices if (directory / n).is_file()), None)
        if name is None:
            return None
        chosen[choices[0]] = name
    return chosen


def _find_in_hf_cache(part: ModelPart) -> tuple[Path, dict[str, str]] | None:
    """The snapshot folder of `part` in the Hugging Face cache and the names found, if every file is there."""
    from huggingface_hub import try_to_load_from_cache

    root: Path | None = None
    chosen: dict[str, str] = {}
    for choices in part.files:
        for name in choices:
            cached = try_to_load_from_cache(part.repo_id, name, revision=part.revision)
            if not isinstance(cached, str):
                continue
            # The file sits at <snapshot>/<name>; walk up as many levels as `name` has parts.
            snapshot = Path(cached).parents[len(Path(name).parts) - 1]
            if root is not None and snapshot != root:
                return None
            root, chosen[choices[0]] = snapshot, name
            break
        else:
            return None
    return (root, chosen) if root is not None else None


@dataclass(frozen=True)
class PartLocation:
    """Where one part was found: `where` is 'weights/', 'hf-cache', 'bundle' or 'missing'.

    `files` maps each file's preferred name to the name present there (they differ when an
    alternative, such as a `.bin` twin, was found).
    """

    part: ModelPart
    where: str
    path: Path | None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.path is not None

    def file(self, preferred: str) -> Path:
        """The path of the file whose preferred name is `preferred`."""
        assert self.path is not None, f"{self.part.name} is missing"
        return self.path / self.files.get(preferred, preferred)


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
            files = present_files(directory, part)
            return PartLocation(part, "bundle", directory, files) if files else PartLocation(part, "missing", None)
        local = self.weights_dir / name
        files = present_files(local, part)
        if files is not None:
            return PartLocation(part, "weights/", local, files)
        cached = _find_in_hf_cache(part)
        if cached is not None:
            return PartLocation(part, "hf-cache", cached[0], cached[1])
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


def recorded_sha256(location: PartLocation, preferred: str, lock: dict[str, dict]) -> str | None:
    """The sha256 of a located file when it is known without hashing, else None.

    In `weights/` it is the lock entry (`ModelSources.require` verifies the file against it); in the
    Hugging Face cache a large file links to `blobs/<sha256>`.
    """
    if location.path is None:
        return None
    path = location.file(preferred)
    if location.where == "weights/":
        return lock.get(f"{location.part.name}/{path.name}", {}).get("sha256")
    if location.where == "hf-cache" and path.is_symlink():
        target = path.resolve()
        if target.parent.name == "blobs" and len(target.name) == 64:
            return target.name
    return None


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


HUB_LISTING = "the Hub's file list"


class HubError(MissingWeightsError):
    """The Hub did not give a part. The message is one line naming what is wrong and what to do."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


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


def _unreachable(names: list[str], weights_dir: Path, reason: str = "no network?") -> str:
    return (
        f"cannot reach the Hugging Face Hub at {hub_endpoint()} ({reason}); still missing: {', '.join(names)}. "
        f"Download on a machine with internet and copy the files into {weights_dir}/<part>/ (see weights/README.md), "
        f"or run offline with `--models DIR`."
    )


def explain_hub_error(error: BaseException, part: ModelPart, file_name: str | None = None, revision: str = "") -> str:
    """One line for an error of huggingface_hub while resolving `part` (or one of its files) on the Hub.

    Only a transfer that started and was cut off suggests running again; a removed or gated repository
    and a missing file say what to change instead.
    """
    import httpx2
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        XetDownloadError,
    )

    repo, revision = part.repo_id, revision or part.revision
    elsewhere = f"{part.env_var}=org/repo[@revision]"
    if isinstance(error, GatedRepoError):
        return (
            f"repository {repo} (part {part.name}) is gated: request access at {hub_endpoint()}/{repo} with your "
            f"Hugging Face account, then give a token of that account with HF_TOKEN=hf_... or `hf auth login`"
        )
    if isinstance(error, RepositoryNotFoundError):
        return (
            f"the Hub has no repository {repo} (part {part.name}): it was removed, renamed or made private, so the "
            f"part may have moved; point it at another copy with {elsewhere} (see weights/README.md)"
        )
    if isinstance(error, DisabledRepoError):
        return f"repository {repo} (part {part.name}) is disabled on the Hub; point the part elsewhere with {elsewhere}"
    if isinstance(error, RevisionNotFoundError):
        return (
            f"repository {repo} has no revision {revision} (part {part.name}): the pinned commit or branch is gone; "
            f"choose another with {part.env_var}={repo}@main (or another commit)"
        )
    if isinstance(error, RemoteEntryNotFoundError):
        return missing_file_message(part, file_name or "?", revision)
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        if status == 401:
            return (
                f"the Hub refused the token for {repo} (part {part.name}, HTTP 401): check HF_TOKEN or run "
                f"`hf auth login` again"
            )
        return f"the Hub at {hub_endpoint()} answered HTTP {status} for {repo} (part {part.name}); try again later"
    if isinstance(error, (httpx2.ConnectError, httpx2.ConnectTimeout, LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return _unreachable([part.name], Path("weights"), type(error).__name__)
    # The Hub serves large files through Xet where hf_xet is installed (the fake Hub of the tests does not):
    # a transfer it gives up on is a cut transfer too, and a rerun reuses the chunks already in HF_XET_CACHE.
    if isinstance(error, (httpx2.TransportError, OSError, XetDownloadError)):
        reason = str(error).splitlines()[0] if str(error) else ""
        return (
            f"download of {part.name}/{file_name} from {repo}@{revision[:12]} was cut off "
            f"({type(error).__name__}: {reason}); the files already complete are kept: run "
            f"`python -m fashion_rag weights download {part.name}` again to resume"
        )
    return f"the Hub could not give {repo} (part {part.name}): {type(error).__name__}: {error}"


def missing_file_message(part: ModelPart, file_name: str, revision: str) -> str:
    choices = next((c for c in part.files if file_name in c), (file_name,))
    names = " nor ".join(choices)
    return (
        f"repository {part.repo_id} at revision {revision} has no file {names} (part {part.name}): the upstream "
        f"file was renamed or removed; point the part at a repository that has it with "
        f"{part.env_var}=org/repo[@revision]"
    )


@dataclass(frozen=True)
class PlannedFile:
    name: str  # the name on the Hub (the first of the part's choices that the repository has)
    key: str  # its lock-file key, `<part>/<name>`
    size: int | None
    sha256: str | None  # the LFS object's sha256 as the Hub lists it (None for small, non-LFS files)


@dataclass(frozen=True)
class PartPlan:
    part: ModelPart
    commit: str
    files: tuple[PlannedFile, ...]


def expected_sha256(key: str, part: ModelPart, lock: dict[str, dict]) -> tuple[str, str] | None:
    """(sha256, where it was recorded) for `key`: the lock file first, then the known values of sources.json."""
    if key in lock:
        return lock[key]["sha256"], LOCK_FILE_NAME
    if is_default_source(part):
        known = known_files(part.repo_id).get(key.partition("/")[2], {}).get("sha256")
        if known:
            return known, "weights/sources.json (SPEC.md)"
    return None


def _refuse_changed(key: str, actual: str, expected: tuple[str, str], when: str) -> WeightsIntegrityError:
    sha, where = expected
    if where == LOCK_FILE_NAME:
        fix = f"if the upstream file changed on purpose, remove its entry from {LOCK_FILE_NAME}"
    elif where == HUB_LISTING:
        fix = "the transfer was corrupted: run the download again"
    else:
        fix = "the repository no longer holds the file the project was checked with; check it, then update weights/sources.json"
    return WeightsIntegrityError(f"{key}: {when} sha256 {actual[:12]}… differs from {where} {sha[:12]}…; {fix}")


def plan_part(part: ModelPart, lock: dict[str, dict]) -> PartPlan:
    """Check `part` on the Hub before any large transfer: repository, revision, file list, access to each file.

    Raises HubError (one line) or WeightsIntegrityError (a listed LFS hash differs from the lock / known value).
    """
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url

    endpoint = hub_endpoint()
    try:
        info = HfApi(endpoint=endpoint).model_info(
            part.repo_id, revision=part.revision, files_metadata=True, timeout=10
        )
    except Exception as error:  # noqa: BLE001 - every huggingface_hub error becomes one line that names it
        raise HubError(explain_hub_error(error, part)) from error
    listed = {sibling.rfilename: sibling for sibling in info.siblings or []}
    commit = info.sha or part.revision
    files = []
    for choices in part.files:
        name = next((n for n in choices if n in listed), None)
        if name is None:
            raise HubError(missing_file_message(part, choices[0], part.revision))
        sibling, key = listed[name], f"{part.name}/{name}"
        lfs = sibling.lfs
        if lfs is not None:
            expected = expected_sha256(key, part, lock)
            if expected is not None and expected[0] != lfs.sha256:
                raise _refuse_changed(key, lfs.sha256, expected, "refused before downloading: the Hub lists")
        files.append(PlannedFile(name, key, lfs.size if lfs else sibling.size, lfs.sha256 if lfs else None))
    # Gated repositories answer model_info but refuse the files: one HEAD per file finds that in seconds.
    for planned in files:
        url = hf_hub_url(part.repo_id, planned.name, revision=commit, endpoint=endpoint)
        try:
            get_hf_file_metadata(url, timeout=10, endpoint=endpoint)
        except Exception as error:  # noqa: BLE001
            raise HubError(explain_hub_error(error, part, planned.name, commit)) from error
    return PartPlan(part, commit, tuple(files))


def download(names: list[str], sources: ModelSources, timeout_s: float = 3.0) -> list[Path]:
    """Fetch parts into `weights/<part>/` with a progress bar, skipping files already present.

    Every part to fetch is first checked on the Hub (`plan_part`), so a removed repository, a gated one or
    a missing file is reported before anything large is transferred. Each file is hashed after download and
    must match the lock entry (or the known sha256 of sources.json); the first download records its sha256
    and the commit in the lock file. huggingface_hub downloads into a temporary file and renames it only
    when complete, so an interrupted transfer never leaves a truncated file where it would be loaded.
    """
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise MissingWeightsError(f"unknown model part(s) {', '.join(unknown)}: known parts are {', '.join(REGISTRY)}")
    todo = [sources.part(n) for n in (names or list(REGISTRY))]
    weights_dir = sources.weights_dir
    lock = read_lock(weights_dir)
    wanted = [p for p in todo if present_files(weights_dir / p.name, p) is None]
    if wanted and not hub_reachable(timeout_s):
        raise HubError(_unreachable([p.name for p in wanted], weights_dir))
    plans = {p.name: plan_part(p, lock) for p in wanted}  # all checks before the first transfer

    from huggingface_hub import hf_hub_download

    written = []
    for part in todo:
        target = weights_dir / part.name
        plan = plans.get(part.name)
        if plan is None:  # complete on disk (e.g. placed by hand): hash and lock what is there
            present = present_files(target, part) or {}
            entries = [
                (name, None, lock.get(f"{part.name}/{name}", {}).get("revision", "")) for name in present.values()
            ]
        else:
            entries = [(f.name, f.sha256, plan.commit) for f in plan.files]
        for file_name, listed_sha, commit in entries:
            path, key = target / file_name, f"{part.name}/{file_name}"
            if not path.is_file():
                logger.info("downloading %s from %s@%s", key, part.repo_id, commit)
                try:
                    hf_hub_download(
                        part.repo_id, file_name, revision=commit, local_dir=str(target), endpoint=hub_endpoint()
                    )
                except Exception as error:  # noqa: BLE001
                    write_lock(weights_dir, lock)  # keep what the files finished so far recorded
                    raise HubError(explain_hub_error(error, part, file_name, commit)) from error
            actual = sha256_of(path)
            expected = expected_sha256(key, part, lock) or ((listed_sha, HUB_LISTING) if listed_sha else None)
            if expected is not None and expected[0] != actual:
                rejected = path.with_name(path.name + ".rejected")
                os.replace(path, rejected)
                raise _refuse_changed(key, actual, expected, f"moved to {rejected.name}, never loaded: its")
            entry = {"sha256": actual, "size": path.stat().st_size, "repo_id": part.repo_id, "revision": commit}
            lock.setdefault(key, entry)
            written.append(path)
        write_lock(weights_dir, lock)
    return written


# --- garment catalogs kept as Hugging Face datasets (`index build --dataset owner/name`)


def explain_dataset_error(error: BaseException, repo_id: str, revision: str) -> str:
    """One line for an error of huggingface_hub while fetching dataset `repo_id`: what is wrong, what to do."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"dataset {repo_id}@{revision}"
    if isinstance(error, GatedRepoError):
        return f"{where} is gated: request access at {hub_endpoint()}/datasets/{repo_id}, then set HF_TOKEN=hf_..."
    if isinstance(error, RepositoryNotFoundError):
        return f"the Hub has no {where.split('@')[0]} (removed, renamed or private; a private one needs HF_TOKEN)"
    if isinstance(error, RevisionNotFoundError):
        return f"dataset {repo_id} has no revision {revision}: use --revision main or an existing commit"
    if isinstance(error, (httpx2.ConnectError, httpx2.ConnectTimeout, LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return _dataset_unreachable(where, type(error).__name__)
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        return f"the Hub at {hub_endpoint()} answered HTTP {error.response.status_code} for {where}; try again later"
    if isinstance(error, (httpx2.TransportError, OSError)):
        return f"download of {where} was cut off ({type(error).__name__}); run the same command again to resume"
    return f"the Hub could not give {where}: {type(error).__name__}: {error}"


def _dataset_unreachable(where: str, reason: str) -> str:
    return (
        f"cannot reach the Hugging Face Hub at {hub_endpoint()} for {where} ({reason}): download its parquet "
        f"files on a machine with internet and pass their folder to --dataset instead"
    )


def download_dataset(repo_id: str, revision: str) -> tuple[Path, str]:
    """Fetch the parquet files of Hub dataset `repo_id` at `revision` into the Hugging Face cache (a rerun
    downloads nothing; a cut transfer resumes). Returns (the snapshot folder, the commit it holds). Every
    public dataset has parquet files: its own, or the Hub's conversion at revision `refs/convert/parquet`.
    HubError (one line) otherwise."""
    from huggingface_hub import HfApi, hf_hub_download

    endpoint = hub_endpoint()
    if not hub_reachable():
        raise HubError(_dataset_unreachable(f"dataset {repo_id}@{revision}", "no network?"))
    try:
        info = HfApi(endpoint=endpoint).dataset_info(repo_id, revision=revision, timeout=10)
        commit = info.sha or revision
        files = sorted(s.rfilename for s in info.siblings or [] if s.rfilename.endswith(".parquet"))
        if not files:
            raise HubError(
                f"dataset {repo_id}@{revision} has no parquet file: try --revision refs/convert/parquet (the Hub's "
                f"parquet conversion of every public dataset)"
            )
        for name in files:
            path = hf_hub_download(repo_id, name, repo_type="dataset", revision=commit, endpoint=endpoint)
    except HubError:
        raise
    except Exception as error:  # noqa: BLE001 - every huggingface_hub error becomes one line that names it
        raise HubError(explain_dataset_error(error, repo_id, revision)) from error
    return Path(path).parents[len(Path(name).parts) - 1], commit  # .../snapshots/<commit>/
