"""End to end: PersonPreparer on a real photo (skimage's astronaut), bad input, the user's mask, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from fashion_rag.config import REPO_ROOT
from fashion_rag.errors import InputError
from fashion_rag.person.masks import check_body_visible
from fashion_rag.person.pose import pose_heatmaps
from fashion_rag.person.prepare import PersonPreparer, PreparedPerson, apply_user_mask, overlay_preview

from .conftest import ASTRONAUT

# Hand-labelled regions of the astronaut (512x512, original pixels): (x0, y0, x1, y1).
ASTRONAUT_FACE = (185, 90, 265, 170)  # forehead to chin, cheek to cheek
ASTRONAUT_TORSO = (120, 300, 300, 500)  # the orange suit's chest and belly, between the arms


@pytest.fixture(scope="module")
def preparer() -> PersonPreparer:
    return PersonPreparer.from_sources(None)  # the offline path: mediapipe only


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def upper(preparer: PersonPreparer, astronaut: np.ndarray) -> PreparedPerson:
    return preparer.prepare(astronaut, "upper_body")


def share(mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    return float(mask[y0:y1, x0:x1].mean())


def test_prepared_person_has_every_part_in_its_documented_shape(upper: PreparedPerson, astronaut: np.ndarray) -> None:
    assert upper.original.size == (512, 512) and upper.original.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(upper.original), astronaut)
    assert upper.frame.size == (384, 512) and upper.frame.mode == "RGB"
    assert upper.keypoints.shape == (18, 2)
    assert upper.pose_map.shape == (18, 512, 384) and upper.pose_map.dtype == np.float32
    np.testing.assert_array_equal(upper.pose_map, pose_heatmaps(upper.keypoints))
    for mask in (upper.mask, upper.mask_precise, upper.mask_box):
        assert mask.shape == (512, 384) and mask.dtype == np.bool_
    np.testing.assert_array_equal(upper.mask, upper.mask_box)  # the box variant is the default
    assert (upper.mask_precise <= upper.mask_box).all()
    assert upper.mask_source == "offline" and upper.category == "upper_body" and upper.notes == []
    assert set(upper.timings) >= {"load", "detect", "frame", "pose", "mask", "total"}
    t = upper.transform
    assert (t.original_width, t.original_height) == (512, 512) and t.width * 4 == t.height * 3
    # The frame is the crop of the original.
    assert np.abs(np.asarray(upper.frame, int) - t.frame(astronaut).astype(int)).mean() < 2


def test_astronaut_upper_body_mask_covers_the_torso_not_the_face(upper: PreparedPerson) -> None:
    for mask in (upper.mask_box, upper.mask_precise):
        on_photo = upper.transform.unframe(mask.astype(np.float32)) >= 0.5
        assert share(on_photo, ASTRONAUT_TORSO) > 0.85  # the rest is the hands, kept by design
        assert share(on_photo, ASTRONAUT_FACE) < 0.05


def test_astronaut_keypoints_are_in_frame_coordinates(upper: PreparedPerson) -> None:
    nose_on_photo = upper.transform.to_original(upper.keypoints[[0]])[0]
    assert np.hypot(*(nose_on_photo - (222, 126))) < 15


def test_half_body_portrait_refuses_lower_body_and_says_why(preparer: PersonPreparer, astronaut: np.ndarray) -> None:
    with pytest.raises(InputError) as error:
        preparer.prepare(astronaut, "lower_body")
    message = str(error.value)
    assert "lower_body" in message and "knee" in message and "not visible" in message


def test_precise_variant_and_bad_arguments(preparer: PersonPreparer, astronaut: np.ndarray) -> None:
    precise = preparer.prepare(astronaut, "upper_body", mask_variant="precise")
    np.testing.assert_array_equal(precise.mask, precise.mask_precise)
    assert precise.mask_variant == "precise"
    with pytest.raises(InputError, match="mask variant 'loose'"):
        preparer.prepare(astronaut, "upper_body", mask_variant="loose")
    with pytest.raises(InputError, match="unknown category 'hat'"):
        preparer.prepare(astronaut, "hat")


def test_two_people_use_the_largest_and_say_so(preparer: PersonPreparer, astronaut: np.ndarray) -> None:
    small = np.asarray(Image.fromarray(astronaut).resize((384, 384), Image.BILINEAR))
    canvas = np.full((520, 940, 3), 235, dtype=np.uint8)
    canvas[8:520, 0:512] = astronaut
    canvas[136:520, 548:932] = small
    prepared = preparer.prepare(canvas, "upper_body")
    assert "2 people found; used the largest" in prepared.notes
    x0, _, x1, _ = prepared.person_box
    assert x1 <= 530  # the big astronaut on the left
    assert prepared.transform.left + prepared.transform.width <= 560


def test_no_person_too_small_and_unreadable(preparer: PersonPreparer, astronaut: np.ndarray, tmp_path: Path) -> None:
    ys, xs = np.mgrid[0:300, 0:400]
    gradient = np.dstack([xs * 255 // 400, ys * 255 // 300, 0 * xs + 128]).astype(np.uint8)
    with pytest.raises(InputError, match="no person found"):
        preparer.prepare(gradient, "upper_body")
    strict = PersonPreparer(preparer.pose, preparer.segmenter, min_person_height=800)
    with pytest.raises(InputError, match=r"too small to edit: \d+ pixels tall.*at least 800"):
        strict.prepare(astronaut, "upper_body")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        preparer.prepare(empty, "upper_body")
    limited = PersonPreparer(preparer.pose, preparer.segmenter, max_pixels=100_000)
    with pytest.raises(InputError, match="megapixels"):
        limited.prepare(astronaut, "upper_body")


def test_large_photo_gives_the_same_keypoints_as_the_small_one(preparer: PersonPreparer, astronaut: np.ndarray) -> None:
    large = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.BICUBIC))
    small = preparer.prepare(astronaut, "upper_body")
    big = preparer.prepare(large, "upper_body")
    assert big.transform.original_width == 2048
    assert abs(big.transform.left / 4 - small.transform.left) <= 2
    # Same crop, up to its rounding to whole 3x4-px units (the photo is padded above and below to fit 3:4).
    assert abs(big.transform.width - 4 * small.transform.width) <= 3
    shoulders = [2, 5, 0]
    assert np.abs(big.keypoints[shoulders] - small.keypoints[shoulders]).max() < 6


# --------------------------------------------------------------------------------------------------
# The user's mask


def test_user_mask_at_frame_size_replaces_the_mask(upper: PreparedPerson) -> None:
    painted = np.zeros((512, 384), dtype=np.uint8)
    painted[300:400, 100:200] = 128  # > 127 counts
    painted[400:410, 100:200] = 127  # <= 127 does not
    edited = apply_user_mask(upper, Image.fromarray(painted))
    assert edited.mask_source == "user" and "mask edited by the user" in edited.notes
    np.testing.assert_array_equal(edited.mask, painted > 127)
    np.testing.assert_array_equal(edited.mask_box, upper.mask_box)  # the automatic masks stay
    assert upper.mask_source == "offline" and "mask edited by the user" not in upper.notes  # not modified
    floats = np.zeros((512, 384), dtype=np.float32)
    floats[10:20, 10:20] = 0.5
    floats[20:30, 10:20] = 0.49
    np.testing.assert_array_equal(apply_user_mask(upper, floats).mask, floats >= 0.5)


def test_user_mask_as_a_painted_layer_or_coloured_strokes(upper: PreparedPerson) -> None:
    layer = np.zeros((512, 384, 4), dtype=np.uint8)
    layer[250:350, 50:300] = (255, 0, 0, 255)  # red strokes on a transparent layer
    layer[100:110, 50:300] = (255, 255, 255, 100)  # faint white strokes: alpha 100 is not painted
    edited = apply_user_mask(upper, Image.fromarray(layer))
    np.testing.assert_array_equal(edited.mask, layer[:, :, 3] > 127)
    strokes = np.zeros((512, 384, 3), dtype=np.uint8)
    strokes[250:350, 50:300] = (230, 0, 0)  # red on black, no alpha: the brightest channel counts
    np.testing.assert_array_equal(apply_user_mask(upper, Image.fromarray(strokes)).mask, strokes[:, :, 0] > 127)
    np.testing.assert_array_equal(apply_user_mask(upper, strokes).mask, strokes[:, :, 0] > 127)


def test_user_mask_at_the_photo_size_goes_through_the_transform(upper: PreparedPerson) -> None:
    on_photo = np.zeros((512, 512), dtype=np.uint8)
    on_photo[200:400, 150:350] = 255
    edited = apply_user_mask(upper, on_photo)
    expected = upper.transform.frame(on_photo.astype(np.float32) / 255) >= 0.5
    np.testing.assert_array_equal(edited.mask, expected)
    left = upper.transform.to_frame(np.array([[150.0, 200.0]]))[0]
    assert edited.mask[int(left[1]) + 2, int(left[0]) + 2] and not edited.mask[int(left[1]) - 3, int(left[0]) - 3]


def test_user_mask_refusals(upper: PreparedPerson) -> None:
    with pytest.raises(InputError, match="empty"):
        apply_user_mask(upper, np.zeros((512, 384), dtype=np.uint8))
    with pytest.raises(InputError, match=r"covers 100% .* at most 95%"):
        apply_user_mask(upper, np.full((512, 384), 255, dtype=np.uint8))
    with pytest.raises(InputError, match="300x200.*384x512.*512x512"):
        apply_user_mask(upper, np.ones((200, 300), dtype=bool))


def test_overlay_tints_only_the_mask(upper: PreparedPerson) -> None:
    import cv2

    overlay = np.asarray(overlay_preview(upper), dtype=int)
    frame = np.asarray(upper.frame, dtype=int)
    kernel = np.ones((7, 7), np.uint8)  # stay 3 px away from the drawn outline
    # Outside the frame counts as outside the mask: the outline runs along the frame's edge too.
    inner = cv2.erode(upper.mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    outside = cv2.dilate(upper.mask.astype(np.uint8), kernel) == 0
    assert inner.sum() > 10_000 and outside.sum() > 10_000
    np.testing.assert_array_equal(overlay[outside], frame[outside])
    tint = np.array([255, 0, 64])
    np.testing.assert_allclose(overlay[inner], np.rint(0.55 * frame[inner] + 0.45 * tint), atol=1)


# --------------------------------------------------------------------------------------------------
# The parser path (the tiny bundle's random SegFormer: its labels are noise, the code path is real)


def test_parser_path_with_the_tiny_bundle(tiny_sources, preparer: PersonPreparer, astronaut: np.ndarray) -> None:
    """The tiny bundle's SegFormer, loaded by the real code, with its classifier set to answer "upper clothes"
    (label 4) everywhere: the parser path must then be taken, and its mask is the recipe's on that label map
    (the whole frame is garment and nothing is fixed, so the box mask is the whole frame)."""
    with_parser = PersonPreparer.from_sources(tiny_sources, "cpu")
    assert with_parser.parser is not None and with_parser.mask_source == "parser"
    labels = with_parser.parser(Image.fromarray(astronaut).resize((384, 512)))
    assert labels.shape == (512, 384) and labels.min() >= 0 and labels.max() < 18
    classifier = with_parser.parser.model.decode_head.classifier
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(4), 18).float())
    prepared = with_parser.prepare(astronaut, "upper_body")
    assert (with_parser.parser(prepared.frame) == 4).all()
    assert prepared.mask_source == "parser"
    assert prepared.mask.all() and prepared.mask_precise.all()
    assert not any("clothes parser found no" in note for note in prepared.notes)


def test_parser_finding_no_garment_falls_back_to_the_offline_mask(preparer: PersonPreparer, astronaut) -> None:
    class BackgroundOnly:
        def __call__(self, frame: Image.Image) -> np.ndarray:
            return np.zeros((frame.height, frame.width), dtype=np.int64)

    fallback = PersonPreparer(preparer.pose, preparer.segmenter, parser=BackgroundOnly())
    prepared = fallback.prepare(astronaut, "upper_body")
    assert prepared.mask_source == "offline"
    assert "the clothes parser found no upper_body garment; used the offline mask instead" in prepared.notes
    offline = preparer.prepare(astronaut, "upper_body")
    np.testing.assert_array_equal(prepared.mask, offline.mask)


def test_default_sources_without_weights_use_the_offline_path(tmp_path: Path) -> None:
    from fashion_rag.weights import ModelSources

    sources = ModelSources("default", tmp_path / "no-weights")
    if sources.locate("clothes-parser").found:  # the real parser sits in this machine's Hugging Face cache
        pytest.skip("the clothes parser is in the Hugging Face cache here")
    assert PersonPreparer.from_sources(sources).parser is None


def test_check_body_visible_is_what_prepare_applies(upper: PreparedPerson) -> None:
    check_body_visible(upper.keypoints, "upper_body")
    with pytest.raises(InputError, match="lower_body"):
        check_body_visible(upper.keypoints, "lower_body")


# --------------------------------------------------------------------------------------------------
# The command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FASHION_RAG_")}
    return subprocess.run(
        [sys.executable, "-m", "fashion_rag", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_prepare_writes_every_file_and_one_json_object(tmp_path: Path, astronaut: np.ndarray) -> None:
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    out_dir = tmp_path / "out"
    result = run_cli(
        "prepare",
        "--person",
        str(photo),
        "--category",
        "upper_body",
        "--out-dir",
        str(out_dir),
        "--json",
        "--models",
        "default",
        "--weights-dir",
        str(tmp_path / "no-weights"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["mask_source"] == "offline" and payload["notes"] == []
    assert set(payload["paths"]) == {"frame", "mask", "overlay", "pose", "keypoints"}
    assert payload["timings"]["total_ms"] > 0
    for name in ("frame", "mask", "overlay", "pose"):
        with Image.open(payload["paths"][name]) as image:
            assert image.size == (384, 512)
    with Image.open(payload["paths"]["mask"]) as image:
        mask = np.asarray(image)
        assert set(np.unique(mask)) == {0, 255} and 0.1 < (mask > 0).mean() < 0.9
    record = json.loads(Path(payload["paths"]["keypoints"]).read_text())
    assert [k["name"] for k in record["keypoints"]][:3] == ["nose", "neck", "right_shoulder"]
    assert len(record["keypoints"]) == 18
    knees = [k for k in record["keypoints"] if k["name"] in ("right_knee", "left_knee")]
    assert all(k["x"] is None and k["y"] is None for k in knees)
    nose = record["keypoints"][0]
    assert 0 <= nose["x"] < 384 and 0 <= nose["y"] < 512
    assert record["transform"]["original_width"] == 512 and record["transform"]["frame_height"] == 512


def test_cli_prepare_refuses_lower_body_on_a_half_body_photo(tmp_path: Path, astronaut: np.ndarray) -> None:
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo, quality=95)
    result = run_cli(
        "prepare",
        "--person",
        str(photo),
        "--category",
        "lower_body",
        "--out-dir",
        str(tmp_path / "out"),
        "--json",
        "--weights-dir",
        str(tmp_path / "no-weights"),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: category lower_body needs the hips and knees") and "Traceback" not in result.stderr
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    result = run_cli("prepare", "--person", str(broken), "--category", "upper_body", "--out-dir", str(tmp_path))
    assert result.returncode == 2 and "not an image that can be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_keypoints_in_the_frames_padding_are_missing() -> None:
    """A frame padded below a wide photo repeats its bottom row: a hip or knee found there is not real."""
    from fashion_rag.person.framing import FrameTransform
    from fashion_rag.person.prepare import outside_photo_missing

    transform = FrameTransform(0, -100, 600, 800, 600, 500)  # 100 rows of padding above, 200 below
    photo_points = np.array([[300.0, 50.0], [200.0, 499.0], [200.0, 520.0], [300.0, -10.0]])
    keypoints = np.full((18, 2), np.nan)
    keypoints[[2, 5, 8, 9]] = transform.to_frame(photo_points[[0, 0, 1, 2]])
    keypoints[0] = transform.to_frame(photo_points[[3]])[0]  # a nose above the photo's top edge
    out = outside_photo_missing(keypoints, transform)
    np.testing.assert_allclose(out[[2, 5, 8]], keypoints[[2, 5, 8]])  # inside the photo: kept
    assert np.isnan(out[[0, 9]]).all()  # in the padding: missing
    np.testing.assert_allclose(out[1], keypoints[2])  # neck: the shoulders' midpoint


def test_cli_prepare_with_a_bundle_makes_the_apps_mask(tiny_bundle, tiny_editor, tmp_path: Path, capsys) -> None:
    """`prepare --models BUNDLE` takes the offline path as the app does (a bundle's parser is random)."""
    from fashion_rag.cli import main as cli_main

    assert (
        cli_main(
            [
                "prepare",
                "--person",
                str(ASTRONAUT),
                "--category",
                "upper_body",
                "--out-dir",
                str(tmp_path),
                "--models",
                str(tiny_bundle),
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["mask_source"] == "offline"
    app_mask = tiny_editor.prepare(Image.open(ASTRONAUT), "upper_body").mask
    np.testing.assert_array_equal(np.asarray(Image.open(payload["paths"]["mask"])) > 127, app_mask)
