"""A local Hugging Face Hub for the download tests: a threaded HTTP server on 127.0.0.1 that speaks the
protocol `huggingface_hub` 2.4 uses, so the tests run the real client (HF_ENDPOINT points here).

Endpoints, as `HfApi.model_info` and `hf_hub_download` call them (huggingface_hub/hf_api.py, file_download.py),
and the same for a dataset repository (`FakeRepo(kind="dataset")`) under `/api/datasets/` and `/datasets/`:

- `GET /api/models/{repo_id}/revision/{revision}?blobs=true`: model info JSON (`id`, `sha`, `siblings` with
  `rfilename`, `size`, `blobId` and, for large files, `lfs: {sha256, size, pointerSize}`, `gated`, `private`).
- `HEAD`/`GET /{repo_id}/resolve/{revision}/{path}`: the file, with `X-Repo-Commit`, `ETag` (the git blob id
  of a small file; for a large (LFS) file `X-Linked-Etag` is its sha256 and `X-Linked-Size` its size),
  `Content-Length` and `Accept-Ranges`; `Range: bytes=N-` is answered with 206 and `Content-Range`.
- errors as the real Hub sends them: status, `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
  `EntryNotFound`, `GatedRepo`) and `X-Error-Message`. An unknown repository answers 401, as the Hub does
  for a removed one when asked without a token.

It never sends `X-Xet-Hash`, so the client takes its plain-HTTP path. Faults: `cut_once[path] = n` sends the
first n bytes of the first GET of that file, then drops the connection (the client resumes with a Range
request); `cut_always[path] = n` does the same and then drops every later request for it before answering.
`requests` records (method, repo_id, path, Range header) of every call (path '' for model info).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 1024  # files at least this large are served as LFS objects (the Hub's threshold is 10 MB)


def git_blob_id(data: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag of small files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str = "c0ffee" * 6 + "c0ff"  # 40 hex digits
    gated: bool = False  # files need a token in `FakeHub.tokens`; model info stays public, as on the Hub
    branches: tuple[str, ...] = ("main",)
    kind: str = "model"  # or "dataset": served under /api/datasets/ and /datasets/, as the Hub does

    def is_lfs(self, path: str) -> bool:
        return len(self.files[path]) >= LFS_THRESHOLD


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    cut_once: dict[str, int] = field(default_factory=dict)
    cut_always: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    resolved_revisions: list[str] = field(default_factory=list)  # the revision of every /resolve/ call
    info_revisions: list[str] = field(default_factory=list)  # the revision of every model info call

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_HubHandler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def gets(self) -> list[tuple[str, str | None]]:
        """(path, Range) of every file GET, in order."""
        return [(path, rng) for method, _, path, rng in self.requests if method == "GET" and path]


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    fake: FakeHub

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    # --- helpers

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, repo_id: str, kind: str = "model") -> FakeRepo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None or repo.kind != kind:
            self._error(401, "RepoNotFound", "Repository not found")
        return repo

    def _revision_ok(self, repo: FakeRepo, revision: str) -> bool:
        if revision in repo.branches or revision == repo.commit:
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return False

    def _record(self, repo_id: str, path: str) -> None:
        with self.fake._lock:
            self.fake.requests.append((self.command, repo_id, path, self.headers.get("Range")))

    # --- routes

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
        kind = "dataset" if parts[:1] == ["datasets"] or parts[:2] == ["api", "datasets"] else "model"
        if kind == "dataset" and parts[0] == "datasets":
            parts = parts[1:]  # /datasets/{repo_id}/resolve/... is /{repo_id}/resolve/... of a dataset
        if len(parts) >= 5 and parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4] == "revision":
            repo_id, revision = f"{parts[2]}/{parts[3]}", "/".join(parts[5:])
            self._record(repo_id, "")
            self.fake.info_revisions.append(revision)
            self._model_info(repo_id, revision, kind)
        elif len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, path = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
            self._record(repo_id, path)
            self.fake.resolved_revisions.append(revision)
            self._resolve(repo_id, revision, path, kind)
        else:
            self._error(404, "NotFound", f"no route for {self.path}")

    def _model_info(self, repo_id: str, revision: str, kind: str = "model") -> None:
        repo = self._repo(repo_id, kind)
        if repo is None or not self._revision_ok(repo, revision):
            return
        siblings = []
        for name, data in sorted(repo.files.items()):
            sibling = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if repo.is_lfs(name):
                sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(sibling)
        info = {"id": repo_id, "sha": repo.commit, "private": False, "gated": "manual" if repo.gated else False}
        body = json.dumps({**info, "siblings": siblings}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def _resolve(self, repo_id: str, revision: str, path: str, kind: str = "model") -> None:
        repo = self._repo(repo_id, kind)
        if repo is None or not self._revision_ok(repo, revision):
            return
        if repo.gated and self.headers.get("Authorization", "").removeprefix("Bearer ") not in self.fake.tokens:
            message = (
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to "
                f"access it. Please log in."
            )
            self._error(401, "GatedRepo", message)
            return
        if path not in repo.files:
            self._error(404, "EntryNotFound", f'{path} does not exist on "{revision}"', commit=repo.commit)
            return
        data = repo.files[path]
        start = 0
        rng = self.headers.get("Range")
        if self.command == "GET" and path in self.fake.cut_always and rng:
            self.close_connection = True  # drop the retry before answering
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rng and rng.startswith("bytes="):
            start = int(rng.removeprefix("bytes=").split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if repo.is_lfs(path):
            self.send_header("ETag", f'"{git_blob_id(data)}"')  # the pointer file's id; the client prefers the next two
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(data)))
        else:
            self.send_header("ETag", f'"{git_blob_id(data)}"')
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        with self.fake._lock:
            cut = self.fake.cut_once.pop(path, None)
            if cut is None and path in self.fake.cut_always:
                cut = self.fake.cut_always[path]
        if cut is not None:
            self.wfile.write(data[start:cut])
            self.wfile.flush()
            self.close_connection = True  # the rest never comes: the client sees the body end early
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data[start:])
