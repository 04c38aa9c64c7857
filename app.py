"""The Fashion-RAG studio web app (Gradio). UI only: models load in main(), never at import time.

python app.py [--models SRC] [--catalog DIR] [--host H] [--port P]
"""

from __future__ import annotations

import argparse

import gradio as gr

from fashion_rag.config import AppSettings, app_from_env, runtime_from_env
from fashion_rag.weights import ModelSources


def status_markdown(sources: ModelSources) -> str:
    lines = [f"**Model sources:** `{sources.models}` ({sources.kind})", ""]
    for loc in sources.status():
        state = f"{loc.where} `{loc.path}`" if loc.found else "**missing**"
        lines.append(f"- `{loc.part.name}` ({loc.part.used_for}; licence {loc.part.licence}): {state}")
    return "\n".join(lines)


def build_demo(sources: ModelSources) -> gr.Blocks:
    with gr.Blocks(title="Fashion-RAG studio") as demo:
        gr.Markdown("# Fashion-RAG studio")
        gr.Markdown(status_markdown(sources), elem_id="model-status")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fashion-RAG studio")
    parser.add_argument("--models", default=None, help="'default' or a model bundle directory")
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--catalog", default=None, help="catalog folder (default: examples/catalog)")
    parser.add_argument("--host", default=AppSettings.host)
    parser.add_argument("--port", type=int, default=AppSettings.port)
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runtime = runtime_from_env(models=args.models, weights_dir=args.weights_dir)
    settings = app_from_env(runtime=runtime, catalog_dir=args.catalog, host=args.host, port=args.port, share=args.share)
    sources = ModelSources(runtime.models, runtime.weights_dir, runtime.repo_overrides)
    print(status_markdown(sources).replace("**", "").replace("`", ""))
    build_demo(sources).launch(server_name=settings.host, server_port=settings.port, share=settings.share)


if __name__ == "__main__":
    main()
