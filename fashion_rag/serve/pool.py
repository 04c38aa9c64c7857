"""PooledEditor: the Editor API the page and the endpoints call, with the costly calls sent to the worker pool.

Search, the status line, saving files and mask touch-ups stay in the page's process (fast, and the search must
answer while every worker is busy). `prepare`, `edit` and `run` go to a replica through a Serve deployment
handle. A replica lost mid-call (its process killed, a CUDA crash) costs one retry, which Serve routes to a
live replica; a second loss gives the user a clear message. Errors the user can fix come back as raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

import ray.exceptions

from fashion_rag.request import EditRequest

logger = logging.getLogger(__name__)

# A replica that is gone, or going: the call did not finish and may run again elsewhere.
WORKER_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


class WorkerLostError(RuntimeError):
    """An edit failed twice because its worker was lost; the message says what to do."""


class PooledEditor:
    """`editor` (search, files, status) plus `handle` (a DeploymentHandle of EditWorker) for the heavy calls."""

    remote = True  # a request goes whole to one worker (studio/gpu.py: run_on_gpu)

    def __init__(self, editor, handle, pool_size: int) -> None:
        self.local = editor
        self.handle = handle
        self.pool_size = pool_size  # the most edits that run at once (the page's concurrency follows it)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)  # settings, searcher, search, save_result, with_user_mask …

    def status(self) -> dict[str, Any]:
        status = dict(self.local.status())
        status["device"] = f"{self.pool_size} edit worker(s) on Ray Serve"
        return status

    def prepare(self, photo, category: str, mask_variant: str = "box"):
        return self.call("prepare", photo, category, mask_variant)

    def edit(self, request: EditRequest, progress=None):
        """Editor.edit's signature; `progress(done, total)` follows the worker's denoising steps."""
        return self.run(request, progress)

    def run(self, request: EditRequest, progress=None):
        """One request on one worker. With `progress(done, total)`, the worker streams its denoising steps."""
        from fashion_rag.results import check_seed

        # The seed is drawn here, so that a retry on another replica makes the same pixels.
        request = replace(request, seed=check_seed(request.seed))
        if progress is None:
            return self.call("run", request)
        return self.retried("run", lambda: self.streamed(request, progress))

    def streamed(self, request: EditRequest, progress):
        """The result of `EditWorker.run_streaming`, calling `progress` for each step it reports."""
        for event in self.handle.options(stream=True).run_streaming.remote(request):
            if event[0] == "step":
                progress(event[1], event[2])
            else:
                return event[1]
        raise RuntimeError("the edit worker's stream ended without a result")

    def call(self, method: str, *args: Any) -> Any:
        """`method` on a replica; once more on another replica when the first is lost."""
        return self.retried(method, lambda: getattr(self.handle, method).remote(*args).result())

    def retried(self, method: str, attempt_once) -> Any:
        for attempt in (1, 2):
            try:
                return attempt_once()
            except ray.exceptions.RayTaskError as error:
                raise error.cause from None  # the replica's own error (InputError …), without Ray's traceback
            except WORKER_LOST as error:
                if attempt == 2:
                    raise WorkerLostError(
                        "the edit worker stopped twice while running this edit (out of memory, or restarted): "
                        "try again in a minute, or ask for fewer images"
                    ) from error
                logger.warning("edit worker lost during %s (%s): retrying on another replica", method, error)
        raise AssertionError("unreachable")

    def run_many(self, requests: Iterable[EditRequest]) -> Iterator[tuple[int, Any, str | None]]:
        """(index, result, None) or (index, None, error message) for each request, as each finishes."""
        from fashion_rag.errors import USER_ERRORS, user_message

        requests = list(requests)
        # Threads only wait on Serve responses; Serve spreads the edits over the replicas and queues the rest.
        with ThreadPoolExecutor(max_workers=max(1, min(len(requests), 2 * self.pool_size + 2))) as waiters:
            futures = {waiters.submit(self.run, request): index for index, request in enumerate(requests)}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result(), None
                except (*USER_ERRORS, WorkerLostError) as error:
                    yield futures[future], None, user_message(error)
