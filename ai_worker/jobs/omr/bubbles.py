"""Measuring bubbles on an aligned sheet and deciding marked / blank / multiple with a confidence.

The mark convention: a bubble is marked when about half of it or more is filled. What is measured is the
*filled fraction* of the bubble, not its mean darkness, so a half-moon, a centre blob, an off-centre smear and a
full fill are compared by how much of the bubble they cover, in pen or in light pencil alike.

Guarantees:
- Bubbles are measured where their printed rings are (ai_worker.jobs.omr.refine), not only where the homography
  predicts them, so curled paper and lens distortion do not shift the samples off the bubbles.
- Darkness is taken relative to the local paper (the page's paper is flattened to white, and the median of a ring
  of paper just outside each bubble is subtracted): shadows, uneven light and grey paper cancel out.
- A pixel is ink when its darkness reaches `INK_SHARE` of the sheet's ink level (the typical darkness inside the
  marks on this sheet), bounded to `PIXEL_FLOOR..PIXEL_CEILING`. Blur spreads an edge symmetrically around that
  half level, so the counted area does not depend on focus; pencil grain stays above it; erasure residue, a
  fraction of the original darkness, stays below it.
- The filled fraction covers the whole bubble: the interior inside the printed ring (radius `INTERIOR`) is counted
  directly, and the thin band under and just inside the ring, which cannot be told from the print, is taken to be
  as filled as the interior annulus next to it (`EDGE`). A crescent hugging the ring and a centred blob of the same
  area measure alike.
- A bubble is marked when its filled fraction is at least `mark_fill` (a setting, default `DEFAULT_MARK_FILL`);
  every bubble of a row is decided on its own, so a half-filled second choice next to a full one is a multiple,
  and a faint erasure or a stray dot (a small fraction of the bubble) is never a mark.
- Confidence is 0.5 on the decision boundary and 1.0 when every bubble of the row is far from it: marked ones at
  least `CONFIDENCE_SPAN` above, blank ones at least `BLANK_SPAN_SHARE` of the threshold below; a reading that
  changes when the ink level is taken 25 % darker or lighter is held under `REVIEW_BELOW`. `needs_review` is
  exactly `confidence < REVIEW_BELOW`.
- When the printed bubble rings are not where the template puts them, `ring_contrast` is low and the caller fails
  the job with alignment_failed instead of reading paper that is not a bubble grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from ai_worker.config import VisionSettings
from ai_worker.jobs.omr.align import Alignment
from ai_worker.jobs.omr.refine import ring_offsets

# Filled fraction at which a bubble is a mark ("about half", with room for measuring error): the setting's default.
DEFAULT_MARK_FILL: Final = VisionSettings.omr_mark_fill
INTERIOR = 0.8  # counted interior radius / bubble radius: clear of the printed ring with 1 px misalignment + blur
EDGE = 0.7  # the interior annulus EDGE..INTERIOR stands for the uncounted band INTERIOR..1 under the ring
RING = (0.85, 1.15)  # where the printed outline is, as fractions of the bubble radius
PAPER = (1.3, 1.6)  # paper ring outside the bubble, still inside the gap to the neighbour bubbles
BACKGROUND_BUBBLES = 3.0  # paper flattening kernel, in bubble diameters: wider than any mark, narrow vs shadows
INK_SHARE = 0.5  # a pixel is ink at half the sheet's ink level: the midpoint of a blurred edge
PIXEL_FLOOR, PIXEL_CEILING = 0.12, 0.25  # bounds of that pixel level: above scan noise, below light pencil
MIN_INK_LEVEL = 0.2  # a bubble whose typical dark pixel is lighter than this carries no ink that sets the level
INK_PERCENTILE = 75  # a bubble's ink darkness: the darker quarter of its interior (a half fill still shows it)
DEFAULT_INK_LEVEL = 0.5  # used when no bubble on the sheet is inked: a blank sheet
CONFIDENCE_SPAN = 0.25  # a filled fraction this far above the threshold is read with full confidence; below it,
BLANK_SPAN_SHARE = 0.625  # this share of the threshold (0.25 at a threshold of 0.4): the blank side is shorter
REVIEW_BELOW = 0.7  # confidence under which a reading is flagged needs_review
UNSTABLE_CONFIDENCE = 0.6  # cap for a reading that flips when the ink level is taken 25 % darker or lighter
LEVEL_PROBE = 0.25
PAPER_STEP = 4  # the paper estimate is computed at a quarter of the canvas resolution: light varies slowly
MIN_RING_CONTRAST = 0.05  # printed rings darken their band by at least this much on any readable sheet


@dataclass(frozen=True)
class RowReading:
    status: str  # "marked", "blank" or "multiple"
    marked: tuple[int, ...]  # indices of the marked bubbles
    confidence: float  # 0.5 on a decision boundary, 1.0 when every bubble is far from it

    @property
    def needs_review(self) -> bool:
        return self.confidence < REVIEW_BELOW


@dataclass(frozen=True)
class Measurement:
    fills: np.ndarray  # (n_bubbles,) filled fraction per bubble, in the order the centres were given
    low: np.ndarray  # the same with the ink level taken LEVEL_PROBE darker (fewer pixels count)
    high: np.ndarray  # ... and LEVEL_PROBE lighter (more pixels count)
    ink_level: float  # typical darkness inside the marks of this sheet
    ring_contrast: float  # median darkness of the printed rings above the paper around them


def measure(alignment: Alignment, centres: np.ndarray, bubble_radius: float) -> Measurement:
    """Filled fraction of every bubble centred at `centres` ((n, 2) template coordinates)."""
    radius = bubble_radius * alignment.frame_px
    canvas = alignment.canvas
    points = np.array([alignment.canvas_point(u, v) for u, v in centres])
    points += ring_offsets(canvas, points, radius)
    paper = _paper(canvas, radius)

    def darkness(offsets: np.ndarray) -> np.ndarray:
        """1 - pixel / local paper brightness, in [0, 1], at every point + offset."""
        xs, ys = _offsets(points, offsets, canvas.shape)
        ink = canvas[ys, xs].astype(np.float32)
        white = np.maximum(paper[ys // PAPER_STEP, xs // PAPER_STEP], 1).astype(np.float32)
        result: np.ndarray = np.clip(1.0 - ink / white, 0.0, 1.0)
        return result

    around = np.median(darkness(_disc(PAPER[0] * radius, PAPER[1] * radius)), axis=1)
    inner_offsets = _disc(0.0, INTERIOR * radius)
    inner = darkness(inner_offsets) - around[:, None]
    edge = np.hypot(inner_offsets[:, 0], inner_offsets[:, 1]) >= EDGE * radius
    ring_contrast = float(np.median(darkness(_disc(RING[0] * radius, RING[1] * radius)).mean(axis=1) - around))

    level = ink_level(inner)
    fills = [_filled(inner, edge, level * factor) for factor in (1.0, 1.0 + LEVEL_PROBE, 1.0 - LEVEL_PROBE)]
    return Measurement(fills=fills[0], low=fills[1], high=fills[2], ink_level=level, ring_contrast=ring_contrast)


def ink_level(inner: np.ndarray) -> float:
    """The sheet's ink darkness: the median, over bubbles carrying ink, of each one's darker-quarter darkness."""
    k = inner.shape[1] * INK_PERCENTILE // 100
    per_bubble = np.partition(inner, k, axis=1)[:, k]
    inked = per_bubble[per_bubble >= MIN_INK_LEVEL]
    return float(np.median(inked)) if inked.size else DEFAULT_INK_LEVEL


def _filled(inner: np.ndarray, edge: np.ndarray, level: float) -> np.ndarray:
    """Filled fraction of each bubble: the counted interior, plus the band under the ring taken as filled as the
    interior annulus next to it."""
    inked = inner >= np.clip(INK_SHARE * level, PIXEL_FLOOR, PIXEL_CEILING)
    counted = INTERIOR**2
    result: np.ndarray = counted * inked.mean(axis=1) + (1.0 - counted) * inked[:, edge].mean(axis=1)
    return result


def decide(
    fills: np.ndarray, mark_fill: float, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> RowReading:
    """Read one row of bubbles (a question's choices or an identifier position's digits)."""
    marked = tuple(int(i) for i in np.flatnonzero(fills >= mark_fill))
    span = np.where(fills >= mark_fill, CONFIDENCE_SPAN, BLANK_SPAN_SHARE * mark_fill)
    margin = float((np.abs(fills - mark_fill) / span).min())
    confidence = 0.5 + 0.5 * min(1.0, margin)
    if low is not None and high is not None and not np.array_equal(low >= mark_fill, high >= mark_fill):
        confidence = min(confidence, UNSTABLE_CONFIDENCE)
    status = "blank" if not marked else "marked" if len(marked) == 1 else "multiple"
    return RowReading(status=status, marked=marked, confidence=round(confidence, 3))


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
