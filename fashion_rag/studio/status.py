"""The status line: which models, which device, and what works (Generate, search, masks)."""

from __future__ import annotations


def status_markdown(editor) -> str:
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
    reason = f" ({search.mode_reason})" if getattr(search, "mode_reason", "") else ""
    lines.append(f"**Search:** {search.mode}{reason}")
    masks = "clothes parser" if editor.preparer.parser is not None else "offline path (pose + person segmentation)"
    lines.append(f"**Masks:** {masks}")
    return "  \n".join(lines)
