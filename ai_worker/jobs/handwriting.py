"""handwriting_analysis: how much is handwritten on a page or region, and what it looks like.

Guarantees: printed text is told from writing by its geometry, not its colour: a printed line's letters sit on one
straight baseline, so most of its bottom contour lies on a fitted line; a handwritten line's does not. Long
straight rules (answer boxes, underlines) and dust are removed before anything is measured; paper texture, tint and
uneven light stay below the ink-contrast floor (`imaging.ink_mask`). Every length is relative to the measured text
height, so any resolution works, from a 300-dpi scan down to a 480-px video frame.

Scores (all in [0, 1]):
- `writing_area` = area within half a text height of handwritten ink / region area.
- `writing_score` = 1 - exp(-writing_area / WRITING_AREA_SCALE): 0 for nothing written, 0.63 when handwriting boxes
  cover 8 % of the region, 0.95 at 24 %; it rises strictly with the amount written.
- `writing_present` = writing_area >= PRESENCE_MIN_AREA (0.3 % of the region: about two written words on A4).
- `calculation_score` = writing_score x the share of handwritten ink in digit-like marks: connected strokes no wider
  than `DIGIT_MAX_ASPECT` times their height (digits, operators), as opposed to joined-up words.

`measure` is shared with homework_video_analysis, which scores one representative frame per page.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import ink_mask, join_marks, remove_specks
from ai_worker.jobs.pages import int_field, load_pages

SPECK_AREA = 5  # pixels: dust and noise below this are never ink
RULE_MIN_TEXT = 8  # a straight run longer than 8 text heights ...
RULE_MIN_SHARE = 0.2  # ... and than 20 % of the region's side is a rule (box border, underline), not writing
WORD_JOIN_TEXT = 1.5  # marks closer than 1.5 text heights join one line
BASELINE_TOL_TEXT = 0.1  # a bottom-contour column within 0.1 text heights (>= 1 px) of the fitted baseline is on it
PRINTED_MIN_ON_BASELINE = 0.4  # a printed line has at least 40 % of its bottom contour on a straight baseline ...
PRINT_SIZE_TOLERANCE = 1.4  # ... and letters at most 1.4x the page's print size (handwriting is larger than print)
LETTER_SIZE_PERCENTILE = 90  # a line's letter height: capitals and ascenders, not the x-height
SLIVER_PX = 2  # marks this thin (or thinner than 0.3 text heights) are left-over edges of erased rules
RULE_REMNANT_TEXT = 0.3
WRITING_ZONE_TEXT = 0.5  # handwritten strokes are grown by half a text height to measure the area they cover
WRITING_AREA_SCALE = 0.08  # writing_score = 1 - exp(-writing_area / 0.08): 0.63 at 8 % of the region written
PRESENCE_MIN_AREA = 0.003  # writing over 0.3 % of the region (two words on A4) is present; blank sheets stay < 0.15 %
DIGIT_MAX_ASPECT = 1.5  # a connected stroke at most 1.5x as wide as tall is a digit or operator, not a joined word
ORIENTATION_BINS = 18  # 10-degree bins over [0, 180)
MIN_REGION_PX = 16  # a payload.bbox must leave at least 16x16 px to measure


@dataclass(frozen=True)
class Measure:
    ink_coverage: float  # all ink (printed and handwritten, rules and dust excluded) / region area
    handwriting_coverage: float  # handwritten ink / region area
    writing_area: float
    writing_present: bool
    writing_score: float
    calculation_score: float
    text_height_px: float  # median height of the marks on the page
    stroke_width_px: float  # handwritten ink area / its skeleton length
    orientation_entropy: float  # normalised entropy of handwritten stroke directions: 0 one direction, 1 uniform
    handwritten_lines: int
    printed_lines: int
    handwriting_components: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure(gray: np.ndarray) -> Measure:
    """Measure the handwriting in a grayscale page or region."""
    region_area = float(gray.shape[0] * gray.shape[1])
    ink = remove_specks(ink_mask(gray), SPECK_AREA)
    text_h = _text_height(ink)
    _remove_rules(ink, text_h)
    join = max(3, round(WORD_JOIN_TEXT * text_h))
    joined = join_marks(ink, join)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    lines = []
    for i in range(1, count):
        x, y, w, h, _ = stats[i]
        if min(w, h) <= max(SLIVER_PX, RULE_REMNANT_TEXT * text_h) or max(w, h) < text_h / 2:
            continue  # a dot, or what is left of an erased rule by its anti-aliased, noisy edges
        own = (labels[y : y + h, x : x + w] == i) & (ink[y : y + h, x : x + w] > 0)
        lines.append((x, y, own, *_line_shape(own, text_h)))
    # The page's print size: the typical letter height of the lines that sit on a straight baseline.
    baseline_heights = [size for *_, on_baseline, size in lines if on_baseline >= PRINTED_MIN_ON_BASELINE]
    print_size = float(np.median(baseline_heights)) if baseline_heights else 0.0
    written = np.zeros_like(ink)
    printed_lines = written_lines = 0
    for x, y, own, on_baseline, size in lines:
        if on_baseline >= PRINTED_MIN_ON_BASELINE and size <= PRINT_SIZE_TOLERANCE * print_size:
            printed_lines += 1
            continue
        written_lines += 1
        written[y : y + own.shape[0], x : x + own.shape[1]] |= own.astype(np.uint8)
    # The written zone: handwritten ink grown by half a text height, so it covers the space between strokes and only
    # ever grows when more is written.
    reach = 2 * max(1, round(WRITING_ZONE_TEXT * text_h)) + 1
    zone = cv2.dilate(written, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    writing_area = float(zone.sum()) / region_area
    writing_score = 1.0 - math.exp(-writing_area / WRITING_AREA_SCALE)
    hw_pixels = int(written.sum())
    digit_share, components = _digit_share(written)
    return Measure(
        ink_coverage=float(ink.sum()) / region_area,
        handwriting_coverage=hw_pixels / region_area,
        writing_area=writing_area,
        writing_present=writing_area >= PRESENCE_MIN_AREA,
        writing_score=writing_score,
        calculation_score=writing_score * digit_share,
        text_height_px=text_h,
        stroke_width_px=_stroke_width(written),
        orientation_entropy=_orientation_entropy(gray, written),
        handwritten_lines=written_lines,
        printed_lines=printed_lines,
        handwriting_components=components,
    )


def _text_height(ink: np.ndarray) -> float:
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights = stats[1:count, cv2.CC_STAT_HEIGHT]
    return float(max(4.0, np.median(heights))) if len(heights) else 4.0


def _remove_rules(ink: np.ndarray, text_h: float) -> None:
    """Erase long straight horizontal and vertical runs (rules, box borders) in place."""
    height, width = ink.shape
    across = max(round(RULE_MIN_TEXT * text_h), round(RULE_MIN_SHARE * width))
    down = max(round(RULE_MIN_TEXT * text_h), round(RULE_MIN_SHARE * height))
    rules = cv2.bitwise_or(
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (across, 1))),
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, down))),
    )
    ink[cv2.dilate(rules, np.ones((5, 5), np.uint8)) > 0] = 0  # with the anti-aliased fringe


def _line_shape(own: np.ndarray, text_h: float) -> tuple[float, float]:
    """(share of the bottom contour on a robustly fitted straight baseline, letter height) of one line.

    The letter height is the `LETTER_SIZE_PERCENTILE` percentile over columns of the ink's vertical extent: the
    height of capitals and ascenders in print, whatever the mix of letters, digits and case.
    """
    columns = np.flatnonzero(own.any(axis=0))
    if len(columns) < 3:
        return 0.0, float(own.shape[0])
    ink = own[:, columns]
    bottoms = (own.shape[0] - 1 - np.argmax(ink[::-1], axis=0)).astype(np.float64)
    size = float(np.percentile(bottoms - np.argmax(ink, axis=0) + 1, LETTER_SIZE_PERCENTILE))
    xs = columns.astype(np.float64)
    tol = max(1.0, BASELINE_TOL_TEXT * text_h)
    keep = np.ones(len(xs), bool)
    for _ in range(2):  # refit without descenders and loops
        slope, intercept = np.polyfit(xs[keep], bottoms[keep], 1)
        residual = np.abs(bottoms - (slope * xs + intercept))
        keep = residual <= 3 * tol
        if keep.sum() < 3:
            return 0.0, size
    return float(np.mean(residual <= tol)), size


def _digit_share(written: np.ndarray) -> tuple[float, int]:
    """(share of handwritten ink in digit-like components, number of handwritten components)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(written, connectivity=8)
    if count <= 1:
        return 0.0, 0
    w = stats[1:, cv2.CC_STAT_WIDTH]
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    compact = w <= DIGIT_MAX_ASPECT * h
    return float(area[compact].sum() / area.sum()), count - 1


def _stroke_width(written: np.ndarray) -> float:
    from skimage.morphology import skeletonize

    length = int(skeletonize(written > 0).sum())
    return float(written.sum()) / length if length else 0.0


def _orientation_entropy(gray: np.ndarray, written: np.ndarray) -> float:
    if not written.any():
        return 0.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    near = cv2.dilate(written, np.ones((3, 3), np.uint8)) > 0
    magnitude = np.hypot(gx[near], gy[near])
    angle = np.mod(np.arctan2(gy[near], gx[near]), np.pi)
    hist, _ = np.histogram(angle, bins=ORIENTATION_BINS, range=(0.0, np.pi), weights=magnitude)
    total = hist.sum()
    if total <= 0:
        return 0.0
    p = hist[hist > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(ORIENTATION_BINS))


def _crop(gray: np.ndarray, bbox: Any) -> tuple[np.ndarray, list[int]]:
    """The region `bbox` = [x0, y0, x1, y1] (page pixels, clipped to the page) or the whole page."""
    height, width = gray.shape
    if bbox is None:
        return gray, [0, 0, width, height]
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    ):
        raise PermanentError(INVALID_INPUT, f"payload.bbox must be [x0, y0, x1, y1] in pixels, got {bbox!r}")
    x0, y0 = max(0, math.floor(bbox[0])), max(0, math.floor(bbox[1]))
    x1, y1 = min(width, math.ceil(bbox[2])), min(height, math.ceil(bbox[3]))
    if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
        raise PermanentError(
            INVALID_INPUT,
            f"payload.bbox {bbox!r} leaves less than {MIN_REGION_PX}x{MIN_REGION_PX} px of the {width}x{height} page",
        )
    return gray[y0:y1, x0:x1], [x0, y0, x1, y1]


def handle(ctx: JobContext) -> dict[str, Any]:
    page_index = int_field(ctx.payload, "page", 0, 0, ctx.settings.vision.pdf_max_pages - 1)
    selection = {"pages": [page_index], **{k: v for k, v in ctx.payload.items() if k == "dpi"}}
    (page,) = load_pages(ctx.read_input(), selection, ctx.settings.vision)
    region, box = _crop(page.gray, ctx.payload.get("bbox"))
    width, height = page.size
    return {
        "page_index": page.index,
        "page_size": [width, height],
        "dpi": page.dpi,
        "region": box,
        **measure(region).to_dict(),
    }
