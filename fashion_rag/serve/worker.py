"""The edit deployment: each replica owns one Editor and runs one edit at a time.

A replica asks Ray for one GPU on CUDA machines (Ray sets CUDA_VISIBLE_DEVICES, so the editor's "cuda" is that
GPU), or for one CPU with one torch thread elsewhere (tests, CPU boxes). Everything that costs real time runs
here: preparing a photo (`prepare`), encoding garments and the edit (`run`). Serve queues what exceeds
`max_ongoing_requests` and the autoscaler sizes the pool on that queue.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ray import serve

from fashion_rag.config import AppSettings
from fashion_rag.errors import WeightsIntegrityError
from fashion_rag.request import EditRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolOptions:
    """How many workers, and what each one owns."""

    min_replicas: int = 1  # autoscaling lower bound (kept warm: the first edit loads no model)
    max_replicas: int = 1  # autoscaling upper bound; None-free: app.py computes it from the cluster's GPUs
    fixed: bool = False  # --replicas N: exactly N, no autoscaling
    gpus: bool = False  # one GPU per replica (CUDA), else one CPU per replica
    cpu_threads: int = 1  # torch threads of a CPU replica
    # Requests a worker holds at once: one edit running and the next one waiting on the worker, so the worker
    # never idles while the page writes a result and sends the next request, and the next photo is prepared
    # while the current edit denoises. Edits themselves run one at a time (Editor's generation lock).
    ongoing_per_worker: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"replicas {self.min_replicas}..{self.max_replicas}: need 1 <= min <= max")

    @property
    def slots(self) -> int:
        """The most requests the pool holds at once: the page's edit concurrency follows it."""
        return self.max_replicas * self.ongoing_per_worker

    def deployment_options(self) -> dict[str, Any]:
        actor = {"num_gpus": 1} if self.gpus else {"num_cpus": 1}
        options: dict[str, Any] = {"ray_actor_options": actor, "max_ongoing_requests": self.ongoing_per_worker}
        if self.fixed:
            options["num_replicas"] = self.max_replicas
        else:
            # Queue length drives the pool: one ongoing edit per replica is the target, so a waiting request
            # asks for another replica (after upscale_delay_s), up to max_replicas.
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": 1,
                "upscale_delay_s": 5,
                "downscale_delay_s": 300,
            }
        return options


class EditWorker:
    """One replica: an Editor with its models loaded once."""

    def __init__(self, settings: AppSettings, cpu_threads: int = 1) -> None:
        import torch

        from fashion_rag.editor import Editor

        if not torch.cuda.is_available():
            torch.set_num_threads(cpu_threads)  # replicas share the CPUs: one thread each, no oversubscription
        self.editor = Editor.from_settings(settings)
        self.editor.preparer  # noqa: B018 - loaded now, not in the first user's edit
        if not self.editor.missing_generation_parts():
            try:
                self.editor.pipeline  # noqa: B018
            except WeightsIntegrityError as error:  # as in the local mode: each edit then says what is wrong
                logger.warning("generation is unavailable: %s", error)
        # Missing weights do not stop the replica either: the page still serves photos, masks and search, and
        # each edit answers with the missing parts and the command that fetches them.

    def run(self, request: EditRequest):
        """Prepare (when the request has a photo), encode the garments, edit: an EditResult."""
        return self.editor.run(request)

    def run_streaming(self, request: EditRequest) -> Iterator[tuple]:
        """`run` as a stream (a Serve generator response): ("step", done, total) after each denoising step, then
        ("result", EditResult). The page's progress bar follows the worker's steps."""
        events: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                result = self.editor.run(request, progress=lambda done, total: events.put(("step", done, total)))
                events.put(("result", result))
            except BaseException as error:  # noqa: BLE001 - raised again below, in the stream
                events.put(("error", error))

        threading.Thread(target=work, name="edit", daemon=True).start()
        while True:
            event = events.get()
            if event[0] == "error":
                raise event[1]
            yield event
            if event[0] == "result":
                return

    def prepare(self, photo, category: str, mask_variant: str = "box"):
        """A PreparedPerson (framing, pose, automatic masks) of a photo, without its pose map: 14 MB that the
        page never reads and the edit rebuilds from the keypoints (PersonFrame.prepared)."""
        return replace(self.editor.prepare(photo, category, mask_variant=mask_variant), pose_map=None)

    def pid(self) -> int:
        """This replica's process id (the fault tests kill one)."""
        return os.getpid()


def edit_deployment(settings: AppSettings, pool: PoolOptions):
    """The bound edit deployment of `pool`'s size, over `settings`."""
    deployment = serve.deployment(EditWorker, name="EditWorker").options(**pool.deployment_options())
    return deployment.bind(settings, pool.cpu_threads)
