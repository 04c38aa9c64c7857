"""The garment mask: the Dress Code recipe step by step (masks.py) and the offline geometry (offline_mask.py).

Expectations are computed by hand from rectangles: dilating a rectangle by mask rule 5's 5x5 kernel five
times grows it by exactly 10 pixels on each side, and dilation distributes over unions.
"""

from __future__ import annotations

import numpy as np
import pytest

from fashion_rag.errors import InputError
from fashion_rag.person import masks
from fashion_rag.person.masks import (
    MaskResult,
    arm_chains,
    box_variant,
    check_body_visible,
    dilate,
    draw_arms,
    garment_mask_from_labels,
    split_head,
)
from fashion_rag.person.offline_mask import offline_garment_mask

H, W = 512, 384


def rect(r0: int, r1: int, c0: int, c1: int, grow: int = 0) -> np.ndarray:
    """Rows [r0, r1) x columns [c0, c1), grown by `grow` on each side, clipped to the frame."""
    out = np.zeros((H, W), dtype=bool)
    out[max(0, r0 - grow) : min(H, r1 + grow), max(0, c0 - grow) : min(W, c1 + grow)] = True
    return out


def nan_keypoints() -> np.ndarray:
    return np.full((18, 2), np.nan)


def standing_keypoints() -> np.ndarray:
    """A person facing the camera, arms down, seen head to ankles in the 384x512 frame."""
    k = nan_keypoints()
    k[0] = (192, 60)  # nose
    k[14], k[15], k[16], k[17] = (182, 52), (202, 52), (170, 58), (214, 58)  # eyes, ears
    k[2], k[5] = (142, 120), (242, 120)  # shoulders (right on the picture's left)
    k[1] = (192, 120)
    k[3], k[6] = (128, 200), (256, 200)  # elbows
    k[4], k[7] = (124, 270), (260, 270)  # wrists
    k[8], k[11] = (160, 270), (224, 270)  # hips
    k[9], k[12] = (158, 380), (226, 380)  # knees
    k[10], k[13] = (156, 480), (228, 480)  # ankles
    return k


# --------------------------------------------------------------------------------------------------
# Step 3: arms


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray, flat_ends: bool) -> np.ndarray:
    """Distance from points to segment a-b. With `flat_ends`: infinity where the projection falls off the
    segment or within 2 px of its ends (where the rasterisation of a slanted flat end may go either way)."""
    ab = b - a
    length = float(np.hypot(*ab))
    t = ((points - a) @ ab) / (ab @ ab)
    foot = a + np.clip(t, 0, 1)[:, None] * ab
    d = np.hypot(*(points - foot).T)
    margin = 2.0 / length
    return np.where((t >= margin) & (t <= 1 - margin), d, np.inf) if flat_ends else d


def test_arm_chain_order_and_missing_points() -> None:
    k = standing_keypoints()
    assert arm_chains(k) == [[7, 6, 5, 2, 3, 4]]
    k[4] = np.nan  # right wrist missing: dropped
    assert arm_chains(k) == [[7, 6, 5, 2, 3]]
    k[6] = np.nan  # left elbow missing: dropped, the left wrist joins the shoulder (mask rule 3)
    assert arm_chains(k) == [[7, 5, 2, 3]]
    k[5] = np.nan  # left shoulder missing: the whole left arm goes (mask rule 3 is silent; docs/recipe.md differences)
    assert arm_chains(k) == [[2, 3]]
    k[3] = np.nan
    assert arm_chains(k) == []


def test_shoulder_line_alone_is_a_45_px_band_with_flat_ends() -> None:
    k = nan_keypoints()
    k[2], k[5] = (120, 200), (264, 200)
    np.testing.assert_array_equal(draw_arms(k), rect(178, 223, 120, 265))


def test_arm_polyline_is_45_px_wide_with_round_joints() -> None:
    k = standing_keypoints()
    drawn = draw_arms(k)
    chain = [np.floor(k[i]) for i in (7, 6, 5, 2, 3, 4)]
    ys, xs = np.mgrid[0:H, 0:W]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    band = np.full(len(points), np.inf)  # flat ends and round joints: the shape PIL draws
    near = np.full(len(points), np.inf)  # plain distance to the polyline
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        band = np.minimum(band, _segment_distance(points, a, b, flat_ends=True))
        near = np.minimum(near, _segment_distance(points, a, b, flat_ends=False))
    joints = np.full(len(points), np.inf)
    for joint in chain[1:-1]:
        joints = np.minimum(joints, np.hypot(*(points - joint).T))
    # Half-width 22.5 (PIL draws the joints with radius 21.5), up to a pixel or two of rasterisation.
    assert drawn[band.reshape(H, W) <= 20.5].all()
    assert drawn[joints.reshape(H, W) <= 19.5].all()
    assert not drawn[near.reshape(H, W) >= 24].any()
    assert drawn.sum() == pytest.approx(
        45 * sum(np.hypot(*(b - a)) for a, b in zip(chain[:-1], chain[1:], strict=True)), rel=0.1
    )
    wrist = chain[-1]
    assert not drawn[int(wrist[1]) + 5, int(wrist[0])]  # flat end: nothing past the wrist
    k[4] = np.nan
    without_wrist = draw_arms(k)
    assert not without_wrist[240, 124] and drawn[240, 124]  # the right forearm is gone


# --------------------------------------------------------------------------------------------------
# Step 4: neck


def test_neck_rule_splits_the_head_at_twenty_pixels_above_the_shoulder_line() -> None:
    head = rect(0, 300, 0, W)
    k = nan_keypoints()
    k[2], k[5] = (100, 200), (300, 220)  # sloped: y = 0.1 x + 190
    fixed, neck = split_head(head, k)
    assert not (fixed & neck).any() and ((fixed | neck) == head).all()
    for column in (0, 100, 250, 300, 383):
        cut = int(np.floor(0.1 * column + 190 - 20))
        assert fixed[:cut, column].all() and not fixed[cut:, column].any()
        assert neck[cut:300, column].all() and not neck[:cut, column].any()
    k[5] = np.nan
    fixed, neck = split_head(head, k)
    assert (fixed == head).all() and not neck.any()


# --------------------------------------------------------------------------------------------------
# Steps 5 to 7


def test_dilation_grows_by_ten_pixels_in_every_direction() -> None:
    point = rect(100, 101, 200, 201)
    np.testing.assert_array_equal(dilate(point), rect(90, 111, 190, 211))
    corner = rect(0, 1, 0, 1)
    np.testing.assert_array_equal(dilate(corner), rect(0, 11, 0, 11))
    np.testing.assert_array_equal(dilate(point, iterations=1), rect(98, 103, 198, 203))


def test_box_variant_fills_the_tight_box_except_fixed_pixels() -> None:
    mask = rect(100, 120, 50, 70) | rect(200, 210, 150, 160)
    fixed = rect(150, 160, 0, W)
    np.testing.assert_array_equal(box_variant(mask, fixed), rect(100, 210, 50, 160) & ~fixed)
    assert not box_variant(np.zeros((H, W), bool), fixed).any()


def test_mask_result_variant_by_name() -> None:
    a, b = rect(0, 10, 0, 10), rect(0, 20, 0, 20)
    result = MaskResult(precise=a, box=b, fixed=~b)
    assert result.variant("precise") is a and result.variant("box") is b
    with pytest.raises(InputError, match="'box' or 'precise'"):
        result.variant("loose")


# --------------------------------------------------------------------------------------------------
# The whole recipe on a synthetic ATR label map


def synthetic_labels(dress: bool = False) -> dict[str, np.ndarray]:
    """Regions of a person as rectangles, and the label map made of them."""
    regions = {
        "hair": rect(20, 60, 140, 244),
        "face": rect(60, 190, 150, 234),  # rows 180-189 are the neck, below the cut at 200 - 20
        "right_arm": rect(190, 330, 60, 100),
        "left_arm": rect(190, 330, 284, 324),
        "right_leg": rect(470, 490, 120, 180),
        "left_leg": rect(470, 490, 200, 260),
        "right_shoe": rect(490, 510, 120, 180),
        "left_shoe": rect(490, 510, 200, 260),
        "bag": rect(250, 300, 330, 370),
    }
    if dress:
        regions["dress"] = rect(190, 470, 100, 284)
    else:
        regions["upper"] = rect(190, 330, 100, 284)
        regions["pants"] = rect(330, 470, 110, 274)
    label_of = {
        "hair": masks.HAIR,
        "face": masks.FACE,
        "right_arm": masks.RIGHT_ARM,
        "left_arm": masks.LEFT_ARM,
        "right_leg": masks.RIGHT_LEG,
        "left_leg": masks.LEFT_LEG,
        "right_shoe": masks.RIGHT_SHOE,
        "left_shoe": masks.LEFT_SHOE,
        "bag": masks.BAG,
        "dress": masks.DRESS,
        "upper": masks.UPPER_CLOTHES,
        "pants": masks.PANTS,
    }
    labels = np.zeros((H, W), dtype=np.int64)
    for name, region in regions.items():
        labels[region] = label_of[name]
    return {"labels": labels, **regions}


def shoulders_only() -> np.ndarray:
    k = nan_keypoints()
    k[2], k[5] = (120, 200), (264, 200)  # arms polyline: rows 178-222, columns 120-264
    return k


def expected(garment_rects: list[tuple[int, int, int, int]], fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grown = np.zeros((H, W), dtype=bool)
    for r in garment_rects:
        grown |= rect(*r, grow=10)
    precise = grown & ~fixed
    rows, cols = np.flatnonzero(precise.any(axis=1)), np.flatnonzero(precise.any(axis=0))
    box = rect(rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) & ~fixed
    return precise, box


def test_upper_body_recipe_matches_the_hand_computation() -> None:
    r = synthetic_labels()
    result = garment_mask_from_labels(r["labels"], shoulders_only(), "upper_body")
    head_above_cut = r["hair"] | (r["face"] & rect(0, 180, 0, W))
    fixed = (
        r["hair"]
        | r["right_shoe"]
        | r["left_shoe"]
        | r["bag"]
        | r["pants"]  # always fixed, and the other garment
        | head_above_cut
        | r["right_arm"]
        | r["left_arm"]  # arm pixels outside the polyline are the hands
    )
    precise, box = expected([(190, 330, 100, 284), (178, 223, 120, 265), (180, 190, 150, 234)], fixed)
    np.testing.assert_array_equal(result.fixed, fixed)
    np.testing.assert_array_equal(result.precise, precise)
    np.testing.assert_array_equal(result.box, box)
    assert result.box.sum() > result.precise.sum()
    assert not result.precise[r["face"] & rect(0, 170, 0, W)].any()  # the face stays


def test_lower_body_recipe_matches_the_hand_computation() -> None:
    r = synthetic_labels()
    result = garment_mask_from_labels(r["labels"], shoulders_only(), "lower_body")
    fixed = (
        r["hair"]
        | r["right_shoe"]
        | r["left_shoe"]
        | r["bag"]
        | r["upper"]
        | r["right_arm"]
        | r["left_arm"]  # the other garment and both arms
        | r["face"]  # no neck rule for lower_body: the whole head is kept
    )
    precise, box = expected([(330, 470, 110, 274), (470, 490, 120, 180), (470, 490, 200, 260)], fixed)
    np.testing.assert_array_equal(result.fixed, fixed)
    np.testing.assert_array_equal(result.precise, precise)
    np.testing.assert_array_equal(result.box, box)
    assert not result.precise[r["upper"]].any() and result.precise[r["pants"]].all()


def test_dresses_recipe_matches_the_hand_computation() -> None:
    r = synthetic_labels(dress=True)
    result = garment_mask_from_labels(r["labels"], shoulders_only(), "dresses")
    fixed = (
        r["hair"]
        | r["right_shoe"]
        | r["left_shoe"]
        | r["bag"]
        | r["hair"]
        | (r["face"] & rect(0, 180, 0, W))
        | r["right_arm"]
        | r["left_arm"]
    )
    precise, box = expected(
        [(190, 470, 100, 284), (470, 490, 120, 180), (470, 490, 200, 260), (178, 223, 120, 265), (180, 190, 150, 234)],
        fixed,
    )
    np.testing.assert_array_equal(result.precise, precise)
    np.testing.assert_array_equal(result.box, box)


def test_every_head_label_below_the_neck_line_joins_the_garment_region() -> None:
    """Mask rules 1 and 4: head = {hat, hair, sunglasses, face}; head pixels below the cut (shoulder line - 20)
    join the garment region, so the dilation grows from them (the fixed ones are then removed again). A
    label that is not head (belt) placed the same way does not join."""
    labels = np.zeros((H, W), dtype=np.int64)
    labels[rect(300, 400, 150, 234)] = masks.UPPER_CLOTHES
    patches = {
        masks.HAT: (60, 70, 20, 30),
        masks.HAIR: (60, 70, 90, 100),
        masks.SUNGLASSES: (60, 70, 250, 260),
        masks.FACE: (60, 70, 330, 340),
        masks.BELT: (120, 130, 20, 30),
    }
    for label, r in patches.items():
        labels[rect(*r)] = label
    k = nan_keypoints()
    k[2], k[5] = (100, 40), (284, 40)  # shoulder line y = 40: the cut is at row 20, every patch is below it
    k[3], k[6] = (100, 41), (284, 41)  # (elbows keep the arms polyline short and away from the patches)
    result = garment_mask_from_labels(labels, k, "upper_body")
    for label, (r0, r1, c0, c1) in patches.items():
        ring = rect(r0, r1, c0, c1, grow=10) & ~rect(r0 - 1, r1 + 1, c0 - 1, c1 + 1)  # around, not on it
        ring &= ~draw_arms(k) & ~rect(1, 62, 0, W)  # away from the arms polyline's own dilation
        if label == masks.BELT:
            assert not result.precise[ring].any(), "a belt is not head"
        else:
            assert result.precise[ring].all(), f"label {label} below the cut did not join the garment region"


def test_arm_pixels_inside_the_polyline_join_and_outside_are_fixed() -> None:
    labels = np.zeros((H, W), dtype=np.int64)
    labels[rect(190, 330, 100, 284)] = masks.UPPER_CLOTHES
    labels[rect(120, 420, 40, 100)] = masks.RIGHT_ARM  # a long arm down the left of the picture
    k = nan_keypoints()
    k[2], k[5], k[3] = (70, 130), (300, 130), (70, 250)  # right shoulder -> elbow; no wrist
    result = garment_mask_from_labels(labels, k, "upper_body")
    polyline = draw_arms(k)
    hands = (labels == masks.RIGHT_ARM) & ~polyline
    assert hands.any() and (result.fixed[hands]).all()
    assert result.precise[polyline & (labels == masks.RIGHT_ARM)].all()  # the sleeve is regenerated
    assert not result.precise[hands].any()


def test_missing_shoulders_keep_the_whole_head_and_say_so() -> None:
    r = synthetic_labels()
    result = garment_mask_from_labels(r["labels"], nan_keypoints(), "upper_body")
    assert result.fixed[r["face"]].all()
    assert any("neck" in note for note in result.notes)


def test_recipe_rejects_bad_arguments() -> None:
    labels = np.zeros((H, W), dtype=np.int64)
    with pytest.raises(InputError, match="unknown category 'shoes'"):
        garment_mask_from_labels(labels, shoulders_only(), "shoes")
    with pytest.raises(ValueError, match=r"\(18, 2\)"):
        garment_mask_from_labels(labels, np.zeros((17, 2)), "upper_body")
    with pytest.raises(ValueError, match="integer ATR label map"):
        garment_mask_from_labels(labels.astype(np.float32), shoulders_only(), "upper_body")


# --------------------------------------------------------------------------------------------------
# Which categories a photo allows


def test_category_needs_its_body_region() -> None:
    half_body = standing_keypoints()
    half_body[[8, 9, 10, 11, 12, 13]] = np.nan
    check_body_visible(half_body, "upper_body")
    with pytest.raises(
        InputError, match=r"lower_body needs the hips and knees.*right hip, left hip, right knee / left knee"
    ):
        check_body_visible(half_body, "lower_body")
    with pytest.raises(InputError, match=r"dresses needs the shoulders and hips.*right hip, left hip"):
        check_body_visible(half_body, "dresses")
    one_knee = standing_keypoints()
    one_knee[9] = np.nan
    check_body_visible(one_knee, "lower_body")
    headless = standing_keypoints()
    headless[2] = np.nan
    with pytest.raises(InputError, match="upper_body.*right shoulder"):
        check_body_visible(headless, "upper_body")


# --------------------------------------------------------------------------------------------------
# Offline geometry


def silhouette(k: np.ndarray) -> np.ndarray:
    """A person-shaped probability map: torso, pelvis, head and 24 px limbs around the keypoints."""
    import cv2

    canvas = np.zeros((H, W), dtype=np.uint8)
    cv2.fillConvexPoly(canvas, np.round(k[[2, 5, 11, 8]]).astype(np.int32), 1)
    pelvis = np.array([k[8] - (14, 0), k[11] + (14, 0), (k[11] + k[12]) / 2, (k[8] + k[9]) / 2])
    cv2.fillConvexPoly(canvas, np.round(pelvis).astype(np.int32), 1)
    for a, b in [(2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13), (1, 0)]:
        cv2.line(canvas, tuple(np.round(k[a]).astype(int)), tuple(np.round(k[b]).astype(int)), 1, 24)
    cv2.circle(canvas, tuple(np.round(k[0]).astype(int)), 34, 1, -1)
    return canvas.astype(np.float32)


def test_offline_upper_body_covers_the_torso_and_keeps_face_hands_and_legs() -> None:
    k = standing_keypoints()
    result = offline_garment_mask(k, silhouette(k), "upper_body")
    torso = rect(125, 265, 150, 235)
    assert result.precise[torso].mean() > 0.98
    assert result.precise[200, 128] and result.precise[200, 256]  # both elbows (sleeves)
    face = rect(35, 80, 172, 213)
    assert not result.precise[face].any() and not result.box[face].any()
    assert result.fixed[285, 123] and not result.precise[285, 123]  # beyond the right wrist: a hand
    assert not result.precise[rect(380, H, 0, W)].any() and not result.box[rect(380, H, 0, W)].any()  # legs
    assert not result.precise[rect(0, 512, 0, 40)].any()  # far background is left alone


def test_offline_lower_body_covers_hips_and_legs_and_keeps_the_upper_garment() -> None:
    k = standing_keypoints()
    result = offline_garment_mask(k, silhouette(k), "lower_body")
    assert result.precise[rect(275, 320, 150, 235)].mean() > 0.98  # the hips
    assert result.precise[rect(300, 370, 150, 170)].all() and result.precise[rect(300, 370, 215, 235)].all()
    assert result.precise[430, 157] and result.precise[430, 227]  # both shins
    assert not result.box[rect(0, 200, 0, W)].any()  # everything above the waist is kept
    assert result.fixed[285, 123] and result.fixed[285, 261]  # hands hanging at the hips
    assert not result.precise[200, 128]  # the arms are kept
    assert not result.box[rect(500, 512, 140, 175)].any()  # the feet


def test_offline_dresses_span_torso_and_legs() -> None:
    k = standing_keypoints()
    result = offline_garment_mask(k, silhouette(k), "dresses")
    assert result.precise[rect(130, 320, 160, 225)].mean() > 0.98
    assert not result.precise[rect(35, 80, 172, 213)].any()


def test_offline_mask_uses_the_person_only_where_it_matches_the_pose() -> None:
    k = standing_keypoints()
    with_person = offline_garment_mask(k, silhouette(k), "lower_body")
    without = offline_garment_mask(k, None, "lower_body")
    assert with_person.precise.sum() < without.precise.sum()  # the background between the legs is left out
    assert without.precise[430, 192] and not with_person.precise[430, 192]
    elsewhere = np.zeros((H, W), dtype=np.float32)
    elsewhere[:, :30] = 1.0  # a segmentation that misses the posed person entirely
    ignored = offline_garment_mask(k, elsewhere, "lower_body")
    np.testing.assert_array_equal(ignored.precise, without.precise)
    assert any("segmentation" in note for note in ignored.notes)


def test_offline_mask_refuses_missing_body_regions() -> None:
    k = standing_keypoints()
    k[[9, 12]] = np.nan
    with pytest.raises(InputError, match="lower_body.*knee"):
        offline_garment_mask(k, None, "lower_body")
