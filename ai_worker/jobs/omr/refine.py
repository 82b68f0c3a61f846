"""Local correction of bubble positions for pages that are not flat: paper curl and lens distortion.

The homography through the four fiducials is exact only for a flat page seen by a distortion-free camera. On a
real photo a bubble in the middle of the page can sit a millimetre or two off its predicted place. This module
finds the printed rings themselves and moves every predicted centre by the displacement its neighbourhood shows.

Guarantees: the correction is a smooth field estimated from blank bubbles only (a ring detector whose interior
weights are negative does not respond to filled bubbles), each bubble takes the median displacement of its nearest
reliable neighbours, and displacements are bounded by `SEARCH` bubble radii; with too few reliable rings the
prediction is left as it is.
"""

from __future__ import annotations

import cv2
import numpy as np

SEARCH = 0.9  # search reach, in bubble radii: past the neighbour rings would start to compete
RING_BAND = 0.16  # half-width of the ring band of the detector, in bubble radii
INSIDE, OUTSIDE = 0.65, (1.25, 1.5)  # negative detector zones: the bubble's interior and the paper around it
NEIGHBOURS = 8  # each bubble takes the median displacement of this many nearby reliable rings
MIN_RELIABLE = 6
PASSES = 2
RELIABLE_SHARE = 0.5  # a ring response counts when at least half the typical blank-ring response


def ring_offsets(canvas: np.ndarray, points: np.ndarray, radius_px: float) -> np.ndarray:
    """(n, 2) displacements in canvas pixels to add to `points` ((n, 2) canvas pixels)."""
    # Only the part of the page holding bubbles is searched: the header and margins cost nothing.
    pad = int(np.ceil((OUTSIDE[1] + PASSES * SEARCH) * radius_px)) + 4
    x0, y0 = (max(0, (int(c) - pad) & ~1) for c in points.min(axis=0))
    x1, y1 = (int(c) + pad for c in points.max(axis=0))
    canvas = canvas[y0:y1, x0:x1]
    points = points - np.array([x0, y0])
    # Work at half resolution: rings are still ~6 px in radius and the correlation costs a quarter.
    half = cv2.pyrDown(canvas)
    response = cv2.filter2D(255.0 - half.astype(np.float32), cv2.CV_32F, _ring_detector(radius_px / 2))
    reach = max(1, round(SEARCH * radius_px / 2))
    apart = (points[:, None, :] - points[None, :, :]).astype(np.float32)
    squared = np.einsum("ijk,ijk->ij", apart, apart)
    offsets = np.zeros_like(points)
    # A second pass searches again from the corrected places: large bends are followed in two steps.
    for _ in range(PASSES):
        peak, found = _peaks(response, (points + offsets) / 2, reach)
        strong = peak[peak > 0]
        if strong.size < MIN_RELIABLE:
            break
        reliable = np.flatnonzero(peak >= RELIABLE_SHARE * np.percentile(strong, 75))
        if reliable.size < MIN_RELIABLE:
            break
        k = min(NEIGHBOURS, reliable.size)
        nearest = np.argpartition(squared[:, reliable], k - 1, axis=1)[:, :k]
        offsets = np.median((found * 2 - points)[reliable][nearest], axis=1)
    return offsets


def _peaks(response: np.ndarray, points: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Strongest ring response within `reach` of each point, and where it is (sub-pixel)."""
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    base = np.rint(points).astype(np.int64)
    xs = np.clip(base[:, 0, None] + dx.ravel()[None, :], 1, response.shape[1] - 2)
    ys = np.clip(base[:, 1, None] + dy.ravel()[None, :], 1, response.shape[0] - 2)
    values = response[ys, xs]
    rows = np.arange(len(points))
    best = values.argmax(axis=1)
    bx, by = xs[rows, best], ys[rows, best]
    found = np.stack([bx + _vertex(response, bx, by, 1, 0), by + _vertex(response, bx, by, 0, 1)], axis=1)
    return values[rows, best], found


def _ring_detector(radius: float) -> np.ndarray:
    """Zero-sum kernel: +1 total on the ring, -1 total shared by the interior and the surrounding paper, so flat
    paper, smooth shading and filled bubbles give no positive response."""
    reach = int(np.ceil(OUTSIDE[1] * radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    d = np.hypot(dx, dy) / radius
    ring = np.abs(d - 1.0) <= RING_BAND
    rest = (d <= INSIDE) | ((d >= OUTSIDE[0]) & (d <= OUTSIDE[1]))
    kernel = ring / max(ring.sum(), 1) - rest / max(rest.sum(), 1)
    return kernel.astype(np.float32)


def _vertex(response: np.ndarray, xs: np.ndarray, ys: np.ndarray, ox: int, oy: int) -> np.ndarray:
    """Sub-pixel peak position along one axis, from a parabola through the peak and its two neighbours."""
    before = response[ys - oy, xs - ox]
    at = response[ys, xs]
    after = response[ys + oy, xs + ox]
    curvature = before - 2 * at + after
    shift = np.where(curvature < 0, 0.5 * (before - after) / np.where(curvature < 0, curvature, -1), 0.0)
    result: np.ndarray = np.clip(shift, -0.5, 0.5)
    return result
