"""The status line: which models, which device, and what works (Generate, search, masks).

While the app's background load runs (fashion_rag/startup.py) the line says how far it got and reads no
model, so the page shows it at once; afterwards it names the generation path in use (eager, CUDA graphs or
compiled) and what its warm-up took.
"""

from __future__ import annotations


def status_markdown(editor) -> str:
    progress = getattr(editor, "progress", None)
    if progress is not None and (progress.loading or progress.problem):
        return loading_markdown(editor, progress)
    status = editor.status()
    kind = status["kind"]
    label = {"real": "published weights"}.get(kind, f"{kind} bundle (random weights: pictures are noise)")
    missing = editor.missing_generation_parts()
    if kind == "real" and missing:
        label = "published weights, not all present"
    lines = [f"**Models:** `{status['models']}` ({label}) · **device:** `{status['device']}`"]
    if missing:
        lines.append(
            f"**Generate is unavailable:** missing {', '.join(missing)}. Fetch with "
            f"`python -m fashion_rag weights download {' '.join(missing)}`. Photo, mask and search still work."
        )
    elif getattr(editor, "generation_problem", None):
        lines.append(f"**Generate is unavailable:** {editor.generation_problem}. Photo, mask and search still work.")
    else:
        lines.append("**Generate:** ready (Fashion-RAG weights: CC BY-NC 4.0, non-commercial use only).")
        speed = getattr(getattr(editor, "_pipeline", None), "speed_path", None)
        if speed is not None:
            lines.append(f"**UNet:** {speed.describe()}")
    search = editor.searcher
    reason = f" ({search.mode_reason})" if getattr(search, "mode_reason", "") else ""
    lines.append(f"**Search:** {search.mode}{reason}")
    masks = "clothes parser" if editor.preparer.parser is not None else "offline path (pose + person segmentation)"
    lines.append(f"**Masks:** {masks}")
    return "  \n".join(lines)


def loading_markdown(editor, progress) -> str:
    """The line during (or after a failed) background load: touches no model, so it never waits for one."""
    device = editor.device if editor.device is not None else editor.settings.runtime.device
    lines = [f"**Models:** `{editor.sources.models}` · **device:** `{device}`"]
    if progress.problem:
        lines.append(f"**Loading the models failed:** {progress.problem}. What loaded before still works.")
    else:
        lines.append(
            f"**Generate:** models still loading ({progress.percent}%"
            + (f", {progress.current}" if progress.current else "")
            + "). Photo, mask and search work as soon as their part has loaded."
        )
    return "  \n".join(lines)


def generate_ready(editor) -> bool:
    """Whether the Generate button is enabled: not while the background load runs."""
    progress = getattr(editor, "progress", None)
    return progress is None or not progress.loading
