"""Paste-back: the edit inside a feathered mask, the original pixels everywhere else.

The official code returns the VAE-decoded frame as is, so pixels outside the mask drift (VAE round
trip) and the picture is 512x384. Here the decoded frame is blended into the *original* photo:
alpha is 1 inside the mask and falls linearly to 0 over `feather_px` frame pixels outside it; where
alpha is 0 the original pixels are copied bit for bit. With `paste_back=False` the raw decoded frame
is returned instead (only un-framed to the photo's size).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FEATHER_PX = 8  # width of the blend band at the mask edge, in frame pixels (every edit uses it)
Unframe = Callable[[np.ndarray], np.ndarray]  # (512, 384, C) frame array -> (H, W, C) photo array


def feathered_alpha(mask: np.ndarray, feather_px: int) -> np.ndarray:
    """(H, W) float32: 1 on the mask, 1 - d / feather_px at distance d outside it, 0 beyond."""
    inside = np.asarray(mask) > 0.5
    if feather_px <= 0:
        return inside.astype(np.float32)
    # Distance of every outside pixel to the nearest mask pixel (0 on the mask).
    distance = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(1.0 - distance / float(feather_px), 0.0, 1.0).astype(np.float32)


def paste_back(
    original: np.ndarray,
    edited_frame: np.ndarray,
    alpha_frame: np.ndarray,
    unframe: Unframe | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8: `edited_frame` (512, 384, 3 in [0, 1]) blended into `original` by alpha.

    `unframe` maps frame arrays onto the photo's pixel grid; None means `original` is the frame.
    Pixels whose alpha is 0 are the original's, unchanged.
    """
    edited = edited_frame.astype(np.float32) * 255.0
    alpha = alpha_frame.astype(np.float32)[..., None]
    if unframe is not None:
        edited = unframe(edited)
        alpha = unframe(alpha)
    alpha = np.clip(alpha.reshape(original.shape[:2] + (1,)), 0.0, 1.0)
    blended = alpha * edited + (1.0 - alpha) * original.astype(np.float32)
    result = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, result, original)


def raw_output(original_shape: tuple[int, ...], edited_frame: np.ndarray, unframe: Unframe | None = None) -> np.ndarray:
    """(H, W, 3) uint8: the decoded frame with no paste-back, brought to the photo's size."""
    edited = edited_frame.astype(np.float32) * 255.0
    if unframe is not None:
        edited = unframe(edited)
    return np.clip(np.rint(edited), 0, 255).astype(np.uint8).reshape(original_shape)
