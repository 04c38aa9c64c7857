"""Pose: mediapipe BlazePose landmarks -> the 18 OpenPose COCO keypoints -> the 18-channel pose map.

Mediapipe 0.10.21 ships the full BlazePose landmark model (`model_complexity=1`) inside the wheel, so
this works offline; the lite and heavy models would be downloaded on first use and are not used.

Keypoints are (18, 2) float arrays of (x, y) in pixels of the image they were found in, with pixel
(i, j) centred at (i, j) (the OpenPose and heatmap convention), and NaN for a missing keypoint.

| COCO-18 | name | BlazePose |
|---|---|---|
| 0 | nose | 0 nose |
| 1 | neck | midpoint of 11 and 12 (missing unless both shoulders are found) |
| 2 / 5 | right / left shoulder | 12 / 11 |
| 3 / 6 | right / left elbow | 14 / 13 |
| 4 / 7 | right / left wrist | 16 / 15 |
| 8 / 11 | right / left hip | 24 / 23 |
| 9 / 12 | right / left knee | 26 / 25 |
| 10 / 13 | right / left ankle | 28 / 27 |
| 14 / 15 | right / left eye | 5 / 2 |
| 16 / 17 | right / left ear | 8 / 7 |

"Right" is the person's right (on the left of the picture for a person facing the camera), in both.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image, ImageDraw

from fashion_rag.images import to_rgb
from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH

COCO18_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
NECK = 1
# BlazePose landmark index for each COCO-18 keypoint; None for the neck, which is computed.
BLAZEPOSE_FOR_COCO18: tuple[int | None, ...] = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
BLAZEPOSE_RIGHT_SHOULDER, BLAZEPOSE_LEFT_SHOULDER = 12, 11
NUM_BLAZEPOSE = 33
DEFAULT_MIN_VISIBILITY = 0.5  # mediapipe's own drawing threshold
POSE_SIGMA = 9.0  # docs/recipe.md, UNet input rule 5: exp(-d^2 / 9^2)
MIN_LIMB_TO_TORSO = 0.4  # a thigh or shin shorter than this share of the torso is a guess (see drop_implausible_legs)

# Limbs of the OpenPose COCO-18 skeleton, with OpenPose's colours, for the preview.
SKELETON: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def blazepose_to_coco18(
    landmarks_xyv: np.ndarray, width: int, height: int, min_visibility: float = DEFAULT_MIN_VISIBILITY
) -> np.ndarray:
    """(33, 3) BlazePose landmarks (x, y normalised to 0..1, visibility) -> (18, 2) COCO keypoints in pixels.

    A landmark is missing (NaN) when its visibility is below `min_visibility` or it lies outside the image
    (normalised coordinate outside [0, 1)). The neck is the shoulders' midpoint, missing unless both are found.
    """
    landmarks = np.asarray(landmarks_xyv, dtype=np.float64)
    if landmarks.shape != (NUM_BLAZEPOSE, 3):
        raise ValueError(f"landmarks must be (33, 3) = (x, y, visibility), got shape {landmarks.shape}")
    x, y, visibility = landmarks[:, 0], landmarks[:, 1], landmarks[:, 2]
    found = (visibility >= min_visibility) & (x >= 0) & (x < 1) & (y >= 0) & (y < 1)
    # Normalised coordinates measure from the image's left/top edge; pixel centres sit at i + 0.5 of that.
    pixels = np.stack([x * width - 0.5, y * height - 0.5], axis=1)
    pixels[~found] = np.nan
    keypoints = np.full((len(COCO18_NAMES), 2), np.nan)
    for coco, blaze in enumerate(BLAZEPOSE_FOR_COCO18):
        if blaze is not None:
            keypoints[coco] = pixels[blaze]
    # NaN propagates: the neck is missing if either shoulder is.
    keypoints[NECK] = (pixels[BLAZEPOSE_RIGHT_SHOULDER] + pixels[BLAZEPOSE_LEFT_SHOULDER]) / 2
    return keypoints


def drop_implausible_legs(keypoints: np.ndarray, min_ratio: float = MIN_LIMB_TO_TORSO) -> np.ndarray:
    """A copy of (18, 2) keypoints without leg points that cannot be real: knees or ankles too close.

    On half-body photos BlazePose confidently places knees on hands or on the photo's bottom edge. A thigh
    (hip to knee) or shin (knee to ankle) shorter than `min_ratio` times the torso (shoulders' midpoint to
    hips' midpoint), or reaching less than that far down, is taken for such a guess and dropped, with
    everything further down that leg (a frame padded below a half-body photo invites such guesses). Needs
    both shoulders and both hips; otherwise the keypoints are returned unchanged.
    """
    out = np.array(keypoints, dtype=np.float64, copy=True)
    if not np.isfinite(out[[2, 5, 8, 11]]).all():
        return out
    torso = float(np.hypot(*((out[8] + out[11]) / 2 - (out[2] + out[5]) / 2)))
    for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):
        for upper, lower in ((hip, knee), (knee, ankle)):
            if np.isfinite(out[lower]).all() and np.isfinite(out[upper]).all():
                # Too short, or not going down: a knee level with its hip is a guess at the photo's edge.
                short = np.hypot(*(out[lower] - out[upper])) < min_ratio * torso
                if short or out[lower][1] - out[upper][1] < min_ratio * torso:
                    out[lower : ankle + 1] = np.nan
            elif not np.isfinite(out[upper]).all():
                out[lower] = np.nan  # nothing below a missing joint is trusted either
    return out


def pose_heatmaps(
    keypoints: np.ndarray, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH, sigma: float = POSE_SIGMA
) -> np.ndarray:
    """(18, 2) keypoints -> (18, height, width) float32 pose map (docs/recipe.md, UNet input rule 5).

    Channel k is exp(-d^2 / sigma^2) around keypoint k on the integer pixel grid, divided by its maximum
    (so its peak is exactly 1); a missing keypoint gives an all-zero channel. The Gaussian is computed as
    the outer product of its x and y factors, which is the same function.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 2 or keypoints.shape[1] != 2:
        raise ValueError(f"keypoints must be (N, 2), got shape {keypoints.shape}")
    maps = np.zeros((len(keypoints), height, width), dtype=np.float32)
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    for k, (kx, ky) in enumerate(keypoints):
        if not (np.isfinite(kx) and np.isfinite(ky)):
            continue
        channel = np.outer(np.exp(-((ys - ky) ** 2) / sigma**2), np.exp(-((xs - kx) ** 2) / sigma**2))
        peak = channel.max()
        if peak > 0:  # a keypoint hundreds of pixels off the grid underflows to zero: leave the channel empty
            maps[k] = channel / peak
    return maps


def draw_skeleton(image: Image.Image | np.ndarray, keypoints: np.ndarray, radius: int = 4) -> Image.Image:
    """A copy of `image` (RGB) with the OpenPose skeleton drawn over it: limbs, then keypoint dots."""
    canvas = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    canvas = canvas.convert("RGB")  # always a new image: the caller's is never drawn on
    draw = ImageDraw.Draw(canvas)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    width = max(2, radius - 1)
    for limb, (a, b) in enumerate(SKELETON):
        if np.isfinite(keypoints[[a, b]]).all():
            draw.line([tuple(keypoints[a]), tuple(keypoints[b])], fill=COLOURS[limb % len(COLOURS)], width=width)
    for k, (x, y) in enumerate(keypoints):
        if np.isfinite(x) and np.isfinite(y):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=COLOURS[k % len(COLOURS)])
    return canvas


class PoseEstimator:
    """One mediapipe BlazePose graph (static images, bundled full model), reusable and thread-safe.

    The graph is created once (about a second); each call runs person detection then the landmark model.
    Mediapipe graphs are not re-entrant, so calls are serialised with a lock.
    """

    def __init__(self, min_detection_confidence: float = 0.5, min_visibility: float = DEFAULT_MIN_VISIBILITY):
        import mediapipe as mp  # heavy import, and only needed once a pose is wanted

        self.min_visibility = min_visibility
        self._lock = threading.Lock()
        self._graph = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,  # the only BlazePose landmark model bundled in the wheel
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
        )

    def landmarks(self, image: np.ndarray | Image.Image) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (33, 3) landmarks (x, y normalised, visibility), or None if nobody is found."""
        image = _as_rgb_uint8(image)
        with self._lock:
            result = self._graph.process(image)
        if result.pose_landmarks is None:
            return None
        return np.array([(lm.x, lm.y, lm.visibility) for lm in result.pose_landmarks.landmark], dtype=np.float64)

    def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (18, 2) COCO keypoints in that image's pixels, or None if nobody is found.

        Landmarks below `min_visibility`, outside the image, or legs too short to be real are missing.
        """
        image = _as_rgb_uint8(image)
        landmarks = self.landmarks(image)
        if landmarks is None:
            return None
        height, width = image.shape[:2]
        return drop_implausible_legs(blazepose_to_coco18(landmarks, width, height, self.min_visibility))

    def close(self) -> None:
        with self._lock:
            self._graph.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_rgb_uint8(image: np.ndarray | Image.Image) -> np.ndarray:
    """Mediapipe wants a C-contiguous (H, W, 3) uint8 array."""
    if isinstance(image, Image.Image):
        image = np.asarray(to_rgb(image))
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)
