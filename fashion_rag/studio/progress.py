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
- any event re-uploads the canvas: measured in headless Chromium on the tiny bundle, one Grow costs
  14 uploads, and a search typed after it costs 62, although the search never reads the mask.

The page's own code paths that show this are in `Blocks-*.js` (`update_loading_stati_state`) and
`core-*.js` (`update_state`) under gradio/templates/frontend/assets. `tests/test_browser_mask_tools.py`
reproduces it, with the uploads delayed at random as on a real network. An editor that is no event's
progress target gets no status, so there is nothing stale to show and nothing to export.
"""

from __future__ import annotations

import gradio as gr


def progress_on(outputs: list, editor: gr.ImageEditor) -> list:
    """The components where an event with these outputs shows its progress: the outputs other than the
    mask `editor` and the page's States (a State shows nothing). An empty list means nowhere (None would
    mean all outputs)."""
    return [c for c in outputs if c is not editor and not isinstance(c, gr.State)]
