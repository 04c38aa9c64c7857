"""The registry of model parts, as data: `weights/sources.json` says, for each part, its Hub repository and
revision, its licence and size, what it is used for, and which of the repository's files the project
reads (by role, with the names each may have upstream). This module turns that into ModelPart values and
names the checkpoint files the code opens, so that a file name is written in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from fashion_rag.config import ENV_REPO_PREFIX, REPO_ROOT

LOCK_FILE_NAME = "weights.lock.json"
BUNDLE_FILE_NAME = "bundle.json"
VERIFIED_STAMP_NAME = ".verified.json"
SOURCES_FILE = REPO_ROOT / "weights" / "sources.json"


@cache
def load_sources_file(path: Path = SOURCES_FILE) -> dict:
    """The facts of `weights/sources.json`: per part its repository, revision and files read, per
    repository its files."""
    return json.loads(Path(path).read_text())


def known_files(repo_id: str) -> dict[str, dict]:
    """File name -> known facts (`sha256`, `size`) of a repository listed in sources.json ({} if not listed)."""
    return load_sources_file()["repositories"].get(repo_id, {}).get("files", {})


@dataclass(frozen=True)
class ModelPart:
    """One downloadable model part: a Hub repository at a revision and the files the project reads.

    Each entry of `files` is the names one file may have upstream, in order of preference: the first
    that exists is used (a safetensors file first, then its `.bin` pickle twin). `roles` names each entry
    ("unet", "weights", ...), in the same order.
    """

    name: str
    repo_id: str
    revision: str  # a pinned commit where one is known, else a branch (the commit fetched goes in the lock)
    files: tuple[tuple[str, ...], ...]
    licence: str
    size_gb: float  # approximate download size, for the status table
    used_for: str
    note: str = ""  # where the source comes from (e.g. a community mirror), for the status table
    roles: tuple[str, ...] = ()

    @property
    def file_names(self) -> tuple[str, ...]:
        """The preferred name of every file (what a download asks for first and the tiny bundle writes)."""
        return tuple(choices[0] for choices in self.files)

    def file(self, role: str) -> str:
        """The preferred name of the file with this role (KeyError for a role the part does not have)."""
        if role not in self.roles:
            raise KeyError(f"part {self.name} has no file {role!r}: it has {', '.join(self.roles)}")
        return self.files[self.roles.index(role)][0]

    def file_choices(self, role: str) -> tuple[str, ...]:
        """Every name the file with this role may have, preferred first."""
        self.file(role)
        return self.files[self.roles.index(role)]

    @property
    def env_var(self) -> str:
        """The environment variable that points this part at another repository."""
        return ENV_REPO_PREFIX + self.name.upper().replace("-", "_")


def _build_registry() -> dict[str, ModelPart]:
    return {
        name: ModelPart(
            name=name,
            repo_id=facts["repo_id"],
            revision=facts["revision"],
            files=tuple(tuple(names) for names in facts["files_read"].values()),
            licence=facts["licence"],
            size_gb=float(facts["size_gb"]),
            used_for=facts["used_for"],
            note=facts.get("note", ""),
            roles=tuple(facts["files_read"]),
        )
        for name, facts in load_sources_file()["parts"].items()
    }


REGISTRY: dict[str, ModelPart] = _build_registry()

# What each capability of the product needs.
GENERATION_PARTS = ("sd2-inpainting", "fashion-rag", "garment-encoder")
SEARCH_PARTS = ("retrieval-encoder",)
PARSER_PARTS = ("clothes-parser",)

# The checkpoint files the code opens by name (all from sources.json).
UNET_CHECKPOINT = REGISTRY["fashion-rag"].file("unet")  # the fine-tuned 27-channel UNet
ADAPTER_CHECKPOINT = REGISTRY["fashion-rag"].file("inversion_adapter")
RETRIEVAL_CONFIG = REGISTRY["retrieval-encoder"].file("config")
RETRIEVAL_WEIGHTS = REGISTRY["retrieval-encoder"].file_choices("weights")  # safetensors, else the .bin twin


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
