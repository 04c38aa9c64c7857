"""Issue 23 in a real browser (Debian's headless Chromium, Playwright): the page's state stays consistent
through category switches and history restores, and the mask tools can be undone (the editor that stayed
"processing" after them, item 6, is tests/test_browser_mask_tools.py).

Each test opens its own page (its own Gradio session) on the in-process studio with the tiny bundle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ASTRONAUT

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium, studio_url):
    page = chromium.new_page(viewport={"width": 1600, "height": 1300})
    page.goto(studio_url)
    yield page
    page.close()


def upload(page, path: Path = ASTRONAUT) -> None:
    page.locator("#person-upload input[type=file]").set_input_files(str(path))
    page.wait_for_selector("#person-notes :text('Mask found from the body')", timeout=60_000)


def search_and_pick(page, text: str, picks: int = 1) -> None:
    page.locator("#description textarea").fill(text)
    page.locator("#search-button").click()
    thumbnails = page.locator("#results .thumbnail-item")
    thumbnails.first.wait_for(timeout=60_000)
    for index in range(picks):
        thumbnails.nth(index).click()  # one at a time: a click while the last pick is pending is dropped
        page.wait_for_function(f"() => picked().length === {index + 1}".replace("picked()", PICKED))


def choose_category(page, category: str) -> None:
    page.locator(f"#category input[value={category}]").check()


def generate(page, count: int) -> None:
    """Generate with 2 steps and wait for history entry number `count`."""
    if not page.locator("#steps").is_visible():
        page.locator("#advanced").click()
        page.locator("#steps input[type=number]").fill("2")
        page.locator("#steps input[type=number]").press("Enter")
    page.locator("#generate-button").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#history .thumbnail-item').length === {count}", timeout=120_000
    )


PICKED = "[...document.querySelectorAll('#picks .token > span, #picks [class*=token] > span')].map(s => s.innerText)"


def picked(page) -> list[str]:
    return page.evaluate(f"() => {PICKED}")


def checked_category(page) -> str:
    return page.evaluate("() => document.querySelector('#category input:checked').value")


def toasts(page) -> str:
    return " | ".join(page.locator(".toast-body").all_inner_texts())


def switched(monkeypatch) -> list:
    """The categories the server has switched to (the studio runs in this process). The page's notes read the
    same before and after a switch, so a test that picks right after one must wait for the switch itself: its
    answer resets the results and picks, and a pick made before it lands is lost."""
    from fashion_rag.studio import restoring

    done, real = [], restoring.switch_category

    def record(editor, path, person, category, variant):
        answer = real(editor, path, person, category, variant)
        done.append(category)
        return answer

    monkeypatch.setattr(restoring, "switch_category", record)
    return done


def wait_until_switched(page, categories: list, category: str) -> None:
    """Until the server has switched to `category` (`switched`) and the page has applied its answer."""
    for _ in range(600):  # 60 s
        if categories and categories[-1] == category:
            break
        page.wait_for_timeout(100)
    assert categories and categories[-1] == category, f"the switch to {category} never reached the server"
    pending = "#results.pending, #results .pending, #picks.pending, #picks .pending"  # what its answer resets
    page.wait_for_function(f"() => !document.querySelector({pending!r})", timeout=30_000)


def test_restoring_an_older_entry_of_another_category_keeps_the_page_working(page, monkeypatch):
    categories = switched(monkeypatch)
    upload(page)
    choose_category(page, "dresses")
    wait_until_switched(page, categories, "dresses")
    search_and_pick(page, "red dress")
    dress = picked(page)[0]
    generate(page, 1)
    choose_category(page, "upper_body")
    wait_until_switched(page, categories, "upper_body")
    search_and_pick(page, "striped shirt")
    generate(page, 2)
    page.locator("#history .thumbnail-item").nth(1).click()  # the older, dresses entry
    page.wait_for_selector("#result-note :text('Restored the settings of #1')", timeout=30_000)
    page.wait_for_function(f"() => {PICKED}.some(t => t.includes({dress.split(' (')[-1][:-1]!r}))", timeout=20_000)
    assert checked_category(page) == "dresses"
    assert "Error" not in toasts(page) and "Value:" not in toasts(page), toasts(page)
    generate(page, 3)  # the restored picks are valid: Generate works without a new search
    page.wait_for_selector("#result-note :text('(dress-')", timeout=20_000)


def test_a_refused_category_switch_puts_the_radio_back(page):
    upload(page)
    choose_category(page, "lower_body")  # a half-body photo: no knee
    page.wait_for_selector(".toast-body :text('knee')", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#category input:checked').value === 'upper_body'", timeout=20_000
    )
    search_and_pick(page, "striped shirt")
    generate(page, 1)
    page.wait_for_selector("#result-note :text('(top-')", timeout=20_000)


def test_switching_category_drops_the_other_categorys_picks_with_a_word(page):
    upload(page)
    search_and_pick(page, "striped shirt", picks=2)
    choose_category(page, "dresses")
    page.wait_for_selector(".toast-body :text('Dropped')", timeout=30_000)
    page.wait_for_function(f"() => {PICKED}.length === 0", timeout=20_000)
    assert "not dresses garments" in toasts(page)


def brush_stroke(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """One stroke of the brush across the mask editor's canvas, in fractions of its width and height."""
    page.get_by_label("Brush").first.click()
    canvas = page.locator("#mask-editor canvas").first.bounding_box()
    (x0, y0), (x1, y1) = [
        (canvas["x"] + canvas["width"] * fx, canvas["y"] + canvas["height"] * fy) for fx, fy in (start, end)
    ]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    page.mouse.up()


def test_grow_can_be_undone(page, tiny_editor, monkeypatch):
    """Grow, then Undo: Generate gets the automatic mask again (the pipeline's mask is recorded)."""
    import numpy as np

    from fashion_rag.generation.pipeline import FashionRAGPipeline

    used, real = [], FashionRAGPipeline.__call__

    def record(self, frame, mask, category, **kwargs):
        used.append(np.asarray(mask) > 0.5)
        return real(self, frame, mask, category, **kwargs)

    monkeypatch.setattr(FashionRAGPipeline, "__call__", record)
    upload(page)
    undo = page.locator("#mask-undo")
    page.locator("#mask-grow").click()
    page.wait_for_selector("#mask-undo:text('Undo (1)')", timeout=20_000)  # the step has come back
    page.locator("#mask-grow").click()
    page.wait_for_selector("#mask-undo:text('Undo (2)')", timeout=20_000)
    undo.click()
    page.wait_for_selector("#mask-undo:text('Undo (1)')", timeout=20_000)
    page.locator("#description textarea").fill("red shirt")  # no pick: a text-only edit
    generate(page, 1)
    automatic = tiny_editor.prepare(ASTRONAUT, "upper_body").mask
    grown_once = automatic.sum() + 1000  # one Grow by 8 px adds far more than 1,000 of the frame's pixels
    assert used[-1].sum() > grown_once and not np.array_equal(used[-1], automatic)
    undo.click()
    page.wait_for_function("() => document.querySelector('#mask-undo').innerText.trim() === 'Undo'")
    generate(page, 2)
    np.testing.assert_array_equal(used[-1], automatic)


def test_undo_does_not_carry_a_mask_over_a_category_switch(page):
    """Grow on the upper-body mask, switch to lower body: Undo has nothing of the lower-body mask to take back
    (before, it still said "Undo (1)" and put the upper-body mask into the lower-body edit)."""
    upload(page, ASTRONAUT.parent / "cameraman.png")  # shows the knees: lower body can be prepared on it
    page.locator("#mask-grow").click()
    page.wait_for_selector("#mask-undo:text('Undo (1)')", timeout=20_000)
    choose_category(page, "lower_body")
    page.wait_for_function("() => document.querySelector('#mask-undo').innerText.trim() === 'Undo'", timeout=30_000)
    assert page.locator("#mask-undo button, button#mask-undo").first.is_disabled()


def test_smaller_things_a_designer_meets(page, tmp_path):
    """Human category labels (the value stays the id), an empty "Seed used" before any edit, a search with
    no matching caption said so, a non-image garment refused at upload with a thumbnail for a real one, and
    a new person photo clearing the previous before/after."""
    page.wait_for_selector("#category input[value=upper_body]", timeout=30_000)
    labels = page.locator("#category label:has(input)").all_inner_texts()
    assert [label.strip() for label in labels] == ["upper body", "lower body", "dresses"], labels
    assert page.locator("#seed-used input, #seed-used textarea").first.input_value() == ""
    upload(page)
    assert checked_category(page) == "upper_body"
    page.locator("#description textarea").fill("xyzzy plugh")
    page.locator("#search-button").click()
    page.wait_for_selector(".toast-body :text('No upper body caption matches')", timeout=30_000)

    fake = tmp_path / "garment.png"
    fake.write_text("not an image")
    page.locator("#own-garment input[type=file]").set_input_files(str(fake))
    page.wait_for_selector(".toast-body :text('was not added')", timeout=30_000)
    assert not page.locator("#own-garment-preview").is_visible()
    page.locator("#own-garment input[type=file]").set_input_files(
        str(ASTRONAUT.parent.parent / "catalog" / "upper_body" / "top-001.png")
    )
    page.wait_for_selector("#own-garment-preview img", timeout=30_000)

    generate(page, 1)
    page.wait_for_function("() => document.querySelectorAll('#compare img').length === 2", timeout=30_000)
    page.locator("#person-upload").get_by_label("Clear").first.click()  # gr.File: clear, then the next photo
    upload(page, ASTRONAUT.parent / "cameraman.png")
    page.wait_for_function("() => document.querySelectorAll('#compare img').length === 0", timeout=30_000)
    assert page.locator("#seed-used input, #seed-used textarea").first.input_value() == ""


def test_a_grow_clicked_while_a_category_switch_is_prepared_is_not_lost(page, monkeypatch):
    """A switch takes a while on a large photo. A Grow clicked meanwhile acted on the old category's mask, which the
    switch's answer then replaced: "Undo" with no step and the automatic lower-body mask, without a word (seen on
    the code before the fix with the switch slowed by 2 s). Now the tools wait, disabled, until the switch is in,
    and a Grow then grows the new category's mask."""
    import time

    from fashion_rag.studio import restoring

    real = restoring.switch_category

    def slow(*args, **kwargs):
        time.sleep(2.0)  # a large photo's preparation
        return real(*args, **kwargs)

    monkeypatch.setattr(restoring, "switch_category", slow)
    upload(page, ASTRONAUT.parent / "cameraman.png")  # shows the knees: lower body can be prepared on it
    tools = [page.locator(f"#mask-{tool} button, button#mask-{tool}").first for tool in ("grow", "shrink", "reset")]
    assert not any(tool.is_disabled() for tool in tools)
    choose_category(page, "lower_body")
    page.wait_for_timeout(300)  # the switch is on the server for 2 s more
    assert all(tool.is_disabled() for tool in tools), "a Grow clicked now would be lost"
    page.locator("#mask-grow").click()  # Playwright's click waits until the button takes clicks again
    page.wait_for_selector("#mask-undo:text('Undo (1)')", timeout=30_000)  # the step is on the lower-body mask
    page.wait_for_timeout(1000)
    assert page.locator("#mask-undo").inner_text().strip() == "Undo (1)" and checked_category(page) == "lower_body"
    assert not any(tool.is_disabled() for tool in tools)
