"""Page skew: estimate the small rotation of a scanned page from its text lines, and undo it.

The angle maximises the variance of the row profiles of the ink of each half of the page (text lines are sharpest
when level; two columns' lines need not be at the same heights), searched coarse then fine within `MAX_SKEW_DEG` on
a page shrunk to `PROFILE_WIDTH`. Angles follow OpenCV's convention (degrees, counter-clockwise positive);
`straighten` returns the level page and the transform back to the original.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_SKEW_DEG = 3.0  # flatbed scans and careful phone scans stay within this
COARSE_STEP_DEG = 0.5
FINE_STEP_DEG = 0.05  # 0.05 degrees is under a pixel across an A4 text line at 150 dpi
PROFILE_WIDTH = 600  # text lines survive this shrink (about half of A4 at 150 dpi); the search is 34 small rotations
MIN_SKEW_DEG = 0.05  # below the fine step there is nothing to undo


def estimate_skew(ink: np.ndarray) -> float:
    """The rotation (degrees) that levels the text lines of a 0/1 ink mask."""
    scale = PROFILE_WIDTH / ink.shape[1]
    small = cv2.resize(ink.astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    centre = (small.shape[1] / 2, small.shape[0] / 2)

    def sharpness(angle: float) -> float:
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        level = cv2.warpAffine(small, rotation, (small.shape[1], small.shape[0]))
        # Each half of the page on its own: the lines of two columns are rarely at the same heights, and one profile
        # over both is sharpest at the angle that lines up one column's line k with the other's line k + 1.
        half = level.shape[1] // 2
        return float(np.var(level[:, :half].sum(axis=1)) + np.var(level[:, half:].sum(axis=1)))

    coarse = max(np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 1e-9, COARSE_STEP_DEG), key=sharpness)
    fine = np.arange(coarse - COARSE_STEP_DEG, coarse + COARSE_STEP_DEG + 1e-9, FINE_STEP_DEG)
    return float(max(fine, key=sharpness))


def straighten(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(the page rotated by `angle`, the 2x3 affine map from its pixels back to the original page's)."""
    height, width = gray.shape
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    paper = int(np.median(gray[:: max(1, height // 64), :: max(1, width // 64)]))  # fill the corners with paper
    level = cv2.warpAffine(gray, rotation, (width, height), flags=cv2.INTER_LINEAR, borderValue=paper)
    return level, cv2.invertAffineTransform(rotation)


def map_box(box: tuple[int, int, int, int], back: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The axis-aligned box, in original page pixels and clipped to the page, of a box on the straightened page."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64) @ back.T
    return (
        max(0, int(np.floor(corners[:, 0].min()))),
        max(0, int(np.floor(corners[:, 1].min()))),
        min(width, int(np.ceil(corners[:, 0].max()))),
        min(height, int(np.ceil(corners[:, 1].max()))),
    )
