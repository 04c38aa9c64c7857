"""Issue 8, promise 1: the bad-input suite.

Odd uploads and out-of-range values sent through three layers: the library (the Editor the UI and CLI
call), the command line and the app's named API endpoints (gradio_client against the running studio).
Each bad case asserts the exact message it gets (what was wrong and what is accepted) and is followed by
a good request on the same layer that must succeed: one bad request never leaves the editor, the lock or
the server in a state that breaks the next user. Photos that are odd but valid (animated GIF, CMYK,
16-bit) must work on every layer.

Cases that other files already test in isolation (load_photo, the search, the pipeline checks) are
exercised here through the composed layers; docs/RELIABILITY.md links both.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.request import EditRequest

from .conftest import ASTRONAUT, EXAMPLE_CATALOG, REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one intra-op thread is faster

FAST = {"steps": 1}  # EditRequest fields of a quick edit
CATALOG_IMAGE = EXAMPLE_CATALOG / "upper_body" / "top-001.png"  # a real file: a path is still not an id
NOT_AN_IMAGE = r"is not an image that can be read: upload a JPEG, PNG, WebP, GIF, BMP or TIFF file"
TRUNCATED = r"is truncated \(the file ends early\): upload the complete file"
NO_PERSON = r"no person found in the photo; use a photo of one person"
TOO_BIG = r"is 12000x12000 = 144\.0 megapixels, above the limit of 40 megapixels: downscale it first"
EMPTY_FILE = r"is empty \(0 bytes\): upload a JPEG, PNG, WebP, GIF, BMP or TIFF image"
UNKNOWN_HATS = r"unknown category 'hats': use one of upper_body, lower_body, dresses"
LONG_GARMENT_TEXT = ("red satin slip dress with lace trim, " * 300)[:10_000]
NOISY_TEXT = "red\x00\x07 dress\t\U0001f457\U0001f525\u202e"  # NUL, BEL, a tab, emoji, a right-to-left override


# --------------------------------------------------------------------------------------------------
# The files


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and which holds no pixel data: only a header-based
    limit can refuse it by its size (decoding it would fail as truncated instead)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every odd file of the suite, written once. Names are what the cases refer to."""
    folder = tmp_path_factory.mktemp("bad-input")
    person = Image.open(ASTRONAUT).convert("RGB")
    jpeg, png = _encoded(person, "JPEG", quality=90), _encoded(person, "PNG")
    corrupt_jpeg = bytearray(jpeg)
    corrupt_jpeg[2:40] = b"\xff" * 38  # the marker segments after SOI are destroyed
    corrupt_png = bytearray(png)
    corrupt_png[100:400] = bytes(300)  # zeros inside the compressed pixel data (IDAT)
    ys, xs = np.mgrid[0:300, 0:400]
    gradient = np.dstack([xs * 255 // 400, ys * 255 // 300, 0 * xs + 128]).astype(np.uint8)
    grey16 = np.asarray(person.convert("L")).astype(np.uint16) * 257  # full 16-bit range, same picture
    contents = {
        "person.jpg": jpeg,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "corrupt.jpg": bytes(corrupt_jpeg),
        "corrupt.png": bytes(corrupt_png),
        "text.jpg": b"name,colour\nblazer,navy\n",  # a text file renamed to .jpg
        "empty.jpg": b"",
        "one-pixel.png": _encoded(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG"),
        "huge.png": _png_header_only(12000, 12000),
        "no-person.png": _encoded(Image.fromarray(gradient), "PNG"),
        "animated.gif": _encoded(
            person, "GIF", save_all=True, append_images=[Image.new("RGB", person.size, "lime")], duration=100, loop=0
        ),
        "cmyk.jpg": _encoded(person.convert("CMYK"), "JPEG", quality=95),
        "grey16.png": _encoded(Image.fromarray(grey16), "PNG"),
        "mask-empty.png": _encoded(Image.new("L", (384, 512), 0), "PNG"),
        "mask-everything.png": _encoded(Image.new("L", (384, 512), 255), "PNG"),
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    assert Image.open(paths["grey16.png"]).mode == "I;16" and Image.open(paths["cmyk.jpg"]).mode == "CMYK"
    assert Image.open(paths["animated.gif"]).n_frames == 2
    return paths


BAD_PHOTOS = [
    ("truncated.jpg", TRUNCATED),
    ("truncated.png", TRUNCATED),
    ("corrupt.jpg", NOT_AN_IMAGE),
    ("corrupt.png", r"is corrupt and could not be decoded \(broken data stream"),
    ("text.jpg", NOT_AN_IMAGE + r" \(HEIC/AVIF phone photos: export them as JPEG first\)"),
    ("empty.jpg", EMPTY_FILE),
    ("one-pixel.png", NO_PERSON),
    ("huge.png", TOO_BIG),
    ("no-person.png", NO_PERSON),
]
ODD_BUT_VALID = ["animated.gif", "cmyk.jpg", "grey16.png"]


@pytest.fixture(scope="module")
def reference(tiny_editor):
    """The astronaut prepared from its RGB original: what the odd-but-valid encodings must come close to."""
    return tiny_editor.prepare(Image.open(ASTRONAUT).convert("RGB"), "upper_body")


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --------------------------------------------------------------------------------------------------
# Library: the Editor


@pytest.fixture(scope="module")
def person(reference):
    """The prepared astronaut the edit cases start from."""
    return reference


def good_library_request(kind: str, editor, person) -> None:
    """The good request that follows a refusal. After a refused edit it is a search with the generation lock
    free (an edit costs a second on the CPU: one real edit follows the whole group instead)."""
    if kind == "prepare":
        prepared = editor.prepare(ASTRONAUT, "upper_body")
        assert prepared.frame.size == (384, 512) and 0.05 < prepared.mask.mean() < 0.8
        return
    if kind == "edit":
        assert not editor._generation_lock.locked()
    hits = editor.search("red dress", "dresses", 3)
    assert len(hits) == 3 and {hit.category for hit in hits} == {"dresses"}


def good_edit(editor, person) -> None:
    result = editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=5, **FAST))
    assert result.seed == 5 and result.images[0].size == person.original.size
    assert (np.asarray(result.images[0]) != np.asarray(person.original)).any()


@pytest.mark.parametrize(("name", "message"), BAD_PHOTOS, ids=[name for name, _ in BAD_PHOTOS])
def test_library_refuses_bad_photos(tiny_editor, files, person, name, message):
    with pytest.raises(InputError, match=message):
        tiny_editor.prepare(files[name], "upper_body")
    good_library_request("prepare", tiny_editor, person)


def _mask(files, name):
    return Image.open(files[name])


LIBRARY_VALUES = {
    # id: (layer of the good request that follows, the bad call, the message)
    "category-unknown": ("prepare", lambda e, p, f: e.prepare(ASTRONAUT, "hats"), UNKNOWN_HATS),
    "category-capitals": ("search", lambda e, p, f: e.search("red dress", "Dresses", 3), r"unknown category 'Dresses'"),
    "mask-variant-unknown": (
        "prepare",
        lambda e, p, f: e.prepare(ASTRONAUT, "dresses", mask_variant="round"),
        r"mask variant 'round': use one of box, precise",
    ),
    "mask-empty": (
        "edit",
        lambda e, p, f: e.with_user_mask(p, _mask(f, "mask-empty.png")),
        r"the edited mask is empty: paint over the garment area that should change",
    ),
    "mask-everything": (
        "edit",
        lambda e, p, f: e.with_user_mask(p, _mask(f, "mask-everything.png")),
        r"the edited mask covers 100% of the picture; at most 95% is accepted",
    ),
    "description-empty": (
        "search",
        lambda e, p, f: e.search("", "dresses", 3),
        r"the description is empty: describe the garment",
    ),
    "description-control-characters-only": (
        "search",
        lambda e, p, f: e.search("\x00\x07\x1b\x7f\t", "dresses", 3),
        r"the description is empty",
    ),
    "description-emoji-only": (
        "search",
        lambda e, p, f: e.search("\U0001f457\U0001f525\u2728", "dresses", 3),
        r"names no garment, part, colour, material or pattern",
    ),
    "description-10000-chars-no-garment": (
        "search",
        lambda e, p, f: e.search("1" * 10_000, "dresses", 3),
        r"the description '1{60}.*names no garment",
    ),
    "k-zero": (
        "search",
        lambda e, p, f: e.search("red dress", "dresses", 0),
        r"k=0 is out of range: use 1 to 33 \(the dresses items in the catalog\)",
    ),
    "k-huge": ("search", lambda e, p, f: e.search("red dress", "dresses", 10**6), r"k=1000000 is out of range"),
    "steps-zero": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=["top-001"], seed=1, **{**FAST, "steps": 0})),
        r"steps=0: use a whole number from 1 to 150",
    ),
    "steps-too-many": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=["top-001"], seed=1, **{**FAST, "steps": 151})),
        r"steps=151: use a whole number from 1 to 150",
    ),
    # -1 is the one convention for "a random seed" (fashion_rag/request.py: RANDOM); below it is refused.
    "seed-negative": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=["top-001"], seed=-2, **FAST)),
        r"seed=-2: use a whole number from 0 to 4294967295",
    ),
    "seed-above-32-bits": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=["top-001"], seed=2**32, **FAST)),
        r"seed=4294967296: use a whole number from 0 to 4294967295",
    ),
    "pick-unknown-id": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=["no-such-garment"], seed=1, **FAST)),
        r"unknown catalog id 'no-such-garment'",
    ),
    "pick-a-file-path": (
        "edit",
        lambda e, p, f: e.edit(EditRequest.of(p, garment_ids=[str(CATALOG_IMAGE)], seed=1, **FAST)),
        r"unknown catalog id '/.*top-001\.png'",
    ),
}


@pytest.mark.parametrize("case", list(LIBRARY_VALUES))
def test_library_refuses_bad_values(tiny_editor, files, person, case):
    kind, call, message = LIBRARY_VALUES[case]
    with pytest.raises(InputError, match=message):
        call(tiny_editor, person, files)
    good_library_request(kind, tiny_editor, person)


def test_library_edits_after_the_refusals(tiny_editor, person):
    good_edit(tiny_editor, person)


@pytest.mark.parametrize("name", ODD_BUT_VALID)
def test_library_prepares_odd_but_valid_photos(tiny_editor, files, reference, name):
    prepared = tiny_editor.prepare(files[name], "upper_body")
    assert prepared.original.size == reference.original.size and prepared.original.mode == "RGB"
    assert not np.isnan(prepared.keypoints[[0, 2, 5]]).any()  # nose and both shoulders found
    assert mask_iou(prepared.mask, reference.mask) > 0.8


def test_library_searches_long_and_noisy_descriptions(tiny_editor):
    long_hits = tiny_editor.search(LONG_GARMENT_TEXT, "dresses", 3)
    assert len(long_hits) == 3 and {hit.category for hit in long_hits} == {"dresses"}
    # Control characters and emoji are dropped: the same garments as the clean text, in the same order.
    noisy = [hit.id for hit in tiny_editor.search(NOISY_TEXT, "dresses", 4)]
    assert noisy == [hit.id for hit in tiny_editor.search("red dress", "dresses", 4)]


# --------------------------------------------------------------------------------------------------
# The app's API: gradio_client against the running studio


@pytest.fixture(scope="module")
def client(studio_url):
    return Client(studio_url, verbose=False)


def edit_arguments(**changes):
    """The /edit endpoint's 12 inputs, in order, with good values unless changed."""
    arguments = {
        "photo": handle_file(str(ASTRONAUT)),
        "category": "upper_body",
        "ids": "top-001",
        "garment": None,
        "mask": None,
        "text": "",
        "seed": 1,
        "steps": 1,
        "guidance": 7.5,
        "scheduler": "ddim",
        "images": 1,
        "paste": True,
    }
    arguments.update(changes)
    return list(arguments.values())


def good_api_request(kind: str, client: Client) -> None:
    """The good request that follows a refusal: a prepare after a bad photo, else a search (one real edit
    follows the group of refused edits)."""
    if kind == "prepare":
        *_, info = client.predict(handle_file(str(ASTRONAUT)), "upper_body", "box", api_name="/prepare")
        assert info["category"] == "upper_body" and info["keypoints"][0] is not None
        return
    hits = client.predict("red dress", "dresses", 3, api_name="/search")["hits"]
    assert len(hits) == 3 and {hit["category"] for hit in hits} == {"dresses"}


@pytest.mark.parametrize(("name", "message"), BAD_PHOTOS, ids=[name for name, _ in BAD_PHOTOS])
def test_api_refuses_bad_photos(client, files, name, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(files[name])), "upper_body", "box", api_name="/prepare")
    good_api_request("prepare", client)


API_VALUES = {
    # id: (endpoint, arguments as a function of the odd files, the message)
    "prepare-no-photo": ("prepare", lambda f: [None, "upper_body", "box"], r"no photo given: send a PNG or JPEG"),
    "prepare-category-unknown": ("prepare", lambda f: [handle_file(str(ASTRONAUT)), "hats", "box"], UNKNOWN_HATS),
    "prepare-mask-variant-unknown": (
        "prepare",
        lambda f: [handle_file(str(ASTRONAUT)), "dresses", "round"],
        r"mask variant 'round': use one of box, precise",
    ),
    "search-category-unknown": ("search", lambda f: ["red dress", "hats", 3], UNKNOWN_HATS),
    "search-category-missing": ("search", lambda f: ["red dress", None, 3], r"unknown category None"),
    "search-description-empty": ("search", lambda f: ["", "dresses", 3], r"the description is empty"),
    "search-description-control-only": (
        "search",
        lambda f: ["\x00\x1b\x07\x7f", "dresses", 3],
        r"the description is empty",
    ),
    "search-description-emoji-only": (
        "search",
        lambda f: ["\U0001f457\U0001f525", "dresses", 3],
        r"the description '\U0001f457\U0001f525' has no letters, so it names no garment",
    ),
    "search-description-10000-chars": ("search", lambda f: ["1" * 10_000, "dresses", 3], r"names no garment"),
    "search-k-zero": ("search", lambda f: ["red dress", "dresses", 0], r"k=0 is out of range: use 1 to 33"),
    "search-k-negative": ("search", lambda f: ["red dress", "dresses", -3], r"k=-3 is out of range: use 1 to 33"),
    "search-k-huge": ("search", lambda f: ["red dress", "dresses", 10**6], r"k=1000000 is out of range"),
    "edit-steps-zero": ("edit", lambda f: edit_arguments(steps=0), r"steps=0: use a whole number from 1 to 150"),
    "edit-steps-negative": ("edit", lambda f: edit_arguments(steps=-1), r"steps=-1: use a whole number from 1"),
    "edit-steps-too-many": ("edit", lambda f: edit_arguments(steps=1000), r"steps=1000: use a whole number"),
    "edit-images-zero": ("edit", lambda f: edit_arguments(images=0), r"num_images=0: use 1 to 4"),
    "edit-guidance-too-high": ("edit", lambda f: edit_arguments(guidance=31), r"guidance=31(\.0)?: use a number"),
    "edit-scheduler-unknown": (
        "edit",
        lambda f: edit_arguments(scheduler="euler"),
        r"scheduler='euler': use one of ddim, dpm\+\+",
    ),
    "edit-seed-negative": ("edit", lambda f: edit_arguments(seed=-5), r"seed=-5: use a whole number from 0"),
    "edit-seed-above-32-bits": ("edit", lambda f: edit_arguments(seed=2**32), r"seed=4294967296: use a whole"),
    "edit-pick-unknown-id": (
        "edit",
        lambda f: edit_arguments(ids="no-such-garment"),
        r"unknown catalog id 'no-such-garment'",
    ),
    "edit-pick-a-file-path": (
        "edit",
        lambda f: edit_arguments(ids=str(CATALOG_IMAGE)),
        r"unknown catalog id '/.*top-001\.png'",
    ),
    "edit-pick-none": ("edit", lambda f: edit_arguments(ids=" , "), r"no garment picked and no description"),
    "edit-pick-four": (
        "edit",
        lambda f: edit_arguments(ids="top-001,top-002,top-003,top-004"),
        r"4 garments picked: pick at most 3",
    ),
    "edit-mask-empty": (
        "edit",
        lambda f: edit_arguments(mask=handle_file(str(f["mask-empty.png"]))),
        r"the edited mask is empty",
    ),
    "edit-mask-everything": (
        "edit",
        lambda f: edit_arguments(mask=handle_file(str(f["mask-everything.png"]))),
        r"the edited mask covers 100% of the picture",
    ),
    "edit-garment-not-an-image": (
        "edit",
        lambda f: edit_arguments(ids="", garment=handle_file(str(f["text.jpg"]))),
        NOT_AN_IMAGE,
    ),
}


@pytest.mark.parametrize("case", list(API_VALUES))
def test_api_refuses_bad_values(client, files, case):
    endpoint, arguments, message = API_VALUES[case]
    with pytest.raises(AppError, match=message):
        client.predict(*arguments(files), api_name=f"/{endpoint}")
    good_api_request(endpoint, client)


def test_api_edits_after_the_refusals(client):
    gallery, seed, _ = client.predict(*edit_arguments(seed=9), api_name="/edit")
    assert seed == 9 and Image.open(gallery[0]["image"]).size == Image.open(ASTRONAUT).size


@pytest.mark.parametrize("name", ODD_BUT_VALID)
def test_api_prepares_odd_but_valid_photos(client, files, reference, name):
    _, mask_path, _, _, info = client.predict(handle_file(str(files[name])), "upper_body", "box", api_name="/prepare")
    assert all(info["keypoints"][index] is not None for index in (0, 2, 5))
    mask = np.asarray(Image.open(mask_path).convert("L")) > 127
    assert mask_iou(mask, reference.mask) > 0.8


def test_api_searches_long_and_noisy_descriptions(client):
    long_hits = client.predict(LONG_GARMENT_TEXT, "dresses", 3, api_name="/search")["hits"]
    assert len(long_hits) == 3 and {hit["category"] for hit in long_hits} == {"dresses"}
    noisy = [hit["id"] for hit in client.predict(NOISY_TEXT, "dresses", 4, api_name="/search")["hits"]]
    assert noisy == [hit["id"] for hit in client.predict("red dress", "dresses", 4, api_name="/search")["hits"]]


# --------------------------------------------------------------------------------------------------
# The command line. In process (`fashion_rag.cli.main`, the models of the session's editor lent to the
# commands so that each case costs no model load), plus real `python -m fashion_rag` subprocesses.


@pytest.fixture
def cli(tiny_editor, monkeypatch, capsys):
    """Run `python -m fashion_rag ARGS` in this process; returns (exit status, stdout, the stderr lines)."""
    from fashion_rag import cli as cli_module
    from fashion_rag.commands import search as search_command
    from fashion_rag.editor import Editor
    from fashion_rag.person.prepare import PersonPreparer

    monkeypatch.setattr(Editor, "from_settings", classmethod(lambda cls, settings: tiny_editor))
    monkeypatch.setattr(PersonPreparer, "from_sources", classmethod(lambda cls, *args, **kwargs: tiny_editor.preparer))
    monkeypatch.setattr(search_command, "open_search", lambda *args: tiny_editor.searcher)

    def run(*args: str) -> tuple[int, str, list[str]]:
        try:
            status = cli_module.main(list(args))
        except SystemExit as exit_:  # argparse refusals
            status = exit_.code
        captured = capsys.readouterr()
        return status, captured.out, captured.err.strip().splitlines()

    return run


def good_cli_request(kind: str, cli, out_dir: Path) -> None:
    """The good command that follows a refusal: a prepare after a refused prepare, else a search (one real
    edit follows the group)."""
    if kind == "prepare":
        status, out, _ = cli(
            "prepare", "--person", str(ASTRONAUT), "--category", "upper_body", "--out-dir", str(out_dir), "--json"
        )
        assert status == 0 and Image.open(json.loads(out)["paths"]["mask"]).size == (384, 512)
    elif kind in ("search", "edit"):
        status, out, _ = cli("search", "red dress", "--category", "dresses", "-k", "2", "--json")
        assert status == 0 and [hit["category"] for hit in json.loads(out)["hits"]] == ["dresses", "dresses"]
    else:
        status, out, _ = cli(
            "edit",
            "--person",
            str(ASTRONAUT),
            "--category",
            "upper_body",
            "--garment-id",
            "top-001",
            "--steps",
            "1",
            "--seed",
            "3",
            "--out",
            str(out_dir / "good.png"),
            "--json",
        )
        assert status == 0 and json.loads(out)["seed"] == 3
        assert Image.open(out_dir / "good.png").size == Image.open(ASTRONAUT).size


def _edit(files, out: str, *extra: str) -> list[str]:
    return ["edit", "--person", str(ASTRONAUT), "--category", "upper_body", "--out", out, *extra]


CLI_CASES = {
    # id: (command of the good request that follows, arguments, the one stderr line it must print)
    "search-category-unknown": (
        "search",
        lambda f, o: ["search", "red dress", "--category", "hats"],
        "error: unknown category 'hats': use one of upper_body, lower_body, dresses",
    ),
    "search-description-emoji-only": (
        "search",
        lambda f, o: ["search", "\U0001f457", "--category", "dresses"],
        "names no garment, part, colour, material or pattern",
    ),
    "search-k-zero": (
        "search",
        lambda f, o: ["search", "red dress", "--category", "dresses", "-k", "0"],
        "error: k=0 is out of range: use 1 to 33",
    ),
    "prepare-corrupt-png": (
        "prepare",
        lambda f, o: ["prepare", "--person", str(f["corrupt.png"]), "--category", "upper_body", "--out-dir", o],
        "is corrupt and could not be decoded",
    ),
    "prepare-no-person": (
        "prepare",
        lambda f, o: ["prepare", "--person", str(f["no-person.png"]), "--category", "upper_body", "--out-dir", o],
        "error: no person found in the photo",
    ),
    "prepare-category-unknown": (
        "prepare",
        lambda f, o: ["prepare", "--person", str(ASTRONAUT), "--category", "hats", "--out-dir", o],
        "argument --category: invalid choice: 'hats'",
    ),
    "edit-truncated-photo": (
        "edit",
        lambda f, o: [
            "edit",
            "--person",
            str(f["truncated.jpg"]),
            "--category",
            "upper_body",
            "--garment-id",
            "top-001",
            "--out",
            o + "/x.png",
        ],
        "truncated.jpg' is truncated (the file ends early)",
    ),
    "edit-steps-zero": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", "top-001", "--steps", "0"),
        "error: steps=0: use a whole number from 1 to 150",
    ),
    "edit-seed-negative": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", "top-001", "--seed", "-5"),
        "error: seed=-5: use a whole number from 0 to 4294967295",
    ),
    "edit-num-images-nine": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", "top-001", "--num-images", "9"),
        "error: num_images=9: use 1 to 4",
    ),
    "edit-pick-unknown-id": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", "no-such-garment"),
        "error: unknown catalog id 'no-such-garment'",
    ),
    "edit-pick-a-file-path": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", str(CATALOG_IMAGE)),
        f"error: unknown catalog id '{CATALOG_IMAGE}'",
    ),
    "edit-pick-rank-zero": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--text", "red shirt", "--pick", "0"),
        "error: --pick '0': give 1 to 3 different ranks from 1 upwards",
    ),
    "edit-mask-everything": (
        "edit",
        lambda f, o: _edit(f, o + "/x.png", "--garment-id", "top-001", "--mask", str(f["mask-everything.png"])),
        "error: the edited mask covers 100% of the picture",
    ),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_with_one_line_and_exit_2(cli, files, tmp_path, case):
    kind, arguments, line = CLI_CASES[case]
    status, out, err = cli(*arguments(files, str(tmp_path)))
    assert status == 2 and out == ""
    assert line in err[-1] and "Traceback" not in "\n".join(err)
    if not line.startswith("argument"):  # argparse prints its usage first; the project's errors are one line
        assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "x.png").exists()
    good_cli_request(kind, cli, tmp_path)


def test_cli_edits_after_the_refusals(cli, tmp_path):
    good_cli_request("real edit", cli, tmp_path)


def test_cli_subprocesses_refuse_huge_and_empty_photos_then_serve(tiny_bundle, files, tmp_path):
    """The real `python -m fashion_rag`: two refusals (run side by side), then a good search (captions only:
    an empty model bundle, so that no model load is paid for)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FASHION_RAG_")}

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "fashion_rag", *args],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    common = ["--category", "upper_body", "--garment-id", "top-001", "--models", str(tiny_bundle), "--device", "cpu"]
    huge = start("edit", "--person", str(files["huge.png"]), "--out", str(tmp_path / "a.png"), *common)
    empty = start("edit", "--person", str(files["empty.jpg"]), "--out", str(tmp_path / "b.png"), *common)
    for process, message in ((huge, TOO_BIG), (empty, EMPTY_FILE)):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: photo ") and re.search(message, lines[0])
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
    no_models = tmp_path / "no-models"
    no_models.mkdir()
    (no_models / "bundle.json").write_text('{"name": "empty"}')
    good = start(
        "search",
        "red dress",
        "--category",
        "dresses",
        "-k",
        "2",
        "--models",
        str(no_models),
        "--catalog",
        str(EXAMPLE_CATALOG),
        "--index",
        str(tmp_path / "no-index"),
        "--json",
    )
    out, err = good.communicate(timeout=300)
    assert good.returncode == 0, err
    payload = json.loads(out)
    assert payload["mode"] == "lexical" and [hit["category"] for hit in payload["hits"]] == ["dresses", "dresses"]
    assert all("red" in hit["caption"] for hit in payload["hits"])
