"""The status line: which models, which device, and what works (Generate, search, masks).

While the app's background load runs (fashion_rag/startup.py) the line says how far it got and reads no
model, so the page shows it at once. Afterwards it says in a designer's words what works (Generate, how the
catalog is searched, where masks come from); the developer's terms (search mode and its reason, the mask
path, the UNet path: eager, CUDA graphs or compiled, and its warm-up) are folded under "Details".
"""

from __future__ import annotations

import html

# What each search mode and mask source means to a designer; the developer's terms go under "Details".
SEARCH_WORDS = {
    "hybrid": "by the words of your description and by the look of the garments",
    "dense": "by the look of the garments (the catalog has no captions to match words)",
    "lexical": "by the words of the garments' captions only (the search by look is not available here)",
}
MASK_WORDS = {
    "parser": "found by the clothes parser, along the garment's outline",
    "offline": "found from the body's pose and outline (no clothes parser here)",
}


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
    search = editor.searcher
    source = "parser" if editor.preparer.parser is not None else "offline"
    lines.append(f"**Search:** {SEARCH_WORDS.get(search.mode, search.mode)} · **Masks:** {MASK_WORDS[source]}")
    return "  \n".join(lines) + "\n\n" + details_html(editor, source)


def details_html(editor, mask_source: str) -> str:
    """The developer's words (search mode and why, mask path, UNet path), folded away under "Details"."""
    search = editor.searcher
    reason = f" ({search.mode_reason})" if getattr(search, "mode_reason", "") else ""
    masks = "clothes parser" if mask_source == "parser" else "offline path (pose + person segmentation)"
    items = [f"search: {search.mode}{reason}", f"masks: {masks}"]
    speed = getattr(getattr(editor, "_pipeline", None), "speed_path", None)
    if speed is not None:
        items.append(f"UNet: {speed.describe()}")
    listed = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return f'<details id="status-details"><summary>Details</summary><ul>{listed}</ul></details>'


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
