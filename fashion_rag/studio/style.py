"""How the studio page looks beyond Gradio's theme: its CSS, and the highlight of every picked garment.

Layout (issue 23): on a laptop screen (1400x900) the result column stays in view while the person and
garment columns scroll (it is sticky, at most the window's height, its lower part scrolling inside), so
Generate and the result are on screen whenever a garment is picked; below 1024 px the columns stack and
nothing is sticky. Gallery captions wrap onto up to three lines
instead of being cut to a dozen characters. Below 720 px the galleries wrap their thumbnails to rows.

Picks: Gradio's gallery marks only its last clicked item (`.selected`), even after that click dropped the
pick. The page keeps the picked places (gallery indices, in pick order) in a hidden JSON component; a small
script marks those thumbnails with `studio-picked` and their pick number, and the CSS draws that mark
instead of Gradio's.
"""

from __future__ import annotations

import gradio as gr

CSS = """
.step-title h3 {margin: 0 0 4px 0}
#plan-note, #result-note {min-height: 1.6em}
#person-upload {max-height: 120px}
/* The own garment box is a third of a column wide: its size-and-download cell left the name ".p" (the file is
   the designer's own, so the name matters more than a link back to it). */
#own-garment .file-preview td.download {display: none}
#mask-hint {font-size: var(--text-sm); color: var(--body-text-color-subdued)}
/* clip, not Gradio's hidden: the same look, but no scroll container, which would stop the sticky column */
.gradio-container {overflow: clip !important}
@media (min-width: 1024px) {
  /* Shorter than the window by what follows the columns (the two closed panels, 4 and 5, and the footer:
     ~180 px): a sticky box stops at its row's end, which at the page's end is that far above the window's
     bottom. Generate and the result stay on screen; history scrolls inside (nowrap: Gradio's columns wrap,
     which would put what does not fit into a second, hidden column). */
  #result-column {position: sticky; top: 4px; align-self: flex-start; max-height: calc(100vh - 184px);
                  flex-wrap: nowrap; overflow-y: auto; overscroll-behavior: contain}
  #result-column > * {flex-shrink: 0}  /* scroll, never squeeze the before/after */
}
@media (max-width: 720px) {
  /* A phone: Gradio keeps a gallery's column count at 100 px or more a column, so at 390 px the side-by-side's
     third result fell past the gallery's edge (and so would a fourth history entry); they wrap to rows here. */
  #results .grid-container, #samples .grid-container, #history .grid-container, #outfit-result .grid-container
    {grid-template-columns: repeat(auto-fill, minmax(100px, 1fr))}
  #side-by-side .grid-container {grid-template-columns: repeat(auto-fill, minmax(120px, 1fr))}
}
#results .caption-label, #history .caption-label, #side-by-side .caption-label {
  white-space: normal; max-width: none; left: 0; right: 0; bottom: 0; border-radius: 0;
  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; line-height: 1.25;
  font-size: var(--text-xs); background: rgba(255, 255, 255, 0.88); color: #222;
}
#results .thumbnail-item.selected:not(.studio-picked) {--ring-color: transparent; border-color: var(--border-color-primary)}
#results .thumbnail-item.studio-picked {--ring-color: var(--color-accent); border: 3px solid var(--color-accent)}
#results .thumbnail-item.studio-picked::after {
  content: attr(data-pick); position: absolute; top: 4px; left: 4px; z-index: 2; min-width: 1.5em;
  padding: 0 4px; border-radius: 999px; background: var(--color-accent); color: white; font-weight: 700;
  text-align: center;
}
"""

# (places) -> []: mark the thumbnails at `places` (gallery indices, in pick order) and only those. Applied
# again after the next frames: a search or a history restore replaces the gallery and its picks together. Each
# application reads the latest places: a timer of an earlier call must not put back the marks of older picks.
HIGHLIGHT_PICKS = """
(places) => {
  window.studioPickedPlaces = Array.isArray(places) ? places : [];
  const apply = () => document.querySelectorAll('#results .thumbnail-item').forEach((item, index) => {
    const marked = window.studioPickedPlaces;
    const order = marked.indexOf(index);
    item.classList.toggle('studio-picked', order >= 0);
    if (order >= 0) { item.dataset.pick = String(order + 1); } else { delete item.dataset.pick; }
  });
  apply();
  requestAnimationFrame(apply);
  setTimeout(apply, 250);
  setTimeout(apply, 1000);
  return [];
}
"""


def picked_places(picks: list[str] | None, hit_ids: list[str] | None) -> list[int]:
    """The gallery indices of the picked garments, in pick order (picks not among the hits have none)."""
    hits = list(hit_ids or [])
    return [hits.index(pick) for pick in picks or [] if pick in hits]


def wire_pick_highlight(picks: gr.Dropdown, results: gr.Gallery, hits: gr.State, private: dict) -> None:
    """Every change of the picks (a click, the dropdown, a search, a restore) or of the gallery re-marks it."""
    places = gr.JSON([], visible=False, elem_id="picked-places")
    gr.on([picks.change, results.change], picked_places, [picks, hits], [places], **private).then(
        None, [places], None, js=HIGHLIGHT_PICKS, **private
    )
