"""The Hugging Face Hub as this project meets it: where it is, whether it answers, and one explainer that
turns any error of huggingface_hub into one line saying what is wrong and what to do, for a model part
(and one of its files) or a catalog dataset.

Only a transfer that started and was cut off suggests running again; a removed or gated repository and a
missing file say what to change instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from fashion_rag.errors import MissingWeightsError
from fashion_rag.weights.registry import ModelPart


class HubError(MissingWeightsError):
    """The Hub did not give a part or a dataset. The message is one line naming what is wrong and what to do."""


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


def unreachable(names: list[str], weights_dir: Path, reason: str = "no network?") -> str:
    """The Hub cannot be reached for model parts `names`."""
    return (
        f"cannot reach the Hugging Face Hub at {hub_endpoint()} ({reason}); still missing: {', '.join(names)}. "
        f"Download on a machine with internet and copy the files into {weights_dir}/<part>/ (see weights/README.md), "
        f"or run offline with `--models DIR`."
    )


def dataset_unreachable(where: str, reason: str) -> str:
    """The Hub cannot be reached for a dataset (`where`: "dataset owner/name@revision")."""
    return (
        f"cannot reach the Hugging Face Hub at {hub_endpoint()} for {where} ({reason}): download its parquet "
        f"files on a machine with internet and pass their folder to --dataset instead"
    )


def missing_file_message(part: ModelPart, file_name: str, revision: str) -> str:
    choices = next((c for c in part.files if file_name in c), (file_name,))
    names = " nor ".join(choices)
    return (
        f"repository {part.repo_id} at revision {revision} has no file {names} (part {part.name}): the upstream "
        f"file was renamed or removed; point the part at a repository that has it with "
        f"{part.env_var}=org/repo[@revision]"
    )


def failure_kind(error: BaseException) -> str:
    """What went wrong, whatever was asked: gated, no-repo, disabled, no-revision, no-file, token (HTTP 401),
    http, unreachable, cut (a transfer that started), other."""
    import httpx2
    from huggingface_hub import errors as hub

    unreachable_errors = (
        httpx2.ConnectError,
        httpx2.ConnectTimeout,
        hub.LocalEntryNotFoundError,
        hub.OfflineModeIsEnabled,
    )
    kinds = (
        (hub.GatedRepoError, "gated"),
        (hub.RepositoryNotFoundError, "no-repo"),
        (hub.DisabledRepoError, "disabled"),
        (hub.RevisionNotFoundError, "no-revision"),
        (hub.RemoteEntryNotFoundError, "no-file"),
    )
    kind = next((name for cls, name in kinds if isinstance(error, cls)), None)
    if kind is not None:
        return kind
    if isinstance(error, hub.HfHubHTTPError) and error.response is not None:
        return "token" if error.response.status_code == 401 else "http"
    if isinstance(error, unreachable_errors):
        return "unreachable"
    # The Hub serves large files through Xet where hf_xet is installed (the fake Hub of the tests does not):
    # a transfer it gives up on is a cut transfer too, and a rerun reuses the chunks already in HF_XET_CACHE.
    if isinstance(error, (httpx2.TransportError, OSError, hub.XetDownloadError)):
        return "cut"
    return "other"


def explain_hub_error(
    error: BaseException, subject: ModelPart | str, file_name: str | None = None, revision: str = ""
) -> str:
    """One line for an error of huggingface_hub while resolving `subject` on the Hub: a model part (and
    one of its files, `file_name`), or a dataset repository id (str). `revision` defaults to the part's."""
    kind = failure_kind(error)
    if isinstance(subject, str):
        return _dataset_message(kind, error, subject, revision)
    return _part_message(kind, error, subject, file_name, revision or subject.revision)


def _part_message(kind: str, error: BaseException, part: ModelPart, file_name: str | None, revision: str) -> str:
    repo, elsewhere = part.repo_id, f"{part.env_var}=org/repo[@revision]"
    status = getattr(getattr(error, "response", None), "status_code", None)
    reason = str(error).splitlines()[0] if str(error) else ""
    messages = {
        "gated": f"repository {repo} (part {part.name}) is gated: request access at {hub_endpoint()}/{repo} with "
        f"your Hugging Face account, then give a token of that account with HF_TOKEN=hf_... or `hf auth login`",
        "no-repo": f"the Hub has no repository {repo} (part {part.name}): it was removed, renamed or made private, "
        f"so the part may have moved; point it at another copy with {elsewhere} (see weights/README.md)",
        "disabled": f"repository {repo} (part {part.name}) is disabled on the Hub; point the part elsewhere with "
        f"{elsewhere}",
        "no-revision": f"repository {repo} has no revision {revision} (part {part.name}): the pinned commit or "
        f"branch is gone; choose another with {part.env_var}={repo}@main (or another commit)",
        "token": f"the Hub refused the token for {repo} (part {part.name}, HTTP 401): check HF_TOKEN or run "
        f"`hf auth login` again",
        "http": f"the Hub at {hub_endpoint()} answered HTTP {status} for {repo} (part {part.name}); try again later",
        "cut": f"download of {part.name}/{file_name} from {repo}@{revision[:12]} was cut off "
        f"({type(error).__name__}: {reason}); the files already complete are kept: run "
        f"`python -m fashion_rag weights download {part.name}` again to resume",
        "other": f"the Hub could not give {repo} (part {part.name}): {type(error).__name__}: {error}",
    }
    if kind == "no-file":
        return missing_file_message(part, file_name or "?", revision)
    if kind == "unreachable":
        return unreachable([part.name], Path("weights"), type(error).__name__)
    return messages[kind]


def _dataset_message(kind: str, error: BaseException, repo_id: str, revision: str) -> str:
    where = f"dataset {repo_id}@{revision}"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if kind in ("token", "disabled", "no-file"):  # no advice of their own for a dataset: the HTTP status
        kind = "http" if status is not None else "other"
    messages = {
        "gated": f"{where} is gated: request access at {hub_endpoint()}/datasets/{repo_id}, then set HF_TOKEN=hf_...",
        "no-repo": f"the Hub has no dataset {repo_id} (removed, renamed or private; a private one needs HF_TOKEN)",
        "no-revision": f"dataset {repo_id} has no revision {revision}: use --revision main or an existing commit",
        "http": f"the Hub at {hub_endpoint()} answered HTTP {status} for {where}; try again later",
        "cut": f"download of {where} was cut off ({type(error).__name__}); run the same command again to resume",
    }
    if kind == "unreachable":
        return dataset_unreachable(where, type(error).__name__)
    return messages.get(kind, f"the Hub could not give {where}: {type(error).__name__}: {error}")
