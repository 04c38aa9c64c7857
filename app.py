"""The Fashion-RAG studio web app: the entry point a Space runs. The page is `fashion_rag/studio/`.

    python app.py [--models SRC] [--catalog DIR] [--host H] [--port P] [--share] [--mcp]
    python app.py --serve [--replicas N] [--ray-address ADDR]   # the edit on a Ray Serve worker pool

Launches the page, then loads the models once in a background thread: the page answers within seconds and
its status line shows the load's progress. Nothing heavy is imported here, so tests import it without weights.
"""

from __future__ import annotations

import argparse
import logging
import time

from fashion_rag.config import EXAMPLES_DIR, AppSettings, app_from_env, runtime_from_env
from fashion_rag.errors import USER_ERRORS, user_message
from fashion_rag.outputs import Outputs
from fashion_rag.studio import CSS, build_demo, status_markdown
from fashion_rag.studio.admission import enable_queue
from fashion_rag.studio.api import parse_ids
from fashion_rag.studio.memory import limit_malloc_arenas
from fashion_rag.studio.uploads import use_own_upload_folder

__all__ = ["CSS", "AppSettings", "Outputs", "build_demo", "main", "parse_args", "parse_ids", "status_markdown"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fashion-RAG studio")
    parser.add_argument("--models", default=None, help="'default' (real weights) or a model bundle directory")
    parser.add_argument("--weights-dir", default=None, help="where downloaded weights live (default: weights/)")
    parser.add_argument("--catalog", default=None, help="catalog folder (default: examples/catalog)")
    parser.add_argument("--index", default=None, help="index folder (default: <catalog>/index)")
    parser.add_argument("--output-dir", default=None, help="where results are written (default: outputs/)")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: auto)")
    parser.add_argument("--low-vram", action="store_true", help="model CPU offload and VAE slicing")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    parser.add_argument("--host", default=None, help="address to listen on (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=AppSettings.port)
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--max-upload-mb", type=int, default=AppSettings.max_upload_mb)
    parser.add_argument("--mcp", action="store_true", help="prepare, search and edit as MCP tools too (README)")
    serve = parser.add_argument_group("serve mode (docs/DEPLOYMENT.md)")
    serve.add_argument("--serve", action="store_true", help="run the edit on a Ray Serve pool, one GPU per worker")
    serve.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="a fixed pool of N workers (default: autoscale from 1 to one per GPU of the cluster)",
    )
    serve.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start one here)")
    return parser


def fetch_weights(editor) -> None:
    """On a Space (no `make demo`), fetch what is missing at start; say so and go on if that fails."""
    from fashion_rag.weights import REGISTRY, download

    missing = [name for name in REGISTRY if not editor.sources.locate(name).found]
    if not missing:
        return
    try:
        download(missing, editor.sources)
    except USER_ERRORS as error:
        print(f"weights not fetched: {user_message(error)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Launch the page first, then load the models in the background (the status line shows their progress)."""
    from fashion_rag.cli import quiet_libraries

    started = time.perf_counter()
    limit_malloc_arenas()  # before the server's threads start
    use_own_upload_folder("fashion-rag-uploads-")  # unless GRADIO_TEMP_DIR names one (studio/uploads.py)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("fashion_rag").setLevel(logging.INFO)
    quiet_libraries()
    settings = settings_from_args(args)
    if args.serve or args.replicas is not None or args.ray_address:
        serve_main(parser_error=build_parser().error, args=args, settings=settings)
        return
    demo, editor = launch(settings, mcp_server=args.mcp)
    print(f"page up in {time.perf_counter() - started:.1f} s; loading the models in the background", flush=True)
    editor.load_in_background(before=fetch_weights if settings.on_space else None)
    demo.block_thread()


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    runtime = runtime_from_env(
        models=args.models,
        weights_dir=args.weights_dir,
        device=args.device,
        low_vram=args.low_vram or None,
        compile_unet=args.compile or None,
    )
    return app_from_env(
        runtime=runtime,
        catalog_dir=args.catalog,
        index_dir=args.index,
        host=args.host,
        port=args.port,
        share=args.share,
        max_upload_mb=args.max_upload_mb,
        output_dir=args.output_dir,
    )


def launch(settings: AppSettings, prevent_thread_lock: bool = True, mcp_server: bool = False):
    """(demo, editor): the page served with no model loaded yet; the editor's progress reads 'loading'.
    mcp_server (`--mcp`) is always a bool: given None, Gradio would follow the GRADIO_MCP_SERVER variable."""
    from fashion_rag.editor import Editor

    editor = Editor.from_settings(settings)
    editor.progress.begin()  # the page is built reading "loading", not loading the models itself
    demo = build_demo(editor, settings)
    enable_queue(demo, settings.limits, behind_proxy=settings.on_space)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        max_file_size=f"{settings.max_upload_mb}mb",
        prevent_thread_lock=prevent_thread_lock,
        allowed_paths=[str(EXAMPLES_DIR), str(settings.catalog_dir), str(settings.output_dir)],
        mcp_server=mcp_server,
        css=CSS,
    )
    return demo, editor


def serve_main(parser_error, args: argparse.Namespace, settings: AppSettings) -> None:
    """--serve: the page as the ingress of a Ray Serve application (imported here: the local mode needs no Ray)."""
    if not args.serve:
        parser_error("--replicas and --ray-address belong to serve mode: add --serve")
    if args.mcp:
        parser_error("--mcp runs with the local studio only (not yet with --serve): drop one of them")
    if args.replicas is not None and args.replicas < 1:
        parser_error(f"--replicas {args.replicas}: give 1 or more workers")
    from fashion_rag.serve.app import start_serving

    start_serving(settings, args.replicas, args.ray_address)


if __name__ == "__main__":
    main()
