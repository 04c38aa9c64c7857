"""Pose: the BlazePose -> COCO-18 mapping, the heatmaps (UNet input rule 5), the preview, mediapipe on a real photo."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fashion_rag.person.pose import (
    COCO18_NAMES,
    PoseEstimator,
    blazepose_to_coco18,
    draw_skeleton,
    drop_implausible_legs,
    pose_heatmaps,
)

# BlazePose landmark names (mediapipe's PoseLandmark order) that the COCO-18 points must come from.
BLAZEPOSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip

# Hand-labelled on skimage's astronaut (512x512): nose tip and the two shoulder joints, original pixels.
ASTRONAUT_NOSE = (222.0, 126.0)
ASTRONAUT_RIGHT_SHOULDER = (110.0, 245.0)  # the person's right: the left of the picture
ASTRONAUT_LEFT_SHOULDER = (310.0, 252.0)


def synthetic_landmarks() -> np.ndarray:
    """Landmark i at a distinct place inside the image, fully visible."""
    index = np.arange(33, dtype=np.float64)
    return np.stack([0.1 + index * 0.02, 0.05 + index * 0.025, np.ones(33)], axis=1)


@pytest.fixture(scope="module")
def estimator() -> PoseEstimator:
    with PoseEstimator() as pose:
        yield pose


# --------------------------------------------------------------------------------------------------
# Mapping


def test_every_coco_point_comes_from_the_blazepose_landmark_of_the_same_name() -> None:
    landmarks = synthetic_landmarks()
    width, height = 384, 512
    keypoints = blazepose_to_coco18(landmarks, width, height)
    assert keypoints.shape == (18, 2)
    pixels = np.stack([landmarks[:, 0] * width - 0.5, landmarks[:, 1] * height - 0.5], axis=1)
    for coco, name in enumerate(COCO18_NAMES):
        if name == "neck":
            continue
        np.testing.assert_allclose(keypoints[coco], pixels[BLAZEPOSE_NAMES.index(name)], err_msg=name)
    shoulders = pixels[[BLAZEPOSE_NAMES.index("right_shoulder"), BLAZEPOSE_NAMES.index("left_shoulder")]]
    np.testing.assert_allclose(keypoints[1], shoulders.mean(axis=0))
    # The person's right shoulder is BlazePose 12, the left 11.
    np.testing.assert_allclose(keypoints[2], pixels[12])
    np.testing.assert_allclose(keypoints[5], pixels[11])


def test_invisible_and_out_of_frame_landmarks_are_missing() -> None:
    landmarks = synthetic_landmarks()
    landmarks[0, 2] = 0.3  # nose barely visible
    landmarks[16, 0] = 1.2  # right wrist right of the image
    landmarks[27, 1] = -0.01  # left ankle above it
    landmarks[12, 2] = 0.49  # right shoulder: below the threshold, so the neck is missing too
    keypoints = blazepose_to_coco18(landmarks, 384, 512, min_visibility=0.5)
    missing = {COCO18_NAMES[i] for i in np.flatnonzero(np.isnan(keypoints).any(axis=1))}
    assert missing == {"nose", "right_wrist", "left_ankle", "right_shoulder", "neck"}
    assert np.isnan(keypoints).all(axis=1).sum() == len(missing)  # x and y are NaN together
    kept = blazepose_to_coco18(landmarks, 384, 512, min_visibility=0.25)
    assert np.isfinite(kept[0]).all() and np.isfinite(kept[1]).all()
    with pytest.raises(ValueError, match=r"\(33, 3\)"):
        blazepose_to_coco18(np.zeros((17, 3)), 384, 512)


# --------------------------------------------------------------------------------------------------
# Heatmaps


def test_heatmap_peak_is_one_at_the_keypoint_and_exp_minus_one_at_nine_pixels() -> None:
    keypoints = np.full((18, 2), np.nan)
    keypoints[3] = (100.0, 200.0)
    maps = pose_heatmaps(keypoints)
    assert maps.shape == (18, 512, 384) and maps.dtype == np.float32
    channel = maps[3]
    assert channel[200, 100] == 1.0 and channel.max() == 1.0
    for dy, dx in [(0, 9), (0, -9), (9, 0), (-9, 0)]:
        assert channel[200 + dy, 100 + dx] == pytest.approx(math.exp(-1), rel=1e-6)
    assert channel[209, 109] == pytest.approx(math.exp(-2), rel=1e-6)  # d^2 = 162 = 2 sigma^2
    assert np.all(np.delete(maps, 3, axis=0) == 0)  # missing keypoints: all-zero channels


def test_heatmap_equals_the_formula_of_the_spec_everywhere() -> None:
    keypoints = np.full((18, 2), np.nan)
    keypoints[0] = (37.3, 401.8)  # between pixels: the maximum is below 1 before normalising
    keypoints[17] = (0.0, 511.0)  # in a corner
    maps = pose_heatmaps(keypoints)
    ys, xs = np.mgrid[0:512, 0:384].astype(np.float64)
    for k in (0, 17):
        brute = np.exp(-((xs - keypoints[k, 0]) ** 2 + (ys - keypoints[k, 1]) ** 2) / 9.0**2)
        np.testing.assert_allclose(maps[k], brute / brute.max(), rtol=1e-5, atol=1e-7)
    assert np.unravel_index(np.argmax(maps[0]), maps[0].shape) == (402, 37)
    assert maps[0].max() == 1.0


def test_heatmap_sigma_and_size_are_parameters() -> None:
    keypoints = np.full((18, 2), np.nan)
    keypoints[5] = (10.0, 20.0)
    maps = pose_heatmaps(keypoints, height=64, width=48, sigma=4.0)
    assert maps.shape == (18, 64, 48)
    assert maps[5, 20, 14] == pytest.approx(math.exp(-1), rel=1e-6)


# --------------------------------------------------------------------------------------------------
# Preview


def test_draw_skeleton_draws_on_a_copy() -> None:
    image = Image.new("RGB", (384, 512), (0, 0, 0))
    keypoints = np.full((18, 2), np.nan)
    keypoints[2] = (100.0, 100.0)
    keypoints[3] = (100.0, 200.0)
    preview = draw_skeleton(image, keypoints)
    assert image.getpixel((100, 150)) == (0, 0, 0)  # the caller's image is untouched
    assert preview.getpixel((100, 150)) != (0, 0, 0)  # the limb 2-3 is drawn
    assert preview.getpixel((100, 100)) == (255, 170, 0)  # keypoint 2 dot, in the third OpenPose colour
    assert preview.getpixel((300, 400)) == (0, 0, 0)


# --------------------------------------------------------------------------------------------------
# Mediapipe on a real photo


def test_astronaut_shoulders_and_nose_are_where_they_are(estimator: PoseEstimator) -> None:
    keypoints = estimator(data.astronaut())
    assert keypoints is not None
    nose, right_shoulder, left_shoulder = keypoints[0], keypoints[2], keypoints[5]
    assert np.hypot(*(nose - ASTRONAUT_NOSE)) < 15
    assert np.hypot(*(right_shoulder - ASTRONAUT_RIGHT_SHOULDER)) < 30
    assert np.hypot(*(left_shoulder - ASTRONAUT_LEFT_SHOULDER)) < 30
    assert right_shoulder[0] < left_shoulder[0]  # facing the camera: her right is on the picture's left
    np.testing.assert_allclose(keypoints[1], (right_shoulder + left_shoulder) / 2)
    assert np.isnan(keypoints[[9, 10, 12, 13]]).all()  # knees and ankles are below the picture


def test_pose_estimator_is_reusable_and_thread_safe(estimator: PoseEstimator) -> None:
    photo = data.astronaut()
    first = estimator(photo)
    assert estimator(np.zeros((256, 256, 3), dtype=np.uint8)) is None  # nobody in a black picture
    results: list[np.ndarray | None] = [None] * 4

    def run(slot: int) -> None:
        results[slot] = estimator(photo)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result, first)
    with pytest.raises(ValueError, match="uint8"):
        estimator(np.zeros((10, 10, 3), dtype=np.float32))


def test_implausibly_short_legs_are_dropped() -> None:
    k = np.full((18, 2), np.nan)
    k[2], k[5], k[8], k[11] = (100, 100), (200, 100), (110, 300), (190, 300)  # torso 200 px
    k[9], k[10] = (110, 420), (110, 540)  # right thigh and shin 120 px: real
    k[12], k[13] = (200, 340), (200, 460)  # left thigh 41 px: a guess; its ankle goes with it
    out = drop_implausible_legs(k)
    np.testing.assert_array_equal(out[[9, 10]], k[[9, 10]])
    assert np.isnan(out[[12, 13]]).all()
    assert np.isfinite(k[[12, 13]]).all()  # the input is not modified
    k[10] = (112, 440)  # a 20 px shin
    assert np.isnan(drop_implausible_legs(k)[10]).all() and np.isfinite(drop_implausible_legs(k)[9]).all()
    no_hips = k.copy()
    no_hips[8] = np.nan
    np.testing.assert_array_equal(drop_implausible_legs(no_hips), no_hips)  # nothing to measure against


def test_a_knee_level_with_its_hip_is_dropped() -> None:
    """A thigh long enough but reaching sideways (BlazePose's guess at a half-body photo's edge) is dropped."""
    k = np.full((18, 2), np.nan)
    k[2], k[5], k[8], k[11] = (100, 100), (200, 100), (110, 300), (190, 300)  # torso 200 px
    k[9] = (110, 420)  # right thigh: 120 px down, real
    k[12] = (260, 317)  # left "thigh": 71 px long (> 0.4 x 200 would pass) but only 17 px down
    out = drop_implausible_legs(k)
    np.testing.assert_array_equal(out[9], k[9])
    assert np.isnan(out[12]).all()
