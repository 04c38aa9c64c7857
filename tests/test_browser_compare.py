"""Issue 23, "What to add", in a real browser (Debian's headless Chromium, Playwright): alternatives side by
side from the picks (restorable into the main controls), two history entries side by side, and an outfit.

Each test opens its own page (its own Gradio session) on the in-process studio with the tiny bundle.
"""

from __future__ import annotations

import json

import pytest

from .conftest import ASTRONAUT
from .test_browser_state import PICKED, generate, picked, search_and_pick, toasts, upload

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CAMERAMAN = ASTRONAUT.parent / "cameraman.png"  # shows the knees: the outfit's bottom can be prepared


@pytest.fixture
def page(chromium, studio_url):
    page = chromium.new_page(viewport={"width": 1600, "height": 1300})
    page.goto(studio_url)
    yield page
    page.close()


def two_steps(page) -> None:
    """2 denoising steps in the advanced controls (the panels use the page's settings)."""
    page.locator("#advanced").click()
    page.locator("#steps input[type=number]").fill("2")
    page.locator("#steps input[type=number]").press("Enter")


def open_panel(page, elem_id: str) -> None:
    """Open a collapsed panel under the three columns (4 · Side by side, 5 · Outfit) by its header."""
    page.locator(f"#{elem_id} > button.label-wrap").click()
    page.locator(f"#{elem_id} > button.label-wrap + *").first.wait_for(state="visible", timeout=10_000)


def thumbnails(page, elem_id: str) -> int:
    return page.evaluate(f"() => document.querySelectorAll('#{elem_id} .thumbnail-item').length")


def wait_for_thumbnails(page, elem_id: str, count: int, timeout_ms: int) -> None:
    """Until `#elem_id` shows `count` thumbnails; on a timeout, the failure says what the page said."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => document.querySelectorAll('#{elem_id} .thumbnail-item').length === {count}", timeout=timeout_ms
        )
    except PlaywrightTimeout:
        pytest.fail(f"#{elem_id}: {thumbnails(page, elem_id)} thumbnails, not {count}; toasts: {toasts(page)!r}")


def captions(page, elem_id: str) -> list[str]:
    return page.evaluate(f"() => [...document.querySelectorAll('#{elem_id} .thumbnail-item')].map(t => t.innerText)")


def downloads(page, elem_id: str) -> list[str]:
    return page.evaluate(f"() => [...document.querySelectorAll('#{elem_id} a')].map(a => a.href)")


def test_compare_picks_shows_one_result_per_pick_side_by_side_and_restores_one(page, tiny_editor):
    upload(page)
    two_steps(page)
    search_and_pick(page, "striped shirt", picks=2)
    ids = [text.split(" (")[-1].rstrip(")") for text in picked(page)]
    open_panel(page, "side-panel")
    page.locator("#compare-picks").click()
    wait_for_thumbnails(page, "side-by-side", 2, 120_000)
    page.wait_for_selector("#side-note :text('Compared 2 garments in one batch')", timeout=20_000)
    shown = captions(page, "side-by-side")
    for garment, caption in zip(ids, shown, strict=True):  # side by side in the order picked, named
        assert garment in caption and tiny_editor.searcher.caption(garment) in caption, shown
    seeds = {caption.split("seed ")[-1].split()[0] for caption in shown}
    assert len(seeds) == 1, shown  # one seed for both
    page.wait_for_function("() => document.querySelectorAll('#side-downloads a').length >= 4", timeout=20_000)
    assert sum(".recipe.json" in href for href in downloads(page, "side-downloads")) == 2  # 2 images, 2 recipes
    assert thumbnails(page, "history") == 2  # both are history entries

    page.locator("#side-by-side .thumbnail-item").nth(1).click()  # the second garment: into the main controls
    page.wait_for_selector("#result-note :text('Restored the settings of #2')", timeout=30_000)
    page.wait_for_function(f"() => {PICKED}.length === 1 && {PICKED}[0].includes({ids[1]!r})", timeout=20_000)
    assert page.locator("#seed input").input_value() == seeds.pop()
    assert "Error" not in toasts(page), toasts(page)


def test_two_history_entries_side_by_side(page):
    upload(page)
    search_and_pick(page, "striped shirt")
    generate(page, 1)
    generate(page, 2)
    open_panel(page, "side-panel")
    pair = page.locator("#history-pair input")
    for number in ("#1", "#2"):
        pair.click()
        page.locator("ul[role=listbox] li", has_text=number).first.click()
    wait_for_thumbnails(page, "side-by-side", 2, 30_000)
    page.wait_for_selector("#side-note :text('History #1 and #2 side by side')", timeout=20_000)
    shown = captions(page, "side-by-side")
    assert shown[0].startswith("#1") and shown[1].startswith("#2"), shown


def test_an_outfit_in_one_go_gives_both_steps_and_one_recipe(page, tiny_editor, tmp_path):
    upload(page, CAMERAMAN)
    two_steps(page)
    open_panel(page, "outfit-panel")
    for part, text in (("top", "striped shirt"), ("bottom", "blue jeans")):
        page.locator(f"#outfit-{part}-text textarea, #outfit-{part}-text input").first.fill(text)
        page.locator(f"#outfit-{part}-text textarea, #outfit-{part}-text input").first.press("Enter")
        page.wait_for_function(
            f"() => document.querySelector('#outfit-{part} input').value.includes('(')", timeout=30_000
        )
    top = page.locator("#outfit-top input").input_value().split(" (")[-1].rstrip(")")
    bottom = page.locator("#outfit-bottom input").input_value().split(" (")[-1].rstrip(")")
    page.locator("#outfit-button").click()
    wait_for_thumbnails(page, "outfit-result", 2, 120_000)
    page.wait_for_selector("#outfit-note :text('the recipe repeats both')", timeout=20_000)
    shown = captions(page, "outfit-result")
    assert "top:" in shown[0] and "outfit:" in shown[1], shown
    assert tiny_editor.searcher.caption(bottom) in shown[1], shown
    recipe_links = [href for href in downloads(page, "outfit-downloads") if href.endswith(".recipe.json")]
    assert len(recipe_links) == 1, downloads(page, "outfit-downloads")  # one recipe for the outfit
    recipe = json.loads(page.request.get(recipe_links[0]).text())
    assert [(s["category"], s["garment_ids"]) for s in recipe["outfit"]] == [
        ("upper_body", [top]),
        ("lower_body", [bottom]),
    ]
