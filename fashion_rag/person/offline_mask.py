"""The garment mask without weights: mediapipe's bundled person segmentation plus limb geometry.

When the clothes parser is not available, the garment region is built from the keypoints (all in frame
pixels, see pose.py), scaled by the person's own shoulder or hip width:

- torso: a quadrilateral from just above and outside the shoulders to just below and outside the hips
  (hips estimated 1.5 shoulder widths down when not visible; the frame bottom bounds it);
- arms: the same polyline as the parser path (7-6-5-2-3-4), as wide as the arm is (at least 45 px);
- hips and legs: the convex hull of the waist, hips, knees and ankles, widened, plus thick leg polylines;
  legs that leave the frame continue to its bottom edge.

Each category takes its regions (upper_body: torso and arms; lower_body: hips and legs; dresses: all),
intersected with the (slightly dilated) person segmentation where that keeps most of the region, so the
background between arm and body or between the legs is left alone. Fixed regions are protected as in the
parser path: the face and hair always (an ellipse from nose, eyes and ears, above the shoulder line minus
20 px), the hands (beyond each wrist), the feet, and the other garment's region (below the hips for
upper_body; above the waist plus both arms for lower_body). Then the same dilation, fixed-pixel removal
and box variant as the parser path (masks.finish_mask).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image

from fashion_rag.errors import check_category
from fashion_rag.images import to_rgb
from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH
from fashion_rag.person.masks import (
    ARM_WIDTH,
    LEFT_ANKLE,
    LEFT_ELBOW,
    LEFT_HIP,
    LEFT_KNEE,
    LEFT_SHOULDER,
    LEFT_WRIST,
    NECK_MARGIN,
    RIGHT_ANKLE,
    RIGHT_ELBOW,
    RIGHT_HIP,
    RIGHT_KNEE,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    MaskResult,
    check_body_visible,
    check_keypoints,
    draw_arms,
    finish_mask,
    present,
    split_head,
)

NOSE, RIGHT_EYE, LEFT_EYE, RIGHT_EAR, LEFT_EAR = 0, 14, 15, 16, 17
HEAD_POINTS = (NOSE, RIGHT_EYE, LEFT_EYE, RIGHT_EAR, LEFT_EAR)
PERSON_THRESHOLD = 0.5  # selfie-segmentation probability counted as person
PERSON_GROW_PX = 4  # the person mask is grown this much before intersecting (soft edges; the dilation adds 10)
MIN_KEPT_SHARE = 0.4  # intersect with the person only if it keeps at least this share of the region


class PersonSegmenter:
    """Mediapipe selfie segmentation (the general 256x256 model bundled in the wheel), thread-safe.

    `__call__((H, W, 3) uint8 RGB) -> (H, W) float32` person probability, for every person in the image.
    """

    def __init__(self, model_selection: int = 0):
        import mediapipe as mp  # heavy import, and only needed once a mask is wanted

        self._lock = threading.Lock()
        self._graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray:
        if isinstance(image, Image.Image):
            image = np.asarray(to_rgb(image))
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        with self._lock:
            result = self._graph.process(np.ascontiguousarray(image))
        return np.asarray(result.segmentation_mask, dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            self._graph.close()


# --------------------------------------------------------------------------------------------------
# Geometry helpers (all in frame pixels, x right, y down)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.hypot(*vector))
    return vector / norm if norm > 1e-6 else np.array([0.0, 1.0])


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Bool mask of the convex hull of `polygon` ((N, 2) x, y)."""
    canvas = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(polygon).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8)
    return canvas > 0


def _thick_line(shape: tuple[int, int], points: list[np.ndarray], width: float) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8)
    pts = np.round(np.array(points)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], isClosed=False, color=1, thickness=max(1, int(round(width))))
    return canvas > 0


def _disc(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8)
    cv2.circle(canvas, (int(round(centre[0])), int(round(centre[1]))), max(1, int(round(radius))), 1, -1)
    return canvas > 0


def _half_plane(shape: tuple[int, int], point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Pixels p with (p - point) . normal > 0."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xs - point[0]) * normal[0] + (ys - point[1]) * normal[1] > 0


def _extend_to_bottom(start: np.ndarray, direction: np.ndarray, height: int) -> np.ndarray:
    """The point where the ray start + t * direction (pointing down) leaves the frame's bottom edge."""
    if direction[1] <= 1e-6:
        return start + direction
    return start + direction * max(0.0, (height - 1 - start[1]) / direction[1])


class _Body:
    """The keypoints with derived body measures, in frame pixels."""

    def __init__(self, keypoints: np.ndarray, shape: tuple[int, int]):
        self.k = keypoints
        self.shape = shape
        self.has = {i: present(keypoints, i) for i in range(len(keypoints))}
        shoulders = self.has[RIGHT_SHOULDER] and self.has[LEFT_SHOULDER]
        hips = self.has[RIGHT_HIP] and self.has[LEFT_HIP]
        self.shoulder_width = (
            float(np.hypot(*(keypoints[LEFT_SHOULDER] - keypoints[RIGHT_SHOULDER]))) if shoulders else 0
        )
        self.hip_width = float(np.hypot(*(keypoints[LEFT_HIP] - keypoints[RIGHT_HIP]))) if hips else 0
        # Body "down" direction: shoulders' midpoint to hips' midpoint, else perpendicular to the shoulder
        # (or hip) line, pointing down the picture.
        if shoulders and hips:
            self.down = _unit(self.hip_mid - self.shoulder_mid)
        elif shoulders or hips:
            a, b = (RIGHT_SHOULDER, LEFT_SHOULDER) if shoulders else (RIGHT_HIP, LEFT_HIP)
            across = _unit(keypoints[b] - keypoints[a])
            self.down = np.array([-across[1], across[0]])
            if self.down[1] < 0:
                self.down = -self.down
        else:
            self.down = np.array([0.0, 1.0])
        # A scale for everything: shoulder width, else hip width (hips are ~0.75 of the shoulders).
        self.scale = self.shoulder_width or self.hip_width / 0.75 or 0.3 * shape[1]

    @property
    def shoulder_mid(self) -> np.ndarray:
        return (self.k[RIGHT_SHOULDER] + self.k[LEFT_SHOULDER]) / 2

    @property
    def hip_mid(self) -> np.ndarray:
        return (self.k[RIGHT_HIP] + self.k[LEFT_HIP]) / 2

    def hips(self) -> tuple[np.ndarray, np.ndarray]:
        """(right, left) hips; estimated 1.5 shoulder widths below the shoulders when not visible."""
        if self.has[RIGHT_HIP] and self.has[LEFT_HIP]:
            return self.k[RIGHT_HIP], self.k[LEFT_HIP]
        drop = self.down * 1.5 * self.scale
        across = self.k[LEFT_SHOULDER] - self.k[RIGHT_SHOULDER]
        centre = self.shoulder_mid + drop
        return centre - 0.4 * across, centre + 0.4 * across

    def outward(self, point: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """Unit vector from the body's axis through `centre` towards `point`, perpendicular to `down`."""
        side = np.array([-self.down[1], self.down[0]])  # points to the picture's left for down = (0, 1)
        return side if np.dot(point - centre, side) >= 0 else -side


def torso_region(body: _Body) -> np.ndarray:
    """From just above/outside the shoulders to just below/outside the (possibly estimated) hips."""
    right_hip, left_hip = body.hips()
    centre = (body.shoulder_mid + (right_hip + left_hip) / 2) / 2
    up = -body.down
    corners = []
    for shoulder, hip in ((body.k[RIGHT_SHOULDER], right_hip), (body.k[LEFT_SHOULDER], left_hip)):
        out = body.outward(shoulder, centre)
        corners.append(shoulder + out * 0.12 * body.scale + up * NECK_MARGIN)
        corners.append(hip + out * 0.25 * body.scale + body.down * 0.2 * body.scale)
    if not (body.has[RIGHT_HIP] and body.has[LEFT_HIP]):  # hips out of the frame: run to the bottom edge
        corners += [_extend_to_bottom(c, body.down, body.shape[0]) for c in corners[1::2]]
    return _fill(body.shape, np.array(corners))


def arms_region(body: _Body) -> np.ndarray:
    """The arms polyline of the parser path, as wide as an arm with a sleeve."""
    return draw_arms(body.k, body.shape, width=max(ARM_WIDTH, int(round(0.3 * body.scale))))


def leg_points(body: _Body) -> list[list[np.ndarray]]:
    """For each visible leg, hip -> knee -> ankle, continued to the frame bottom when the ankle is not seen."""
    legs = []
    for hip, knee, ankle in ((RIGHT_HIP, RIGHT_KNEE, RIGHT_ANKLE), (LEFT_HIP, LEFT_KNEE, LEFT_ANKLE)):
        if not (body.has[hip] and body.has[knee]):
            continue
        points = [body.k[hip], body.k[knee]]
        if body.has[ankle]:
            points.append(body.k[ankle])
        else:
            points.append(_extend_to_bottom(body.k[knee], body.k[knee] - body.k[hip], body.shape[0]))
        legs.append(points)
    return legs


def lower_region(body: _Body) -> np.ndarray:
    """Hips and legs: the widened hull of waist, hips, knees and ankles, plus thick leg lines."""
    right_hip, left_hip = body.k[RIGHT_HIP], body.k[LEFT_HIP]
    centre = (right_hip + left_hip) / 2
    up = -body.down
    waist_rise = 0.35 * body.scale
    points = []
    for hip in (right_hip, left_hip):
        out = body.outward(hip, centre)
        points += [hip + up * waist_rise + out * 0.15 * body.scale, hip + out * 0.2 * body.scale]
    legs = leg_points(body)
    for leg in legs:
        for point in leg[1:]:
            points.append(point + body.outward(point, centre) * 0.12 * body.scale)
            points.append(point - body.outward(point, centre) * 0.05 * body.scale)
    region = _fill(body.shape, np.array(points))
    for leg in legs:
        region |= _thick_line(body.shape, leg, 0.45 * body.scale)
    return region


def head_region(body: _Body) -> np.ndarray:
    """Face and hair: an ellipse around the head keypoints (or above the neck when no face point is seen)."""
    k = body.k
    points = [k[i] for i in HEAD_POINTS if body.has[i]]
    if body.has[RIGHT_EAR] and body.has[LEFT_EAR]:
        half_width = 0.75 * float(np.hypot(*(k[LEFT_EAR] - k[RIGHT_EAR])))
    elif body.has[RIGHT_EYE] and body.has[LEFT_EYE]:
        half_width = 1.6 * float(np.hypot(*(k[LEFT_EYE] - k[RIGHT_EYE])))
    else:
        half_width = 0.3 * body.scale
    half_width = max(half_width, 0.22 * body.scale)
    if points:
        centre = k[NOSE] if body.has[NOSE] else np.mean(points, axis=0)
    elif body.has[RIGHT_SHOULDER] and body.has[LEFT_SHOULDER]:
        centre = body.shoulder_mid - body.down * 0.55 * body.scale
    else:
        return np.zeros(body.shape, dtype=bool)
    up = -body.down
    ellipse_centre = centre + up * 0.35 * half_width  # hair sits above, the chin below the nose
    canvas = np.zeros(body.shape, dtype=np.uint8)
    angle = float(np.degrees(np.arctan2(body.down[1], body.down[0]))) - 90.0
    axes = (int(round(1.2 * half_width)), int(round(1.65 * half_width)))
    cv2.ellipse(canvas, (int(round(ellipse_centre[0])), int(round(ellipse_centre[1]))), axes, angle, 0, 360, 1, -1)
    return canvas > 0


def hands_region(body: _Body) -> np.ndarray:
    """Discs just beyond each wrist, along the forearm (for arms whose elbow and wrist are both seen)."""
    region = np.zeros(body.shape, dtype=bool)
    for elbow, wrist in ((RIGHT_ELBOW, RIGHT_WRIST), (LEFT_ELBOW, LEFT_WRIST)):
        if body.has[wrist] and body.has[elbow]:
            forearm = body.k[wrist] - body.k[elbow]
            length = max(float(np.hypot(*forearm)), 0.25 * body.scale)
            region |= _disc(body.shape, body.k[wrist] + _unit(forearm) * 0.42 * length, 0.38 * length)
        # A wrist without its elbow is not trusted (as in the arms polyline): no hand is placed.
    return region


def feet_region(body: _Body) -> np.ndarray:
    """Discs below each visible ankle."""
    region = np.zeros(body.shape, dtype=bool)
    for knee, ankle in ((RIGHT_KNEE, RIGHT_ANKLE), (LEFT_KNEE, LEFT_ANKLE)):
        if body.has[ankle]:
            shin = float(np.hypot(*(body.k[ankle] - body.k[knee]))) if body.has[knee] else body.scale
            region |= _disc(body.shape, body.k[ankle] + body.down * 0.3 * shin, 0.25 * shin)
    return region


def _on_person(region: np.ndarray, person: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """`region` within the grown person mask, unless that drops most of it (a poor segmentation)."""
    if person is None:
        return region, False
    if not region.any():
        return region, True  # nothing to intersect
    size = 2 * PERSON_GROW_PX + 1
    grown = cv2.dilate(person.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0
    kept = region & grown
    if kept.sum() < MIN_KEPT_SHARE * region.sum():
        return region, False
    return kept, True


def offline_garment_mask(
    keypoints: np.ndarray,
    person: np.ndarray | None,
    category: str,
    shape: tuple[int, int] = (FRAME_HEIGHT, FRAME_WIDTH),
) -> MaskResult:
    """The garment mask of `category` from (18, 2) keypoints and an (H, W) person probability (or None).

    Raises InputError when the category's body region is not visible (masks.check_body_visible).
    """
    check_category(category)
    keypoints = check_keypoints(keypoints)
    check_body_visible(keypoints, category)
    if person is not None:
        if person.shape != shape:
            raise ValueError(f"person mask has shape {person.shape}, expected {shape}")
        person = person > PERSON_THRESHOLD if person.dtype != np.bool_ else person
    body = _Body(keypoints, shape)
    notes: list[str] = []

    garment = np.zeros(shape, dtype=bool)
    if category in ("upper_body", "dresses"):
        garment |= torso_region(body) | arms_region(body)
    if category in ("lower_body", "dresses"):
        garment |= lower_region(body)
    garment, on_person = _on_person(garment, person)
    if person is not None and not on_person:
        notes.append("the person segmentation did not match the pose; the mask follows the pose only")

    head = head_region(body)
    if category == "lower_body":
        head_fixed = head
    else:
        head_fixed, neck = split_head(head, keypoints)
        garment |= neck if person is None else neck & person
    fixed = head_fixed | hands_region(body) | feet_region(body)
    if category == "upper_body" and body.has[RIGHT_HIP] and body.has[LEFT_HIP]:
        # The lower garment: below a line a little under the hips.
        torso_length = float(np.hypot(*(body.hip_mid - body.shoulder_mid)))
        fixed |= _half_plane(shape, body.hip_mid + body.down * 0.35 * torso_length, body.down)
    if category == "lower_body":
        # The upper garment above the waist, and both arms wherever they hang.
        waist = body.hip_mid - body.down * 0.45 * body.scale
        fixed |= _half_plane(shape, waist, -body.down)
        fixed |= draw_arms(keypoints, shape, width=max(ARM_WIDTH // 2, int(round(0.2 * body.scale))))
    return finish_mask(garment, fixed, tuple(notes))
