"""What a newcomer met in a real browser (Debian's headless Chromium, Playwright) after issue 23: history entries
named by garment ids, the side-by-side gallery cutting off its third result on a phone, and a mask choice ("box /
precise") and a step ("px") that the page did not explain.

Each test opens its own page (its own Gradio session) on the in-process studio with the tiny bundle.
"""

from __future__ import annotations

import re

import pytest

from .test_browser_compare import captions, open_panel, two_steps, wait_for_thumbnails
from .test_browser_layout import open_page, search
from .test_browser_state import toasts, upload

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ID = re.compile(r"\b(top|bottom|dress)-\d{3}\b")  # a catalog id of the example catalog


def compare_first_hits(page, text: str) -> list[str]:
    """Search `text`, compare with nothing picked (one result per search result, at most 4) and return the
    search results' names as the results gallery shows them ("1. plain purple t-shirt")."""
    two_steps(page)
    search(page, text)
    names = [c.split(". ", 1)[1] for c in captions(page, "results")]
    open_panel(page, "side-panel")
    page.locator("#compare-picks").click()
    wait_for_thumbnails(page, "side-by-side", 4, 120_000)
    return names


def test_history_and_its_choices_name_the_garments_and_fit_their_thumbnails(chromium, studio_url):
    """1400x900: four history entries (one comparison) are named by their garments' catalog names, not ids, and
    no caption is cut off by its thumbnail; the "two history entries" choices name them too, with the seed."""
    page = open_page(chromium, studio_url, 1400, 900)
    upload(page)
    names = compare_first_hits(page, "burgundy floral button-down shirt with pink flowers")
    wait_for_thumbnails(page, "history", 4, 30_000)
    labels = page.locator("#history .caption-label").evaluate_all(
        """labels => labels.map(l => [l.innerText, l.scrollWidth <= l.clientWidth + 1,
                                      l.scrollHeight <= l.clientHeight + 1])"""
    )
    assert len(labels) == 4, labels
    for number, (text, fits_across, fits_down) in zip((4, 3, 2, 1), labels, strict=True):  # newest first
        assert text.startswith(f"#{number} · ") and not ID.search(text), labels
        name = text.split(" · ", 1)[1]
        assert names[number - 1].startswith(name.removesuffix("…")), (names, labels)  # its garment's name
        assert fits_across and fits_down, labels  # all of it on the thumbnail
    page.locator("#history-pair input").click()
    choices = page.locator("ul[role=listbox] li").all_inner_texts()
    assert len(choices) == 4 and not any(ID.search(c) for c in choices), choices
    assert all(" · seed " in c for c in choices), choices
    assert "Error" not in toasts(page), toasts(page)
    page.close()


def test_a_comparison_shows_every_result_on_a_phone(chromium, studio_url):
    """390x844: all four results of a comparison lie inside the side-by-side gallery (wrapped to rows), none past
    its right edge where the gallery cut the third one off."""
    page = open_page(chromium, studio_url, 390, 844)
    upload(page)
    compare_first_hits(page, "striped shirt")
    page.locator("#side-by-side").scroll_into_view_if_needed()
    boxes = page.evaluate(
        """() => { const wrap = document.querySelector('#side-by-side .grid-wrap').getBoundingClientRect();
                   return [...document.querySelectorAll('#side-by-side .thumbnail-item')].map(t => {
                       const r = t.getBoundingClientRect();
                       return [Math.round(r.left), Math.round(r.right), Math.round(wrap.left), Math.round(wrap.right)]; }); }"""
    )
    assert len(boxes) == 4, boxes
    outside = [box for box in boxes if box[0] < box[2] or box[1] > box[3] or box[1] > 390]
    assert outside == [], boxes
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.close()


@pytest.mark.parametrize("width, height", [(390, 844), (1400, 900)])
def test_the_mask_choice_and_the_grow_step_are_explained_on_the_page(chromium, studio_url, width, height):
    """The choice "box / precise" and the step "px" meant nothing to a designer: each control says what its values do,
    in words on screen (not cut off) on a phone and on a laptop."""
    page = open_page(chromium, studio_url, width, height)
    explained = {
        "#mask-variant": ("box: the whole rectangle around the garment", "precise: the outline of what is worn"),
        "#grow-px": ("How far Grow and Shrink move the mask's edge", "pixels"),
    }
    for selector, phrases in explained.items():
        page.locator(selector).scroll_into_view_if_needed()
        for phrase in phrases:
            text = page.locator(f"{selector} :text({phrase!r})").first
            text.wait_for(state="visible", timeout=10_000)
            box = text.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, phrase, box)
            assert text.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1")
    page.close()
