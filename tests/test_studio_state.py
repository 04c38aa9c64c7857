"""The page's state stays consistent (issue 23): a refused category switch, picks of another category,
and a history restore that brings back the picks, the mask and the uploaded garment, and says so."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image, ImageDraw

from fashion_rag.errors import InputError
from fashion_rag.studio import handlers, masks, restoring

from .conftest import ASTRONAUT, as_upload

UPLOADED = as_upload(ASTRONAUT)  # where the page's upload box would have put the photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = handlers.controls(9, 1, 7.5, "ddim", 1, True)  # seed, steps, guidance, sampler, samples, paste-back


@pytest.fixture(scope="module")
def uploaded(tiny_editor):
    state, value, _, _ = handlers.prepare_upload(tiny_editor, UPLOADED, "upper_body", "box")
    return state, value


def test_a_refused_category_switch_keeps_the_prepared_person_and_puts_the_radio_back(tiny_editor, uploaded):
    state, _ = uploaded
    view, refusal = restoring.switch_category(tiny_editor, UPLOADED, state, "lower_body", "box")
    assert "knee" in refusal and "kept upper body" in refusal
    assert view.category == "upper_body" and view.state is state  # radio back; state, mask and pose unchanged
    assert view.editor_value is None and view.pose is None
    # The radio back at the prepared category changes nothing (no second preparation).
    assert restoring.switch_category(tiny_editor, UPLOADED, state, "upper_body", "box") == (None, None)
    view, refusal = restoring.switch_category(tiny_editor, UPLOADED, None, "upper_body", "precise")
    assert refusal is None and view.state.category == "upper_body"
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(view.editor_value)), view.state.mask_precise)


def test_switching_category_drops_the_other_categorys_picks_and_searches_again(tiny_editor):
    kept, dropped = handlers.picks_in_category(tiny_editor, ["top-001", "dress-001", "top-002"], "upper_body")
    assert (kept, dropped) == (["top-001", "top-002"], ["dress-001"])
    hits = [hit.id for hit in tiny_editor.search("striped shirt", "upper_body", 3)]
    assert handlers.results_for_category(tiny_editor, hits, "striped shirt", "upper_body", 3) is None  # same category
    gallery, ids = handlers.results_for_category(tiny_editor, hits, "striped shirt", "lower_body", 3)
    assert len(ids) == len(gallery) == 3 and {tiny_editor.searcher.category_of(i) for i in ids} == {"lower_body"}
    assert handlers.results_for_category(tiny_editor, hits, "  ", "dresses", 3) == ([], [])  # no description


def test_history_restore_brings_back_picks_outside_the_current_hits_mask_and_garment(tiny_editor, uploaded):
    state, value = uploaded
    layer = value["layers"][0].copy()
    ImageDraw.Draw(layer).rectangle([(300, 30), (370, 90)], fill=masks.MASK_RGBA)  # painted off the automatic mask
    painted = {**value, "layers": [layer]}
    person = handlers.person_for_edit(tiny_editor, state, painted, "box")
    garment = Image.new("RGB", (300, 400), (20, 160, 40))
    first, history = handlers.generate(
        tiny_editor, handlers.edit_request(person, ["top-001"], [garment], "", FAST), [], "restoretest"
    )
    automatic = handlers.person_for_edit(tiny_editor, state, value, "box")
    second, history = handlers.generate(
        tiny_editor, handlers.edit_request(automatic, ["top-002"], [], "", FAST), history, "restoretest"
    )

    # The picks dropdown's choices hold the restored ids even when the current search shows others.
    hits = [hit.id for hit in tiny_editor.search("red skirt", "lower_body", 3)]
    choices = handlers.pick_choices(tiny_editor, hits, list(first.garment_ids))
    assert [i for _, i in choices] == [*hits, "top-001"] and "purple t-shirt (top-001)" in choices[-1][0]
    view, words = restoring.restore_person(tiny_editor, first, UPLOADED, state, "box")
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(view.editor_value)), person.mask)
    assert Image.open(first.views["garment"]).getpixel((5, 5)) == (20, 160, 40)
    note = restoring.restore_words(first, words, ["top-001"], [])
    assert "mask of #1 is back" in note and "seed 9 is now fixed" in note and "-1" in note
    view, _ = restoring.restore_person(tiny_editor, second, UPLOADED, state, "box")
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(view.editor_value)), state.mask_box)
    assert "garment" not in second.views  # restoring #2 clears the own-garment box

    wide = _wide_copy()
    other, *_ = handlers.prepare_upload(tiny_editor, wide, "upper_body", "precise")
    view, words = restoring.restore_person(tiny_editor, first, wide, other, "precise")
    assert "another photo" in words[-1] and view.variant == "box"  # the entry's variant, this photo's mask
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(view.editor_value)), other.mask_box)


def _wide_copy() -> str:
    """A wide version of the astronaut, uploaded (in Gradio's upload folder, as the page's upload box puts it)."""
    import tempfile

    path = tempfile.gettempdir() + "/fashion-rag-restore-wide.png"
    Image.open(ASTRONAUT).convert("RGB").resize((640, 512)).save(path)
    return as_upload(path)


def test_a_search_no_caption_matches_says_so(tiny_editor):
    *_, note = handlers.search(tiny_editor, "xyzzy plugh", "upper_body", 3)
    assert note.startswith("No upper body caption matches “xyzzy plugh”")
    *_, note = handlers.search(tiny_editor, "striped shirt", "upper_body", 3)
    assert note is None


def test_grow_shrink_and_reset_can_be_undone_step_by_step(uploaded):
    state, _ = uploaded
    square = np.zeros((512, 384), bool)
    square[200:300, 100:200] = True
    value, undo = masks.editor_value(state, square), []
    value, undo = handlers.mask_tool_with_undo(state, value, "box", "grow", 6, undo)
    grown = masks.binary(masks.layers_mask(value))
    value, undo = handlers.mask_tool_with_undo(state, value, "box", "reset", 6, undo)
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(value)), state.mask_box)
    value, undo = handlers.undo_mask_tool(state, undo)
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(value)), grown)  # back before Reset
    value, undo = handlers.undo_mask_tool(state, undo)
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(value)), square)  # back before Grow
    with pytest.raises(InputError, match="nothing to undo"):
        handlers.undo_mask_tool(state, undo)
    for _ in range(handlers.UNDO_DEPTH + 3):
        value, undo = handlers.mask_tool_with_undo(state, value, "box", "grow", 1, undo)
    assert len(undo) == handlers.UNDO_DEPTH


def test_undo_never_puts_back_a_mask_of_another_category_or_photo(uploaded):
    """A Grow on the upper-body mask, then a switch of category (or another photo): Undo has nothing of
    theirs to put back, and a step made after the switch is undone alone."""
    from dataclasses import replace

    state, value = uploaded
    _, undo = handlers.mask_tool_with_undo(state, value, "box", "grow", 6, [])
    assert len(handlers.undo_for(state, undo)) == 1
    for other in (replace(state, category="dresses"), replace(state, photo_path=state.photo_path + ".other")):
        assert handlers.undo_for(other, undo) == []
        with pytest.raises(InputError, match="nothing to undo"):
            handlers.undo_mask_tool(other, undo)
    dresses = replace(state, category="dresses")
    shrunk, later = handlers.mask_tool_with_undo(dresses, value, "box", "shrink", 4, undo)
    assert len(later) == 1  # the upper-body step is left behind
    back, rest = handlers.undo_mask_tool(dresses, later)
    np.testing.assert_array_equal(masks.binary(masks.layers_mask(back)), masks.binary(masks.layers_mask(value)))
    assert rest == []


def test_the_editor_marks_where_the_frame_pads_the_photo_and_the_edit_keeps_the_padding(tiny_editor, uploaded):
    """The astronaut (512x512) is framed 3:4 with rows beyond the photo's bottom: the editor shows the
    padding faded and hatched, the pixels inside the photo exactly, and the edit still gets the recipe's frame."""
    state, value = uploaded
    left, top, right, bottom = state.transform.padding  # original pixels beyond each edge
    assert bottom > 50  # the case the photo was picked for
    scale = state.frame.height / state.transform.height  # frame pixels per original pixel
    shown, frame = np.asarray(value["background"]), np.asarray(state.frame)
    differs = np.abs(shown.astype(int) - frame).max(axis=2) > 0  # (512, 384)
    marked_rows = differs.mean(axis=1) > 0.9  # whole rows marked: above and below the photo
    marked_columns = differs.mean(axis=0) > 0.9  # whole columns: left and right of it
    height, width = differs.shape
    for marked, before, after, size in ((marked_rows, top, bottom, height), (marked_columns, left, right, width)):
        lead, trail = int(np.argmin(marked)), int(np.argmin(marked[::-1]))  # marked lines at each end
        assert abs(lead - before * scale) <= 1 and abs(trail - after * scale) <= 1
        assert not marked[lead : size - trail].any()
    inside = differs[np.argmin(marked_rows) : height - np.argmin(marked_rows[::-1])]
    inside = inside[:, np.argmin(marked_columns) : width - np.argmin(marked_columns[::-1])]
    assert not inside.any()  # the photo's own pixels are shown as they are
    # The edit runs on the state's own frame, with the repeated edge (docs/person.md), not on the shown one.
    assert np.array_equal(np.asarray(state.frame), np.asarray(tiny_editor.prepare(ASTRONAUT, "upper_body").frame))


def test_a_restored_own_garment_is_the_uploaded_file_byte_for_byte(tiny_editor, uploaded, tmp_path):
    """House rule: nothing the user uploaded is lost or silently altered. A JPEG uploaded as the own garment, used
    by Generate and by Compare, comes back into the own-garment box on a history restore as that very file (its
    name and bytes), not a PNG re-encoding of its pixels. Through the page's own event functions."""
    from app import build_demo

    state, value = uploaded
    pixels = np.random.default_rng(23).integers(0, 256, (160, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "linen-jacket.jpg", quality=83)
    own = as_upload(tmp_path / "linen-jacket.jpg")  # where the own-garment box puts the upload
    sent = Path(own).read_bytes()
    demo = build_demo(tiny_editor)
    fns = {fn.name: fn for fn in demo.fns.values()}
    quiet = lambda *args, **kwargs: None  # noqa: E731  (Gradio's progress tracker, outside a request)

    made = fns["on_generate"].fn(state, value, "box", [], own, "", 9, 1, 7.5, "ddim", True, 1, [], None, quiet)
    history = made[6]  # show_entry: …, the history gallery, the history state, …
    compared = fns["on_compare"].fn(
        state, value, "box", ["top-001"], own, [], 9, 1, 7.5, "ddim", True, history, None, quiet
    )
    history = compared[-1]
    assert [entry.uploaded_garment for entry in history] == [True, False, True]  # #3 own, #2 top-001, #1 own

    restore = fns["on_history"]
    box = next(i for i, block in enumerate(restore.outputs) if getattr(block, "elem_id", None) == "own-garment")
    for index in (0, 2):  # the compared own garment, the generated one
        event = gr.SelectData(None, {"index": index, "value": None, "selected": True})
        shown = restore.fn(history, False, UPLOADED, state, "box", [], 6, event)[box]
        data = restore.outputs[box].postprocess(shown)  # what the box is sent: Gradio's FileData
        assert data.orig_name == "linen-jacket.jpg", data.orig_name
        assert Path(data.path).read_bytes() == sent  # the same file, not the same pixels re-saved
    event = gr.SelectData(None, {"index": 1, "value": None, "selected": True})
    assert restore.fn(history, False, UPLOADED, state, "box", [], 6, event)[box] is None  # #2 had none: cleared
