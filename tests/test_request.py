"""The one edit request: its JSON form, Editor.run, and the recipe read back by `edit --recipe`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.request import EditRequest, PersonFrame, result_from_dict, result_to_dict

from .conftest import ASTRONAUT, EXAMPLE_CATALOG
from .test_editor import run_cli

FAST = {"steps": 2}  # EditRequest fields of a quick edit


@pytest.fixture(scope="module")
def person(tiny_editor):
    return tiny_editor.prepare(load_photo(ASTRONAUT), "upper_body")


def garment_id(editor) -> str:
    return editor.search("striped shirt", "upper_body", k=1)[0].id


def test_a_request_through_json_keeps_every_field_and_pixel(person):
    garment = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8))
    request = EditRequest(
        "upper_body",
        person=PersonFrame.of(person),
        garment_ids=("top-001", "top-002"),
        garment_images=(garment,),
        description="red shirt",
        seed=9,
        steps=3,
        guidance=2.5,
        scheduler="dpm++",
        num_images=2,
        paste_back=False,
    )
    again = EditRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    for name in (
        "category",
        "garment_ids",
        "description",
        "seed",
        "steps",
        "guidance",
        "scheduler",
        "num_images",
        "paste_back",
    ):
        assert getattr(again, name) == getattr(request, name), name
    np.testing.assert_array_equal(np.asarray(again.garment_images[0]), np.asarray(garment))
    np.testing.assert_array_equal(np.asarray(again.person.original), np.asarray(person.original))
    np.testing.assert_array_equal(np.asarray(again.person.frame), np.asarray(person.frame))
    np.testing.assert_array_equal(again.person.mask, person.mask)
    np.testing.assert_array_equal(again.person.keypoints, person.keypoints)  # NaN where missing, both sides
    assert again.person.transform == person.transform and again.person.mask_source == person.mask_source


def test_editor_run_of_a_photo_request_equals_prepare_then_edit(tiny_editor, person):
    ids = [garment_id(tiny_editor)]
    expected = tiny_editor.edit(EditRequest.of(person, garment_ids=ids, seed=5, **FAST))
    result = tiny_editor.run(
        EditRequest("upper_body", photo=load_photo(ASTRONAUT), garment_ids=tuple(ids), seed=5, steps=2)
    )
    np.testing.assert_array_equal(np.asarray(result.images[0]), np.asarray(expected.images[0]))
    assert result.seed == 5 and result.timings["prepare_s"] > 0 and result.recipe["garment_ids"] == ids


def test_a_prepared_person_sent_as_json_edits_the_same_pixels(tiny_editor, person):
    """What serve mode does with the page's person: PersonFrame -> JSON -> rebuilt pose map -> edit."""
    painted = person.mask.copy()
    painted[300:, :] = False  # a user-edited mask
    edited = tiny_editor.with_user_mask(person, painted.astype(np.uint8) * 255)
    expected = tiny_editor.edit(EditRequest.of(edited, description="red floral shirt", seed=2, **FAST))
    request = EditRequest.of(edited, description="red floral shirt", seed=2, **FAST)
    result = tiny_editor.run(EditRequest.from_dict(json.loads(json.dumps(request.to_dict()))))
    np.testing.assert_array_equal(np.asarray(result.images[0]), np.asarray(expected.images[0]))
    assert result.recipe["mask_source"] == "user" and result.recipe["prompt"] == "text-only"


def test_the_result_through_json_keeps_images_seed_and_recipe(tiny_editor, person):
    result = tiny_editor.edit(EditRequest.of(person, description="blue shirt", seed=4, **FAST))
    again = result_from_dict(json.loads(json.dumps(result_to_dict(result))))
    np.testing.assert_array_equal(np.asarray(again.images[0]), np.asarray(result.images[0]))
    assert again.seed == 4 and again.recipe == result.recipe


def test_the_recipe_is_the_request_without_pixels(tiny_editor, person):
    """An edit's recipe holds the request's settings under the same names, so it rebuilds the request."""
    result = tiny_editor.edit(EditRequest.of(person, garment_ids=[garment_id(tiny_editor)], seed=8, **FAST))
    rebuilt = EditRequest.from_dict(json.loads(json.dumps(result.recipe)), photo=load_photo(ASTRONAUT))
    settings = rebuilt.to_dict(pixels=False)
    assert {key: result.recipe[key] for key in settings if key != "mask_variant"} == {
        key: value for key, value in settings.items() if key != "mask_variant"
    }
    assert (rebuilt.seed, rebuilt.steps, rebuilt.garment_ids) == (8, 2, tuple(result.recipe["garment_ids"]))


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"category": "hats"}, "unknown category 'hats'"),
        ({"category": "dresses", "seed": "7"}, "seed='7': use a whole number"),
        ({"category": "dresses", "steps": True}, "steps=True: use a whole number"),
        ({"category": "dresses", "paste_back": 1}, "paste_back=1: use bool"),
        ({"category": "dresses", "garment_ids": [3]}, "garment_ids=[3]"),
        ({"category": "dresses", "garment_images": ["not base64!"]}, "garment image 1 is not valid base64"),
        ({"category": "dresses", "uploaded_garments": 1}, "used 1 uploaded garment image"),
        ({"steps": 2}, "no category"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_requests_name_the_field_and_what_is_accepted(data, named):
    with pytest.raises(InputError, match=named.replace("(", r"\(").replace("[", r"\[")):
        EditRequest.from_dict(data, **({"photo": Image.new("RGB", (8, 8))} if isinstance(data, dict) else {}))


def test_a_request_needs_exactly_one_person_and_minus_one_is_a_random_seed(person):
    with pytest.raises(InputError, match="either a photo or a prepared person"):
        EditRequest("upper_body")
    with pytest.raises(InputError, match="either a photo or a prepared person"):
        EditRequest("upper_body", photo=person.original, person=PersonFrame.of(person))
    assert EditRequest("upper_body", photo=person.original, seed=-1).seed is None


def test_cli_recipe_with_a_bad_value_fails_in_one_line(tiny_bundle, tmp_path):
    recipe = tmp_path / "r.recipe.json"
    recipe.write_text(json.dumps({"category": "upper_body", "garment_ids": ["x"], "steps": "20", "seed": 1}))
    done = run_cli(
        "edit",
        "--person",
        str(ASTRONAUT),
        "--category",
        "upper_body",
        "--recipe",
        str(recipe),
        "--out",
        str(tmp_path / "o.png"),
        "--models",
        str(tiny_bundle),
        "--catalog",
        str(EXAMPLE_CATALOG),
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == "error: steps='20': use a whole number"


def test_a_recipe_written_by_main_0961f2f_replays_through_edit_recipe(
    tiny_editor, tiny_bundle, tiny_settings, tmp_path, capsys
):
    """tests/fixtures/recipe_main_0961f2f.json was written by `edit ... --seed 77 --steps 2 --pick 2` of main at
    0961f2f (before EditRequest took over the CLI): its garments, seed, options and mask come back, and the pixels
    are those of the same edit made here."""
    from fashion_rag.cli import main as cli_main

    fixture = Path(__file__).parent / "fixtures" / "recipe_main_0961f2f.json"
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
                str(fixture),
                "--models",
                str(tiny_bundle),
                "--index",
                str(tiny_settings.resolved_index_dir),
                "--device",
                "cpu",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == 77 and report["garment_ids"] == ["top-031"] and report["prompt"] == "garment-tokens"
    expected = tiny_editor.edit(
        EditRequest.of(
            tiny_editor.prepare(load_photo(ASTRONAUT), "upper_body"),
            garment_ids=["top-031"],
            description="striped shirt",
            seed=77,
            steps=2,
        )
    )
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(expected.images[0]))
