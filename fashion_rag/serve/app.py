"""The serve-mode application: the Gradio page as ingress over a pool of edit workers.

    python app.py --serve [--replicas N] [--ray-address ADDR]        # start_serving below
    serve run --name fashion-rag fashion_rag.serve.app:build_app models=DIR replicas=2   # or the config.yaml

The page runs in one ingress replica (it holds the sessions, the search and the queue); edits go to the
EditWorker pool. The page's "gpu" events may run as many edits at once as the pool has workers, so a user
waits in the page's visible queue rather than in Ray's.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from typing import Any

import gradio as gr
from fastapi import FastAPI
from ray import serve
from ray.serve.gradio_integrations import GradioIngress

from fashion_rag.config import REPO_ROOT, AppSettings, app_from_env, runtime_from_env
from fashion_rag.serve.worker import PoolOptions, edit_deployment

logger = logging.getLogger(__name__)

EXAMPLES_DIR = REPO_ROOT / "examples"
GPU_EVENTS = "gpu"  # the concurrency id of the page's and the API's edit events (studio/page.py, api.py)


def follow_pool(demo: gr.Blocks, pool_size: int) -> int:
    """Let every edit event run `pool_size` at once (the local page runs one); returns how many it changed."""
    changed = 0
    for fn in demo.fns.values():
        if fn.concurrency_id == GPU_EVENTS:
            fn.concurrency_limit = pool_size
            changed += 1
    return changed


class StudioIngress(GradioIngress):
    """The page, mounted on FastAPI so that its queue starts with the replica (Gradio's lifespan)."""

    def __init__(self, settings: AppSettings, worker, pool_size: int) -> None:
        from fashion_rag.editor import Editor
        from fashion_rag.serve.pool import PooledEditor
        from fashion_rag.studio import CSS, build_demo
        from fashion_rag.studio.admission import enable_queue

        # Gradio deletes its upload folder's files when a page shuts down; on a redeploy the old ingress drains
        # while the new one takes uploads, so each replica keeps its uploads in a folder of its own.
        os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="fashion-rag-ingress-")
        editor = Editor.from_settings(settings)
        editor.ensure_index()  # the workers read the same index folder (shared disk, or built alike per node)
        self.editor = PooledEditor(editor, worker, pool_size)
        demo = build_demo(self.editor, settings)
        enable_queue(demo, settings.limits, behind_proxy=settings.on_space)
        follow_pool(demo, pool_size)
        app = gr.mount_gradio_app(
            FastAPI(), demo, path="/", max_file_size=f"{settings.max_upload_mb}mb", css=CSS,
            allowed_paths=[str(EXAMPLES_DIR), str(settings.catalog_dir), str(settings.output_dir)],
        )  # fmt: skip
        super(GradioIngress, self).__init__(
            app
        )  # GradioIngress builds without the lifespan; its base takes any ASGI app


def application(settings: AppSettings, pool: PoolOptions):
    """The bound Serve application: StudioIngress over the EditWorker pool."""
    worker = edit_deployment(settings, pool)
    # The page holds long-lived event streams, one per waiting browser: no per-replica request cap of 5.
    ingress = serve.deployment(StudioIngress, name="StudioIngress").options(
        ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000
    )
    return ingress.bind(settings, worker, pool.max_replicas)


def pool_options(replicas: int | None, gpus_in_cluster: float, cpus_in_cluster: float) -> PoolOptions:
    """--replicas N fixes the pool; without it, autoscale from 1 to one replica per GPU (or per CPU)."""
    gpus = gpus_in_cluster >= 1
    if replicas is not None:
        return PoolOptions(min_replicas=replicas, max_replicas=replicas, fixed=True, gpus=gpus)
    most = int(gpus_in_cluster) if gpus else max(1, int(cpus_in_cluster))
    return PoolOptions(min_replicas=1, max_replicas=most, gpus=gpus)


def build_app(args: dict[str, Any]):
    """`serve run fashion_rag.serve.app:build_app key=value …`: models, catalog, index, output_dir, replicas.

    Reads the same environment variables as `python app.py` (FASHION_RAG_MODELS …) for what is not given.
    """
    import ray

    known = {"models", "catalog", "index", "output_dir", "replicas", "device"}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"unknown argument(s) {sorted(unknown)}: use {', '.join(sorted(known))}")
    runtime = runtime_from_env(models=args.get("models"), device=args.get("device"))
    settings = app_from_env(runtime=runtime, catalog_dir=args.get("catalog"), index_dir=args.get("index"),
                            output_dir=args.get("output_dir"))  # fmt: skip
    resources = ray.cluster_resources() if ray.is_initialized() else {}
    replicas = int(args["replicas"]) if args.get("replicas") is not None else None
    return application(settings, pool_options(replicas, resources.get("GPU", 0), resources.get("CPU", 1)))


def runtime_env() -> dict[str, Any]:
    """Workers import this checkout: on a cluster, every node has the repo at the same path (docs/DEPLOYMENT.md)."""
    return {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}


def start_serving(settings: AppSettings, replicas: int | None, ray_address: str | None, blocking: bool = True):
    """`python app.py --serve`: join the cluster at `ray_address` (or start one on this machine, with all its
    GPUs), run the application with the page on settings.host:settings.port, and wait."""
    import ray

    ray.init(address=ray_address, logging_level=logging.WARNING, runtime_env=runtime_env())
    resources = ray.cluster_resources()
    pool = pool_options(replicas, resources.get("GPU", 0), resources.get("CPU", 1))
    if pool.gpus is False and settings.runtime.device == "auto":
        settings = replace(settings, runtime=replace(settings.runtime, device="cpu"))
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(application(settings, pool), name="fashion-rag", route_prefix="/", blocking=False)
    print(f"serving on http://{settings.host}:{settings.port} with {pool.min_replicas}..{pool.max_replicas} edit "
          f"worker(s), {'one GPU' if pool.gpus else 'one CPU'} each", flush=True)  # fmt: skip
    if not blocking:
        return pool
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return pool
