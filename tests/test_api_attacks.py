"""Attacks on the newer API endpoints (/batch, /compare, /outfit) and on the JSON an EditRequest is read from.

Each case sent what an attacker (or a careless script) sends and checks the answer: one short message saying
what was wrong and what is accepted, no work started for a call that cannot succeed, no server path in the
message, and a normal call answered afterwards. The older endpoints' cases are in test_public_limits.py and
test_bad_input.py.
"""

from __future__ import annotations

import re
import struct
import zlib
from types import SimpleNamespace

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from fashion_rag.batch import MAX_JOBS
from fashion_rag.errors import InputError
from fashion_rag.request import EditRequest
from fashion_rag.studio import batch as batch_api
from fashion_rag.studio.masks import load_mask
from fashion_rag.studio.uploads import upload_root

from .conftest import ASTRONAUT, as_upload

# photos, category, garment_ids, each_garment, description, seed, steps, guidance, sampler, paste_back
SETTINGS = ("upper_body", "top-001", False, "", 3, 1, 7.5, "ddim", True)


def client_of(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False)


def test_a_batch_with_an_empty_item_is_refused_not_shortened(studio_url):
    """[photo, None] used to run one job: every later result's `photo` index then named the wrong photo."""
    client = client_of(studio_url)
    with pytest.raises(AppError, match=r"^photo 2 of 2 is empty: every item must be an uploaded photo$"):
        client.predict([handle_file(as_upload(ASTRONAUT)), None], *SETTINGS, api_name="/batch")
    final = client.predict([handle_file(as_upload(ASTRONAUT))], *SETTINGS, api_name="/batch")  # still serving
    assert final["done"] == final["total"] == 1 and "error" not in final["results"][0]


def test_a_batch_with_out_of_range_settings_is_one_refusal_before_any_job(studio_url):
    """As /edit: steps=10**9 is refused with the range, not answered with the same error once per job."""
    client = client_of(studio_url)
    photos = [handle_file(as_upload(ASTRONAUT)) for _ in range(2)]
    for index, bad, message in [
        (5, 10**9, r"^steps=1000000000: use a whole number from 1 to 150$"),
        (5, -1, r"^steps=-1: use a whole number from 1 to 150$"),
        (6, 31.0, r"^guidance=31.0: use a number from 0.0 to 30.0$"),
        (4, -7, r"^seed=-7: use a whole number from 0 to 4294967295"),
    ]:
        settings = list(SETTINGS)
        settings[index] = bad
        with pytest.raises(AppError, match=message):
            client.predict(photos, *settings, api_name="/batch")


class Recorder:
    """A stand-in editor that records the photo size of each job and decodes nothing itself."""

    def __init__(self, edit_megapixels: float = 16.0) -> None:
        self.settings = SimpleNamespace(limits=SimpleNamespace(description_chars=1000, edit_megapixels=edit_megapixels))
        self.sizes: list[tuple[int, int]] = []

    def run(self, request: EditRequest):
        self.sizes.append(request.photo.size)
        return SimpleNamespace(seed=3)

    def save_result(self, result, session):
        return SimpleNamespace(images=[], recipe="recipe.json")


def run_batch_endpoint(editor, photos) -> dict:
    *_, final = batch_api.batch(editor, photos, *SETTINGS, None)
    return final


def test_batch_photos_are_scaled_to_the_editing_limit_as_edit_scales_them():
    """A 512x512 photo (0.26 MP) over a 0.1 MP limit: /edit scales it down; /batch ran it at full size."""
    editor = Recorder(edit_megapixels=0.1)
    run_batch_endpoint(editor, [handle_file(as_upload(ASTRONAUT))])
    ((width, height),) = editor.sizes
    assert width * height <= 100_000 and width == height  # scaled, aspect kept


def test_a_batch_of_too_many_photos_is_refused_before_any_is_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr("fashion_rag.person.photo._open", lambda *args: decoded.append(args) or 1 / 0)
    photos = [handle_file(as_upload(ASTRONAUT))] * (MAX_JOBS + 1)
    with pytest.raises(InputError, match=rf"^{MAX_JOBS + 1} photos: a batch takes 1 to {MAX_JOBS} photos$"):
        run_batch_endpoint(Recorder(), photos)
    assert decoded == []


def test_a_request_setting_of_the_wrong_type_is_named_without_echoing_it_whole():
    with pytest.raises(InputError) as refused:
        EditRequest.from_dict({"category": "dresses", "steps": "x" * 100_000})
    message = str(refused.value)
    assert message.startswith("steps='xxx") and message.endswith(": use a whole number") and len(message) < 120


def png_header_only(width: int, height: int) -> bytes:
    """A grey PNG that declares width x height over one short row of data: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_an_unreadable_or_huge_mask_is_named_by_its_file_name_only(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError) as refused:
        load_mask(as_upload(junk))
    assert "junk.png is not a readable image" in str(refused.value) and str(upload_root()) not in str(refused.value)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(50_000, 50_000))
    with pytest.raises(InputError, match=r"^bomb.png is far too large: upload a mask of at most 40 megapixels$"):
        load_mask(as_upload(bomb))


def test_outfit_refusals_name_the_parameter_that_was_wrong(studio_url):
    """/outfit has no garment_ids: a bad upper_ids or lower_ids is named as such."""
    client = client_of(studio_url)
    photo = handle_file(as_upload(ASTRONAUT))
    for slot, name in ((1, "upper_ids"), (2, "lower_ids")):
        data = [photo, "top-001", "bottom-001", 3, 1, 7.5, "ddim", True]
        data[slot] = "t" * 100_000
        with pytest.raises(AppError, match=rf"^{name}='ttt.*: give up to 3 catalog ids, comma-separated$"):
            client.predict(*data, api_name="/outfit")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"category": "upper_body", "garment_ids": ["top-001"]}] * 1000,
            r"^an outfit is upper_body then lower_body garments, not upper_body, upper_body, upper_body, … "
            r"\(1000 steps\)$",
        ),
        ([{"category": 5, "garment_ids": 7}], r"^an outfit is upper_body then lower_body garments, not 5$"),
        ([{"category": "x" * 100_000}], r"^an outfit is upper_body then lower_body garments, not x{3,}\.\.\.x+$"),
    ],
    ids=["1000-steps", "wrong-types", "long-category"],
)
def test_an_outfit_recipe_of_odd_steps_is_refused_in_one_short_line(steps, message):
    """Recipes come from files (`edit --recipe`): a 1000-step outfit or a number for a category is refused before
    any step runs (the editor here would fail at once if one did), in one line of bounded length."""
    from fashion_rag.outfit import replay_outfit

    with pytest.raises(InputError, match=message) as refused:
        replay_outfit(None, Image.new("RGB", (8, 8)), {"outfit": steps})
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("count", ["abc", -1, 2.5, True, 10**9])
def test_a_recipes_uploaded_garment_count_must_be_a_small_whole_number(count):
    """-1 sliced the garment images from the end; "abc" was a ValueError traceback in an outfit replay."""
    from fashion_rag.outfit import replay_outfit

    message = rf"^uploaded_garments={re.escape(repr(count))}: use a whole number from 0 to 3$"
    with pytest.raises(InputError, match=message):
        EditRequest.from_dict({"category": "dresses", "uploaded_garments": count}, photo=Image.new("RGB", (8, 8)))
    steps = [{"category": "upper_body", "uploaded_garments": count}, {"category": "lower_body"}]
    with pytest.raises(InputError, match=message):
        replay_outfit(None, Image.new("RGB", (8, 8)), {"outfit": steps})


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (
            {"width": 100_000, "height": 100_000, "counts": "10000000000"},
            r"^the recipe's mask is 100000x100000: at most 40 megapixels$",
        ),
        ({"width": 1, "height": 1, "counts": "9" * 5000}, r"^the recipe's mask counts must be a string of whole"),
        ({"width": 2, "height": 1, "counts": "\u00b2"}, r"^the recipe's mask counts must be a string of whole"),
        ({"width": True, "height": 1, "counts": "1"}, r"^the recipe's mask is Truex1: width and height must be"),
    ],
    ids=["10-gigapixel-runs", "5000-digit-run", "superscript-digit", "bool-width"],
)
def test_a_recipe_mask_is_checked_before_its_runs_are_expanded(mask, message):
    """The run-length mask of a recipe (`edit --recipe`, EditRequest.from_dict) is a bomb like a PNG header:
    100000x100000 in one run expanded to 10 GB; a 5000-digit run or a superscript digit was a ValueError."""
    with pytest.raises(InputError, match=message):
        EditRequest.from_dict({"category": "dresses", "mask": mask}, photo=Image.new("RGB", (8, 8)))


def test_compare_refuses_a_repeated_id_instead_of_making_the_same_result_twice(studio_url):
    client = client_of(studio_url)
    photo = handle_file(as_upload(ASTRONAUT))
    data = [photo, "upper_body", "top-001,top-002, top-001", None, 3, 1, 7.5, "ddim", True]
    with pytest.raises(AppError, match=r"^garment_ids: top-001 given more than once: give each catalog id once$"):
        client.predict(*data, api_name="/compare")
    data[2] = "top-001,top-002"
    assert [r["garment_ids"] for r in client.predict(*data, api_name="/compare")["results"]] == [
        ["top-001"],
        ["top-002"],
    ]
