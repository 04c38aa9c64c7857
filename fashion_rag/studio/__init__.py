"""The Gradio studio: `build_demo(editor)` gives the page and its API; `app.py` launches it.

layout and wiring   page.py       (columns side by side, events -> handlers)
the three columns   layout.py     (components only)
what events do      handlers.py   (plain functions of the editor and values)
restore, switch     restoring.py  (history restore and category switch, as plain functions)
the public API      api.py        (gr.api endpoints prepare, search, edit)
mask values, tools  masks.py      session state: session.py   category hints: categories.py
ZeroGPU duration    gpu.py        status line: status.py
CSS, pick highlight style.py      (pass CSS to launch: Gradio 6 ignores Blocks.css set before it)
"""

from fashion_rag.studio.page import build_demo
from fashion_rag.studio.status import status_markdown
from fashion_rag.studio.style import CSS

__all__ = ["CSS", "build_demo", "status_markdown"]
