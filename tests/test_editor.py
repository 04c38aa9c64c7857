"""The editor end to end on the tiny bundle, and the `edit` command."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag.editor import Editor
from fashion_rag.errors import InputError, MissingWeightsError
from fashion_rag.person.photo import load_photo
from fashion_rag.request import EditRequest
from fashion_rag.results import check_seed

from .conftest import ASTRONAUT, EXAMPLE_CATALOG, REPO

FAST = {"steps": 2}  # EditRequest fields of a quick edit


@pytest.fixture(scope="module")
def person(tiny_editor):
    return tiny_editor.prepare(load_photo(ASTRONAUT), "upper_body")


def first_ids(editor, n=2):
    return [hit.id for hit in editor.search("striped shirt", "upper_body", k=n)]


def test_edit_returns_the_photo_at_its_own_size_with_the_outside_untouched(tiny_editor, person):
    result = tiny_editor.edit(EditRequest.of(person, garment_ids=first_ids(tiny_editor), seed=3, **FAST))
    original = np.asarray(person.original)
    edited = np.asarray(result.images[0])
    assert edited.shape == original.shape
    # Outside the (feathered, un-framed) mask the pixels are the input's, bit for bit.
    from fashion_rag.generation.compose import FEATHER_PX, feathered_alpha

    alpha = person.transform.unframe(feathered_alpha(person.mask, FEATHER_PX)[..., None])[..., 0]
    np.testing.assert_array_equal(edited[alpha == 0], original[alpha == 0])
    assert (alpha == 0).mean() > 0.3 and (edited[alpha > 0.99] != original[alpha > 0.99]).any()
    assert result.seed == 3 and result.recipe["garment_ids"] == first_ids(tiny_editor)
    assert result.frames[0].size == (384, 512)


@pytest.mark.parametrize("size", [(333, 517), (1001, 641), (391, 700)])
def test_output_size_equals_input_size_for_odd_photos(tiny_editor, size):
    photo = Image.open(ASTRONAUT).convert("RGB").resize(size)
    prepared = tiny_editor.prepare(photo, "upper_body")
    result = tiny_editor.edit(EditRequest.of(prepared, garment_ids=first_ids(tiny_editor, 1), seed=1, **FAST))
    assert result.images[0].size == size


def test_same_seed_same_image_and_no_paste_back_changes_the_outside(tiny_editor, person):
    ids = first_ids(tiny_editor, 1)
    one = tiny_editor.edit(EditRequest.of(person, garment_ids=ids, seed=11, **FAST))
    two = tiny_editor.edit(EditRequest.of(person, garment_ids=ids, seed=11, **FAST))
    np.testing.assert_array_equal(np.asarray(one.images[0]), np.asarray(two.images[0]))
    raw = tiny_editor.edit(EditRequest.of(person, garment_ids=ids, seed=11, **{**FAST, "paste_back": False}))
    assert np.abs(np.asarray(raw.images[0], dtype=int) - np.asarray(one.images[0], dtype=int)).max() > 10


def test_catalog_garment_tokens_are_cached_and_match_a_fresh_computation(tiny_editor):
    ids = first_ids(tiny_editor, 2)
    cache = tiny_editor.garment_cache
    tokens = tiny_editor.garment_tokens(ids, [])  # fills the cache
    encoder_calls = []
    handle = tiny_editor.pipeline.image_encoder.register_forward_pre_hook(lambda *_: encoder_calls.append(1))
    try:
        hits_before = cache.hits
        again = tiny_editor.garment_tokens(ids, [])
    finally:
        handle.remove()
    assert encoder_calls == [] and cache.hits == hits_before + 2  # no image encoder run at all
    # Bit-identical to a fresh computation, one garment at a time as the cache computes them.
    fresh = torch.cat(
        [
            tiny_editor.pipeline.encode_garments([Image.open(tiny_editor.searcher.image_path(i)).convert("RGB")])
            for i in ids
        ]
    )
    torch.testing.assert_close(again, fresh.float(), atol=0, rtol=0)
    torch.testing.assert_close(again, tokens, atol=0, rtol=0)


def test_garment_cache_is_invalidated_by_a_changed_file_or_encoder(tmp_path):
    from fashion_rag.generation.garment_cache import GarmentTokenCache

    cache = GarmentTokenCache("encoder-a", tmp_path)
    cache.put("sha-1", torch.ones(16, 4))
    assert torch.equal(GarmentTokenCache("encoder-a", tmp_path).get("sha-1"), torch.ones(16, 4))  # from disk
    assert GarmentTokenCache("encoder-b", tmp_path).get("sha-1") is None  # other encoder
    assert cache.get("sha-2") is None  # other file content


def test_uploaded_garment_and_catalog_garment_together(tiny_editor, person):
    own = Image.new("RGB", (200, 260), (30, 60, 200))
    result = tiny_editor.edit(
        EditRequest.of(person, garment_ids=first_ids(tiny_editor, 1), garment_images=[own], seed=2, **FAST)
    )
    assert result.recipe["uploaded_garments"] == 1 and len(result.recipe["garment_ids"]) == 1
    # The upload is used: another uploaded garment, all else equal, gives another picture.
    other = Image.new("RGB", (200, 260), (230, 200, 20))
    changed = tiny_editor.edit(
        EditRequest.of(person, garment_ids=first_ids(tiny_editor, 1), garment_images=[other], seed=2, **FAST)
    )
    assert np.abs(np.asarray(changed.frames[0], int) - np.asarray(result.frames[0], int)).max() > 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"garment_ids": []}, "no garment picked and no description"),
        ({"garment_ids": [], "description": " 42 ! "}, "no garment picked and no description"),
        ({"garment_ids": ["a", "b", "c", "d"]}, "4 garments picked: pick at most 3"),
        ({"garment_ids": ["top-001", "top-001"]}, "picked twice"),
        ({"garment_ids": ["../../etc/passwd"]}, "unknown catalog id"),
        ({"garment_ids": ["no-such-id"]}, "unknown catalog id"),
        ({"garment_ids": ["top-001", "dress-001"]}, "dress-001 is not in the upper_body category"),
        ({"seed": -5}, "seed=-5"),
        ({"seed": 2**40}, "seed="),
        ({"steps": 0}, "steps=0"),
        ({"num_images": 9}, "num_images=9"),
        ({"scheduler": "euler"}, "scheduler='euler'"),
    ],
)
def test_bad_edit_requests_are_refused_clearly(tiny_editor, person, kwargs, message):
    arguments = {"garment_ids": ["top-001"], "seed": 1, **FAST, **kwargs}
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        tiny_editor.edit(EditRequest.of(person, **arguments))


def test_check_seed_picks_a_random_seed_in_range():
    seeds = {check_seed(None) for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)


def test_generation_without_weights_says_what_is_missing_but_prepare_still_works(tiny_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    runtime = replace(tiny_settings.runtime, models="default", weights_dir=tmp_path / "weights")
    editor = Editor.from_settings(replace(tiny_settings, runtime=runtime))
    person = editor.prepare(load_photo(ASTRONAUT), "upper_body")
    assert person.mask.any() and person.mask_source == "offline"
    assert editor.missing_generation_parts() == ["sd2-inpainting", "fashion-rag", "garment-encoder"]
    with pytest.raises(MissingWeightsError, match="python -m fashion_rag weights download sd2-inpainting fashion-rag"):
        editor.edit(EditRequest.of(person, garment_images=[Image.new("RGB", (64, 64))], seed=1, **FAST))
    assert editor.search("red dress", "dresses", k=3)  # search works lexically without any weights


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fashion_rag", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_cli_edit_with_search_and_the_recipe_reproduces_it(tiny_bundle, tiny_settings, tmp_path):
    common = [
        "--models",
        str(tiny_bundle),
        "--catalog",
        str(EXAMPLE_CATALOG),
        "--index",
        str(tiny_settings.resolved_index_dir),
        "--device",
        "cpu",
    ]
    first = run_cli(
        "edit",
        "--person",
        str(ASTRONAUT),
        "--category",
        "upper_body",
        "--text",
        "red striped shirt",
        "--pick",
        "1,2",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "a.png"),
        "--json",
        *common,
    )
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert len(payload["garment_ids"]) == 2 and isinstance(payload["seed"], int)
    assert set(payload["timings"]) >= {"prepare_s", "search_s", "pipeline_s", "total_s"}
    assert Image.open(tmp_path / "a.png").size == Image.open(ASTRONAUT).size
    again = run_cli(
        "edit",
        "--person",
        str(ASTRONAUT),
        "--category",
        "upper_body",
        "--recipe",
        payload["recipe"],
        "--out",
        str(tmp_path / "b.png"),
        "--json",
        *common,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["garment_ids"] == payload["garment_ids"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )


def test_cli_edit_with_a_hand_made_mask_and_own_garment(tiny_bundle, tmp_path):
    mask = np.zeros((512, 512), np.uint8)
    mask[200:400, 150:350] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.new("RGB", (300, 400), (200, 20, 20)).save(tmp_path / "garment.png")
    result = run_cli(
        "edit",
        "--person",
        str(ASTRONAUT),
        "--category",
        "upper_body",
        "--garment",
        str(tmp_path / "garment.png"),
        "--mask",
        str(tmp_path / "mask.png"),
        "--steps",
        "2",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "out.png"),
        "--models",
        str(tiny_bundle),
        "--device",
        "cpu",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mask_source"] == "user"
    out = np.asarray(Image.open(tmp_path / "out.png"))
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    changed = (out != original).any(-1)
    assert changed[250:350, 200:300].mean() > 0.9  # inside the hand-made mask
    assert changed[:150].mean() == 0 and changed[450:].mean() == 0  # far outside it


def test_cli_edit_bad_input_is_one_line_and_exit_2(tiny_bundle, tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image")
    result = run_cli(
        "edit",
        "--person",
        str(tmp_path / "fake.jpg"),
        "--category",
        "upper_body",
        "--garment-id",
        "top-001",
        "--out",
        str(tmp_path / "o.png"),
        "--models",
        str(tiny_bundle),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "fake.jpg" in error_lines[0]


def test_text_only_edit_uses_the_description(tiny_editor, person):
    """Garment tokens rule 8 (docs/recipe.md): with no garment the description drives the edit: two differ."""
    red = tiny_editor.edit(EditRequest.of(person, description="red striped shirt", seed=3, **FAST))
    blue = tiny_editor.edit(EditRequest.of(person, description="blue denim jacket", seed=3, **FAST))
    assert red.recipe["prompt"] == "text-only" and red.recipe["garment_ids"] == []
    assert np.abs(np.asarray(red.frames[0], float) - np.asarray(blue.frames[0], float)).max() > 0


def test_a_mask_across_a_wide_photo_is_edited_to_both_edges(tiny_editor):
    """The 3:4 frame holds the whole width of a wide photo (padded above and below), so a mask reaching both
    side edges is regenerated there too; the padding is never pasted back (the output keeps the photo's size)."""
    photo = Image.open(ASTRONAUT).convert("RGB").resize((720, 512))  # wider than 3:4, the person edge to edge
    prepared = tiny_editor.prepare(photo, "upper_body")
    band = np.zeros((512, 720), dtype=bool)
    band[330:480, :] = True  # every column, at the photo's own size
    prepared = tiny_editor.with_user_mask(prepared, band)
    result = tiny_editor.edit(EditRequest.of(prepared, garment_ids=first_ids(tiny_editor, 1), seed=5, **FAST))
    original, edited = np.asarray(photo).astype(int), np.asarray(result.images[0]).astype(int)
    assert edited.shape == original.shape
    changed = np.abs(edited - original).max(axis=2) > 0  # (512, 720)
    for column in (0, 1, 718, 719):
        assert changed[360:450, column].mean() > 0.9, f"column {column} of the mask was not edited"
    np.testing.assert_array_equal(edited[:280], original[:280])  # far above the mask: untouched
