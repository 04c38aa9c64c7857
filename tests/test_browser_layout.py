"""Issue 23 in a real browser: the layout at a laptop's 1400x900 and a phone's 390 px, every picked garment
marked in the results, and captions that show the garment's whole name.

Boxes are measured in the viewport (Playwright's bounding_box), so "in view" means on screen without
scrolling. Each test opens its own page (its own Gradio session) on the in-process studio, tiny bundle.
"""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .test_browser_state import PICKED, upload

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_page(chromium, url: str, width: int, height: int):
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    return page


def search(page, text: str = "red striped shirt") -> None:
    page.locator("#description textarea").fill(text)
    page.locator("#search-button").click()
    page.locator("#results .thumbnail-item").first.wait_for(timeout=60_000)


def pick(page, index: int, count: int) -> None:
    """Click result `index` and wait until `count` garments are picked."""
    page.locator("#results .thumbnail-item").nth(index).click()
    page.wait_for_function(f"() => {PICKED}.length === {count}", timeout=20_000)


def on_screen(page, selector: str, owner: str | None = None) -> dict:
    """The element's box, asserted wholly inside the viewport and, at its centre, not covered by anything
    outside `owner` (the element itself unless given: the before/after's handle sits on its image)."""
    box = page.locator(selector).first.bounding_box()
    view = page.viewport_size
    assert box is not None, selector
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= view["width"] and box["y"] + box["height"] <= view["height"], (selector, box)
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hit = page.evaluate(f"([x, y]) => !!document.elementFromPoint(x, y)?.closest({owner or selector!r})", centre)
    assert hit, f"{selector} is covered at its centre"
    return box


def test_generate_and_the_result_stay_in_view_on_a_laptop_screen(chromium, studio_url):
    """1400x900: after upload, search and picks, with the page scrolled down to the picks (or to its end),
    Generate is on screen and clickable, and so is the before/after, before and after the edit."""
    page = open_page(chromium, studio_url, 1400, 900)
    upload(page)
    search(page)
    pick(page, 0, 1)
    pick(page, 1, 2)
    page.locator("#advanced").click()  # 2 steps: the tiny bundle's edit in a second
    page.locator("#steps input[type=number]").fill("2")
    page.locator("#steps input[type=number]").press("Enter")
    page.locator("#steps input[type=number]").blur()  # the value is committed on blur too
    page.evaluate("() => document.querySelectorAll('#result-column').forEach(c => c.scrollTop = 0)")  # own scroll
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")  # the page's end
    page.locator("#picks").scroll_into_view_if_needed()
    scrolled = page.evaluate("() => window.scrollY")
    assert scrolled > 200  # the page did scroll: the first screen alone proves nothing
    generate = on_screen(page, "#generate-button")
    on_screen(page, "#compare")
    page.mouse.click(generate["x"] + generate["width"] / 2, generate["y"] + generate["height"] / 2)
    page.wait_for_selector("#result-note :text('Edit with')", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('#compare img').length === 2", timeout=30_000)
    assert page.evaluate("() => window.scrollY") == scrolled  # nothing scrolled to show it
    on_screen(page, "#compare img", owner="#compare")
    on_screen(page, "#generate-button")
    page.close()


# What a designer touches on the page: each must be wholly inside a 390 px wide window.
CONTROLS = (
    "button, input:not([type=file]):not([type=hidden]), textarea, canvas, [role=radio], "
    "label:has(input), .thumbnail-item"
)


def test_the_page_is_usable_at_390_px(chromium, studio_url):
    page = open_page(chromium, studio_url, 390, 844)
    upload(page)
    search(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    outside = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(e => e.offsetParent !== null && !e.closest('[aria-hidden=true], .hide'))
            .map(e => [e.id || e.getAttribute('aria-label') || e.tagName, e.getBoundingClientRect()])
            .filter(([, r]) => r.width > 0 && (r.left < 0 || r.right > 390))
            .map(([name, r]) => `${name} ${Math.round(r.left)}..${Math.round(r.right)}`)""",
        CONTROLS,
    )
    assert outside == [], outside
    # The mask editor's label is not hidden under its toolbar (the toolbar sits on the label's line).
    label = page.locator("#mask-editor label").first.bounding_box()
    tools = page.locator("#mask-editor button.icon-button").evaluate_all(
        "buttons => buttons.map(b => b.getBoundingClientRect()).map(r => [r.left, r.top, r.bottom])"
    )
    row = [left for left, top, bottom in tools if top < label["y"] + label["height"] and bottom > label["y"]]
    assert row and label["x"] + label["width"] <= min(row), (label, row)
    for selector in ("#search-button", "#generate-button", "#mask-grow", "#picks"):
        page.locator(selector).first.scroll_into_view_if_needed()
        on_screen(page, selector)
    page.close()


def test_every_picked_garment_is_marked_and_captions_show_whole_names(chromium, studio_url):
    """Three picks are all marked (with their order), a dropped one is not, and no caption is cut."""
    page = open_page(chromium, studio_url, 1400, 900)
    upload(page)
    search(page)
    for count, index in enumerate((0, 2, 4), start=1):
        pick(page, index, count)
    pick(page, 2, 2)  # clicked again: dropped

    def marks():
        return page.locator("#results .thumbnail-item").evaluate_all(
            """items => items.map(i => [getComputedStyle(i).borderTopColor, getComputedStyle(i).borderTopWidth,
                                        getComputedStyle(i, '::after').content])"""
        )

    page.mouse.move(0, 0)  # no hover ring on any item
    with contextlib.suppress(PlaywrightTimeout):  # the marks follow the picks' round trip; asserted below
        page.wait_for_function(
            """() => { const items = [...document.querySelectorAll('#results .thumbnail-item')];
                       const look = i => getComputedStyle(items[i]).borderTopColor + getComputedStyle(items[i]).borderTopWidth;
                       return look(0) !== look(1) && look(4) !== look(1) && look(2) === look(1); }""",
            timeout=30_000,
        )
    shown = marks()
    plain = shown[1]  # never picked
    assert shown[0] != plain and shown[4] != plain, shown  # both picks marked, the first one included
    assert shown[0][2] == '"1"' and shown[4][2] == '"2"', shown  # in pick order
    assert shown[2] == plain, shown  # the dropped pick (Gradio's last click) is not marked
    captions = page.locator("#results .caption-label").evaluate_all(
        """labels => labels.map(l => [l.innerText, l.scrollWidth <= l.clientWidth + 1,
                                      l.scrollHeight <= l.clientHeight + 1])"""
    )
    assert len(captions) == 6
    cut = [text for text, fits_across, fits_down in captions if not (fits_across and fits_down)]
    assert cut == [], cut
    assert all(len(text) > 15 for text, _, _ in captions), captions  # whole names, e.g. "1. orange and red …"
    page.close()


def test_a_refused_upload_marks_only_the_upload_box(chromium, studio_url, tmp_path):
    """A file that is no image: the toast says why, and the "Error" mark sits on the upload box only, not on
    the mask editor, the notes or the pose of the previous photo."""
    page = open_page(chromium, studio_url, 1400, 900)
    upload(page)
    page.locator("#person-upload").get_by_label("Clear").first.click()
    bad = tmp_path / "photo.png"
    bad.write_text("not an image")
    page.locator("#person-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_selector(".toast-body :text('is not an image that can be read')", timeout=30_000)
    errors = """() => [...document.querySelectorAll('[data-testid=status-tracker]')]
        .filter(t => !t.classList.contains('hide') && t.innerText.includes('Error')).map(t => t.closest('[id]')?.id)"""
    page.wait_for_function(f"() => ({errors})().length > 0", timeout=30_000)  # the marks follow the toast
    marked = page.evaluate(errors)
    assert marked == ["person-upload"], marked
    page.close()


def test_the_own_garment_box_shows_the_uploaded_files_name(chromium, studio_url, tmp_path):
    """At 1400x900 the own-garment box sat beside its preview, a third of a column wide: the file's name was cut
    to ".p" next to its size, so the designer could not see which garment image was added."""
    from pathlib import Path

    from .conftest import EXAMPLE_CATALOG

    garment = tmp_path / "linen-shirt.png"
    garment.write_bytes(Path(EXAMPLE_CATALOG / "upper_body" / "top-001.png").read_bytes())
    page = open_page(chromium, studio_url, 1400, 900)
    page.locator("#own-garment input[type=file]").set_input_files(str(garment))
    page.wait_for_selector("#own-garment-preview img", timeout=30_000)
    name = page.locator("#own-garment .filename").first
    assert name.inner_text().replace("\n", "") == "linen-shirt.png"  # the text is there; is it on screen?
    shown = page.evaluate(
        """() => [...document.querySelectorAll('#own-garment .filename > span')]
            .map(s => [s.scrollWidth, s.clientWidth, s.getBoundingClientRect().width])"""
    )
    for scroll, client, width in shown:  # no part of the name cut off (stem and extension)
        assert width > 0 and scroll <= client, shown
    page.close()
