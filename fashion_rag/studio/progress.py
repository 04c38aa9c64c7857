"""Where the page's events show their progress: never on the mask editor (issue 23, item 6).

Gradio 6.31's page shows an event's status on its progress targets (`show_progress_on`, else its
outputs). Before it hands a status to a component, its `update_state` first awaits that component's
`get_data`, and for a `gr.ImageEditor` that exports the canvas's background, layer and composite and uploads
the three PNGs. Each status of each event (queued, processing, progress steps, done) starts one such
export, for every component that ever was a progress target, and each status is applied when its own
export finishes. So on the editor:

- the statuses land out of order. A "processing" whose export finished after the "done" one stays,
  with its timer running ("processing | N s" long after the answer), until some later event sends
  another status. A brush stroke makes the exports slower and more uneven, and so does a slow network.
- any event re-uploads the canvas, two or three PNGs per status, although most events never read it.

In Gradio's sources these are `update_loading_stati_state` and `dispatch` in js/core/src/dependency.ts
and `update_state` in js/core/src/init.svelte.ts (compiled into gradio/templates/frontend/assets).
`tests/test_browser_mask_tools.py` reproduces it, with the uploads delayed at random as on a real
network. An editor that is no event's progress target gets no pending status, so nothing stale can show.

What stays is upstream: Gradio also keeps a "done" status for each input of a finished event, so once the
editor was an input (Grow, Generate) later statuses still export and upload it, though only to apply
"done" again. No Gradio issue reports this (searched: ImageEditor status, stuck, processing, upload);
gradio-app/gradio#8018, cited before, is Gradio 4's lost events on slow preprocessing, a different bug.
"""

from __future__ import annotations

import gradio as gr


def progress_on(outputs: list, editor: gr.ImageEditor) -> list:
    """The components where an event with these outputs shows its progress: the outputs other than the
    mask `editor` and the page's States (a State shows nothing). An empty list means nowhere (None would
    mean all outputs)."""
    return [c for c in outputs if c is not editor and not isinstance(c, gr.State)]
