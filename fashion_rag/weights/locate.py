"""Where each model part is found: a bundle directory, `weights/<part>/`, or the Hugging Face cache.

A *source* is either `default` (the real model parts, found in `weights/<part>/`, in the Hugging Face
cache, or downloaded) or the path of a *bundle*: a directory with one sub-directory per part in the same
on-disk layout as the real repositories (the tiny bundle of the tests is one), plus a `bundle.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fashion_rag.errors import MissingWeightsError
from fashion_rag.weights.lock import read_lock, verify_part
from fashion_rag.weights.registry import BUNDLE_FILE_NAME, REGISTRY, ModelPart, part_with_overrides


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
