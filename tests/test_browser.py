"""A real browser (Debian's headless Chromium, driven by Playwright) through the whole flow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import ASTRONAUT, REPO

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = REPO / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def page(studio_url):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1600, "height": 1300})
        page.goto(studio_url)
        yield page
        browser.close()


def test_upload_mask_search_pick_generate(page):
    page.locator("#person-upload input[type=file]").set_input_files(str(ASTRONAUT))
    page.wait_for_selector("#person-notes :text('Mask from the offline path')", timeout=60_000)
    assert page.locator("#mask-editor canvas").count() >= 1

    page.locator("#description textarea").fill("red striped shirt")
    page.locator("#search-button").click()
    thumbnails = page.locator("#results button.thumbnail-item, #results .thumbnail-item")
    thumbnails.first.wait_for(timeout=60_000)
    assert thumbnails.count() == 6
    thumbnails.nth(0).click()
    thumbnails.nth(1).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#picks .token, #picks [class*=token]').length >= 2", timeout=20_000
    )

    page.locator("#advanced").click()
    page.locator("#steps input[type=number]").fill("3")
    page.locator("#steps input[type=number]").press("Enter")
    page.locator("#generate-button").click()
    page.locator("#result img").first.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#seed-used input'); return i && i.value !== ''; }"
    )
    seed = int(page.locator("#seed-used input").input_value())
    assert 0 <= seed < 2**32
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000


def test_missing_garment_pick_shows_a_message_and_the_page_keeps_working(page):
    page.locator("#picks").locator("input").first.focus()
    for _ in range(3):
        page.keyboard.press("Backspace")
    page.locator("#generate-button").click()
    page.wait_for_selector(":text('0 garments picked')", timeout=30_000)
    page.locator("#search-button").click()
    page.locator("#results .thumbnail-item").first.wait_for(timeout=30_000)
