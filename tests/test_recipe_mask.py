"""The recipe keeps the mask an edit used, and `edit --recipe` repeats an app edit with a painted mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fashion_rag.errors import InputError
from fashion_rag.person.mask_codec import decode_mask, encode_mask
from fashion_rag.studio import handlers, masks

from .conftest import ASTRONAUT, as_upload

UPLOADED = as_upload(ASTRONAUT)  # where the page's upload box would have put the photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mask_codec_round_trips_every_kind_of_mask() -> None:
    rng = np.random.default_rng(0)
    for mask in (
        np.zeros((512, 384), bool),
        np.ones((512, 384), bool),
        rng.random((512, 384)) > 0.7,
        np.pad(np.ones((3, 5), bool), 1),
    ):
        data = json.loads(json.dumps(encode_mask(mask)))
        np.testing.assert_array_equal(decode_mask(data), mask)
    first_set = np.zeros((2, 3), bool)
    first_set[0, 0] = True
    assert encode_mask(first_set)["counts"] == "0 1 5"  # runs start with the unmasked one
    for bad, message in (
        ({"width": 3}, "width, height and counts"),
        ({"width": 3, "height": 2, "counts": "1 x"}, "whole numbers"),
        ({"width": 3, "height": 2, "counts": "1 2"}, "add up to 3 pixels"),
    ):
        with pytest.raises(InputError, match=message):
            decode_mask(bad)


def test_an_app_edit_with_a_painted_and_grown_mask_repeats_from_its_recipe(
    tiny_editor, tiny_bundle, tiny_settings, tmp_path, capsys
):
    """The page's own functions: upload, paint a stroke, Grow, Generate; then the CLI with the recipe alone."""
    from fashion_rag.cli import main as cli_main

    state, value, _, _ = handlers.prepare_upload(tiny_editor, UPLOADED, "upper_body", "precise")
    layer = value["layers"][0].copy()
    ImageDraw.Draw(layer).line([(300, 40), (360, 140)], fill=masks.MASK_RGBA, width=20)  # off the automatic mask
    value = handlers.mask_tool(state, {**value, "layers": [layer]}, "precise", "grow", 6)
    person = handlers.person_for_edit(tiny_editor, state, value, "precise")
    assert person.mask_source == "user" and (person.mask & ~state.mask_precise).sum() > 500
    checked = handlers.controls(13, 2, 7.5, "ddim", 1, True)
    ids = [hit.id for hit in tiny_editor.search("striped shirt", "upper_body", 1)]
    entry, _ = handlers.generate(
        tiny_editor, handlers.edit_request(person, ids, [], "striped shirt", checked), [], "recipe-test"
    )
    recipe = json.loads(Path(entry.recipe).read_text())
    assert recipe["mask_variant"] == "precise" and recipe["mask_source"] == "user"
    np.testing.assert_array_equal(decode_mask(recipe["mask"]), person.mask)

    out = tmp_path / "again.png"
    assert (
        cli_main(
            [
                "edit",
                "--person",
                str(ASTRONAUT),
                "--category",
                "upper_body",
                "--recipe",
                entry.recipe,
                "--out",
                str(out),
                "--models",
                str(tiny_bundle),
                "--index",
                str(tiny_settings.resolved_index_dir),
                "--device",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["mask_source"] == "user"
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(entry.images[0])))
    # Another photo (another framing) cannot take this recipe's mask: said, not silently misplaced.
    other = tmp_path / "wide.png"
    Image.open(ASTRONAUT).convert("RGB").resize((700, 512)).save(other)
    assert (
        cli_main(
            [
                "edit",
                "--person",
                str(other),
                "--category",
                "upper_body",
                "--recipe",
                entry.recipe,
                "--out",
                str(tmp_path / "o.png"),
                "--models",
                str(tiny_bundle),
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert "framed differently" in capsys.readouterr().err
