"""Measuring bubbles on an aligned sheet and deciding marked / blank / multiple with a confidence.

Guarantees:
- Bubbles are measured where their printed rings are (ai_worker.jobs.omr.refine), not only where the homography
  predicts them, so curled paper and lens distortion do not shift the samples off the bubbles.
- A bubble's fill is the mean darkness of its inner disc minus the median darkness of a ring of paper just outside
  it, on an image whose paper has been flattened to white: shadows, uneven light and grey paper cancel out.
- The marked threshold adapts to the sheet: half the typical fill of the marks on it (so light pencil and dark pen
  both read), never below `FLOOR` (smudges and erasure residue are never marks) nor above `CEILING`.
- Within one row, a bubble only counts as marked if it is at least `DOMINANCE` of the row's strongest mark: a
  faint leftover next to a firm mark is an erasure, two firm marks are a multiple.
- When the printed bubble rings are not where the template puts them, `ring_contrast` is low and the caller fails
  the job with alignment_failed instead of reading paper that is not a bubble grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ai_worker.jobs.omr.align import Alignment
from ai_worker.jobs.omr.refine import ring_offsets

INNER = 0.6  # inner disc radius / bubble radius: clear of the printed ring even with 1 px misalignment
RING = (0.85, 1.15)  # where the printed outline is, as fractions of the bubble radius
PAPER = (1.3, 1.6)  # paper ring outside the bubble, still inside the gap to the neighbour bubbles
BACKGROUND_BUBBLES = 3.0  # paper flattening kernel, in bubble diameters: wider than any mark, narrow vs shadows
FLOOR = 0.2  # fill below this is never a mark: erasure residue, smudges, pencil dust
CEILING = 0.4  # a threshold above this would start missing half-filled pen marks
MARK_SHARE = 0.5  # threshold = half the sheet's typical mark fill
DOMINANCE = 0.6  # a second mark under 60 % of the row's strongest is an erasure leftover, not a multiple
CONFIDENCE_SPAN = 0.2  # a fill this far from its decision boundary is read with full confidence
PAPER_STEP = 4  # the paper estimate is computed at a quarter of the canvas resolution: light varies slowly
MIN_RING_CONTRAST = 0.05  # printed rings darken their band by at least this much on any readable sheet


@dataclass(frozen=True)
class RowReading:
    status: str  # "marked", "blank" or "multiple"
    marked: tuple[int, ...]  # indices of the marked bubbles
    confidence: float  # 0.5 on a decision boundary, 1.0 when every bubble is far from it


@dataclass(frozen=True)
class Measurement:
    fills: np.ndarray  # (n_bubbles,) fill per bubble, in the order the centres were given
    ring_contrast: float  # median darkness of the printed rings above the paper around them


def measure(alignment: Alignment, centres: np.ndarray, bubble_radius: float) -> Measurement:
    """Fill of every bubble centred at `centres` ((n, 2) template coordinates)."""
    radius = bubble_radius * alignment.frame_px
    points = np.array([alignment.canvas_point(u, v) for u, v in centres])
    points += ring_offsets(alignment.canvas, points, radius)
    paper = _paper(alignment.canvas, radius)

    def darkness(r_min: float, r_max: float) -> np.ndarray:
        """1 - pixel / local paper brightness, in [0, 1], at every point + offset in the ring r_min..r_max."""
        xs, ys = _offsets(points, _disc(r_min * radius, r_max * radius), alignment.canvas.shape)
        ink = alignment.canvas[ys, xs].astype(np.float32)
        white = np.maximum(paper[ys // PAPER_STEP, xs // PAPER_STEP], 1).astype(np.float32)
        result: np.ndarray = np.clip(1.0 - ink / white, 0.0, 1.0)
        return result

    around = np.median(darkness(*PAPER), axis=1)
    fills = darkness(0.0, INNER).mean(axis=1) - around
    ring_contrast = float(np.median(darkness(*RING).mean(axis=1) - around))
    return Measurement(fills=fills, ring_contrast=ring_contrast)


def sheet_threshold(fills: np.ndarray) -> float:
    marks = fills[fills >= FLOOR]
    if marks.size == 0:
        return FLOOR
    return float(np.clip(MARK_SHARE * np.median(marks), FLOOR, CEILING))


def decide(fills: np.ndarray, threshold: float) -> RowReading:
    """Read one row of bubbles (a question's choices or an identifier position's digits)."""
    top = float(fills.max())
    relative = DOMINANCE * top
    marked = [i for i, f in enumerate(fills) if f >= threshold and f >= relative]
    # Each bubble's boundary: the sheet threshold, and for all but the strongest also the dominance bound.
    best = int(fills.argmax())
    bounds = np.where(np.arange(fills.size) == best, threshold, max(threshold, relative))
    margin = float(np.abs(fills - bounds).min())
    confidence = 0.5 + 0.5 * min(1.0, margin / CONFIDENCE_SPAN)
    status = "blank" if not marked else "marked" if len(marked) == 1 else "multiple"
    return RowReading(status=status, marked=tuple(marked), confidence=round(confidence, 3))


def _paper(canvas: np.ndarray, radius_px: float) -> np.ndarray:
    """Paper brightness at 1/PAPER_STEP scale: a closing wider than any mark removes the ink, leaving light and
    shadow."""
    small = cv2.resize(canvas, None, fx=1 / PAPER_STEP, fy=1 / PAPER_STEP, interpolation=cv2.INTER_AREA)
    k = max(3, round(BACKGROUND_BUBBLES * 2 * radius_px / PAPER_STEP)) | 1
    paper: np.ndarray = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    return paper


def _disc(r_min: float, r_max: float) -> np.ndarray:
    """Integer offsets (dx, dy) with r_min <= distance <= r_max."""
    reach = int(np.ceil(r_max))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    dist = np.hypot(dx, dy)
    keep = (dist >= r_min) & (dist <= r_max)
    return np.stack([dx[keep], dy[keep]], axis=1)


def _offsets(points: np.ndarray, offsets: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices (xs, ys) of every point + offset, each (n_points, n_offsets), clipped to the image."""
    base = np.rint(points).astype(np.int64)
    xs = np.clip(base[:, None, 0] + offsets[None, :, 0], 0, shape[1] - 1)
    ys = np.clip(base[:, None, 1] + offsets[None, :, 1], 0, shape[0] - 1)
    return xs, ys
