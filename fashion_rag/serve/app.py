"""The serve-mode application: the Gradio page as ingress over a pool of edit workers.

    python app.py --serve [--replicas N] [--ray-address ADDR]        # start_serving below
    serve run --name fashion-rag fashion_rag.serve.app:build_app models=DIR replicas=2   # or the config.yaml

The page runs in one ingress replica (it holds the sessions, the search and the queue); edits go to the
EditWorker pool. The page's "gpu" events may run as many edits at once as the pool has workers, so a user
waits in the page's visible queue rather than in Ray's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import gradio as gr
from ray import serve

from fashion_rag.config import EXAMPLES_DIR, REPO_ROOT, AppSettings, app_from_env, runtime_from_env
from fashion_rag.serve.worker import PoolOptions, edit_deployment

logger = logging.getLogger(__name__)

APP_NAME = "fashion-rag"  # what `batch --ray-address` and the tests look up
HEAD_NODE = "node:__internal_head__"  # a resource only the head node has (Ray's own)
PORT_WAIT_S = 60.0
GPU_EVENTS = "gpu"  # the concurrency id of the page's and the API's edit events (studio/page.py, api.py)


def follow_pool(demo: gr.Blocks, pool_size: int) -> int:
    """Let every edit event run `pool_size` at once (the local page runs one); returns how many it changed."""
    changed = 0
    for fn in demo.fns.values():
        if fn.concurrency_id == GPU_EVENTS:
            fn.concurrency_limit = pool_size
            changed += 1
    return changed


class StudioIngress:
    """The page, served by Gradio's own server from this replica, on settings.host:settings.port.

    Not through Serve's HTTP proxy: an edit through the page makes 5-6 HTTP requests (upload, queue join, event
    stream, result files) and each hop through the proxy cost ~10 ms on a 2-core box (docs/DEPLOYMENT.md,
    "Where an edit's time goes"). The replica is placed on the head node, so the page's address is known.
    """

    def __init__(self, settings: AppSettings, worker, pool_size: int, slots: int | None = None) -> None:
        from fashion_rag.editor import Editor
        from fashion_rag.serve.pool import PooledEditor
        from fashion_rag.studio import build_demo
        from fashion_rag.studio.admission import enable_queue
        from fashion_rag.studio.uploads import use_own_upload_folder

        # On a redeploy the old ingress drains while the new one takes uploads (studio/uploads.py).
        use_own_upload_folder("fashion-rag-ingress-", keep_configured=False)
        editor = Editor.from_settings(settings)
        editor.ensure_index()  # the workers read the same index folder (shared disk, or built alike per node)
        self.editor = PooledEditor(editor, worker, pool_size)
        self.demo = build_demo(self.editor, settings)
        enable_queue(self.demo, settings.limits, behind_proxy=settings.on_space)
        follow_pool(self.demo, slots or pool_size)  # the page keeps every worker's next request waiting on it
        launch_page(self.demo, settings)

    def check_health(self) -> None:
        """Serve restarts a replica whose page server has stopped."""
        server = getattr(self.demo, "server", None)
        if server is None or not server.thread.is_alive():
            raise RuntimeError("the page's server thread has stopped")

    def __del__(self) -> None:
        self.demo.close(verbose=False)  # frees the port for the next replica (a redeploy)


def launch_page(demo: gr.Blocks, settings: AppSettings, wait_s: float = PORT_WAIT_S) -> None:
    """demo.launch on the settings' address; waits up to `wait_s` for the port, which a replica being replaced
    may still hold (Serve stops the old ingress while it starts the new one)."""
    from fashion_rag.studio import CSS  # Gradio 6 applies a page's CSS only when given at launch

    deadline = time.monotonic() + wait_s
    while True:
        try:
            demo.launch(
                server_name=settings.host,
                server_port=settings.port,
                prevent_thread_lock=True,
                quiet=True,
                css=CSS,
                max_file_size=f"{settings.max_upload_mb}mb",
                allowed_paths=[str(EXAMPLES_DIR), str(settings.catalog_dir), str(settings.output_dir)],
            )
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise OSError(f"port {settings.port} stayed busy for {wait_s:.0f} s: give another --port") from error
            time.sleep(1.0)


def application(settings: AppSettings, pool: PoolOptions):
    """The bound Serve application: StudioIngress over the EditWorker pool."""
    worker = edit_deployment(settings, pool)
    # num_cpus 0: the page shares the head node's CPUs; the head-node resource places it where its address is.
    ingress = serve.deployment(StudioIngress, name="StudioIngress").options(
        ray_actor_options={"num_cpus": 0, "resources": {HEAD_NODE: 0.001}}, num_replicas=1
    )
    return ingress.bind(settings, worker, pool.max_replicas, pool.slots)


def deploy(settings: AppSettings, pool: PoolOptions, blocking: bool = False):
    """Run the application on the connected cluster (Serve's HTTP proxy off: the page serves itself)."""
    serve.start(proxy_location="Disabled")
    return serve.run(application(settings, pool), name=APP_NAME, route_prefix=None, blocking=blocking)


def pool_options(replicas: int | None, gpus_in_cluster: float, cpus_in_cluster: float) -> PoolOptions:
    """--replicas N fixes the pool; without it, autoscale from 1 to one replica per GPU (or per CPU)."""
    gpus = gpus_in_cluster >= 1
    if replicas is not None:
        return PoolOptions(min_replicas=replicas, max_replicas=replicas, fixed=True, gpus=gpus)
    most = int(gpus_in_cluster) if gpus else max(1, int(cpus_in_cluster))
    return PoolOptions(min_replicas=1, max_replicas=most, gpus=gpus)


def build_app(args: dict[str, Any]):
    """`serve run fashion_rag.serve.app:build_app key=value …`: models, catalog, index, output_dir, replicas,
    device, host, port (the page's address).

    Reads the same environment variables as `python app.py` (FASHION_RAG_MODELS …) for what is not given.
    """
    import ray

    known = {"models", "catalog", "index", "output_dir", "replicas", "device", "host", "port"}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"unknown argument(s) {sorted(unknown)}: use {', '.join(sorted(known))}")
    runtime = runtime_from_env(models=args.get("models"), device=args.get("device"))
    settings = app_from_env(
        runtime=runtime,
        catalog_dir=args.get("catalog"),
        index_dir=args.get("index"),
        output_dir=args.get("output_dir"),
        host=args.get("host"),
        port=int(args["port"]) if args.get("port") is not None else None,
    )
    resources = ray.cluster_resources() if ray.is_initialized() else {}
    replicas = int(args["replicas"]) if args.get("replicas") is not None else None
    return application(settings, pool_options(replicas, resources.get("GPU", 0), resources.get("CPU", 1)))


def runtime_env() -> dict[str, Any]:
    """Workers import this checkout: on a cluster, every node has the repo at the same path (docs/DEPLOYMENT.md).
    Their libraries load quietly, as the app's do (a worker's log is not where a load report helps)."""
    from fashion_rag.cli import QUIET_ENVIRONMENT

    quiet = {**QUIET_ENVIRONMENT, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return {"env_vars": {"PYTHONPATH": str(REPO_ROOT), **quiet}}


def start_serving(settings: AppSettings, replicas: int | None, ray_address: str | None, blocking: bool = True):
    """`python app.py --serve`: join the cluster at `ray_address` (or start one on this machine, with all its
    GPUs), run the application with the page on settings.host:settings.port, and wait."""
    import ray

    ray.init(address=ray_address, logging_level=logging.WARNING, runtime_env=runtime_env())
    resources = ray.cluster_resources()
    pool = pool_options(replicas, resources.get("GPU", 0), resources.get("CPU", 1))
    if pool.gpus is False and settings.runtime.device == "auto":
        settings = replace(settings, runtime=replace(settings.runtime, device="cpu"))
    deploy(settings, pool)
    print(
        f"serving on http://{settings.host}:{settings.port} with {pool.min_replicas}..{pool.max_replicas} edit "
        f"worker(s), {'one GPU' if pool.gpus else 'one CPU'} each",
        flush=True,
    )
    if not blocking:
        return pool
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return pool
