"""Downloads from the Hub: model parts into `weights/<part>/`, checked before the first large transfer and
hashed after it; and the parquet files of a catalog dataset (`index build --dataset owner/name`).

All network access of the project sits in this package. A part is checked before anything large moves:
the repository and revision (`model_info`, one call), that every file exists, and access to each (a HEAD
request per file), so a removed or gated repository is refused in seconds.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fashion_rag.errors import MissingWeightsError, WeightsIntegrityError
from fashion_rag.files import sha256_file
from fashion_rag.weights.hub import (
    HubError,
    dataset_unreachable,
    explain_hub_error,
    hub_endpoint,
    hub_reachable,
    missing_file_message,
    unreachable,
)
from fashion_rag.weights.locate import ModelSources, present_files
from fashion_rag.weights.lock import read_lock, write_lock
from fashion_rag.weights.registry import LOCK_FILE_NAME, REGISTRY, ModelPart, is_default_source, known_files

logger = logging.getLogger(__name__)

HUB_LISTING = "the Hub's file list"


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
            return known, "weights/sources.json"
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
        raise HubError(unreachable([p.name for p in wanted], weights_dir))
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
            actual = sha256_file(path)
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


def download_dataset(repo_id: str, revision: str) -> tuple[Path, str]:
    """Fetch the parquet files of Hub dataset `repo_id` at `revision` into the Hugging Face cache (a rerun
    downloads nothing; a cut transfer resumes). Returns (the snapshot folder, the commit it holds). Every
    public dataset has parquet files: its own, or the Hub's conversion at revision `refs/convert/parquet`.
    HubError (one line) otherwise."""
    from huggingface_hub import HfApi, hf_hub_download

    endpoint = hub_endpoint()
    if not hub_reachable():
        raise HubError(dataset_unreachable(f"dataset {repo_id}@{revision}", "no network?"))
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
        raise HubError(explain_hub_error(error, repo_id, revision=revision)) from error
    return Path(path).parents[len(Path(name).parts) - 1], commit  # .../snapshots/<commit>/
