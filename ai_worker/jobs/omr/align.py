"""Finding the four corner fiducials of a sheet and warping it onto the template's frame.

Guarantees: `align` either returns a canvas on which every template point (u, v) sits at `canvas_point(u, v)`, or
raises PermanentError("alignment_failed") saying what was missing. It never guesses a corner: four square,
solid, similarly sized marks on clear paper, forming a page of the template's aspect, exactly one of them hollow
(the top-left orientation mark), are required; among several such candidates the largest page wins. Any
in-plane rotation (small skew, upside down, sideways) and camera perspective are handled by one homography through
the four fiducial centres.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NoReturn

import cv2
import numpy as np

from ai_worker.errors import PermanentError
from ai_worker.jobs.omr.template import FIDUCIAL_HOLE, Template

ALIGNMENT_FAILED = "alignment_failed"
DETECT_LONG_SIDE = 1200  # fiducials are found on a copy this size: an A4 fiducial is then ~30 px wide
CANVAS_FRAME_PX = 930  # frame width on the canvas: 5 px/mm on the standard sheet, bubbles ~23 px wide
DARK_RATIO = 0.75  # a pixel is ink when darker than 75 % of its neighbourhood mean (works under shadows)
NEIGHBOURHOOD = 1 / 12  # neighbourhood side as a fraction of the image's long side: several fiducials wide
FIDUCIAL_SIDE_RANGE = (0.006, 0.09)  # fiducial side / image long side: page filling 25 %..100 % of the photo
MAX_CANDIDATES = 10  # largest candidates tried as corners: C(10, 4) = 210 page hypotheses at most
QUIET_ZONE, QUIET_GAP = 0.4, 0.12  # clear paper band around a fiducial, and the blur gap before it, in sides
MAX_QUIET_INK = 0.15  # a fiducial stands on paper: a blob inside a dark region (table, shadow edge) is not one
MAX_TONE = 0.3  # a fiducial is printed black: its median at most 30 % of the brightest paper around it
MIN_SOLIDITY = 0.72  # ink fraction inside a fiducial's outline (the hollow one is 1 - 0.4**2 = 0.84)
SQUARENESS = (0.82, 1.2)  # contour area / area of its 4-corner approximation; a disc gives ~1.5
MAX_ELONGATION = 2.2  # longest/shortest side of a fiducial seen at up to ~20 degrees of perspective and blur
MAX_SIZE_SPREAD = 5.0  # largest/smallest fiducial area among the four (near vs far corner in a tilted photo)
ASPECT_TOLERANCE = 1.45  # frame aspect seen vs template aspect, as a factor (perspective foreshortening)
FIDUCIAL_TO_FRAME = (0.5, 2.0)  # seen fiducial size / frame width vs the template's, as factors
HOLLOW_MAX, SOLID_MIN = 0.35, 0.65  # ink fraction at a fiducial's centre: hollow mark vs solid marks
SIZE_MISFIT = 2.0  # each mark's area within this factor of what the page's own perspective predicts at its corner
FLAT_TOLERANCE = 0.02  # opposite frame sides equal within 2 %: the page was seen flat (a scan)


@dataclass(frozen=True)
class Alignment:
    canvas: np.ndarray  # grayscale uint8, the frame warped upright
    frame_px: float  # canvas pixels per frame width
    margin_px: float  # canvas offset of the frame's top-left corner
    aspect: float
    orientation_deg: int  # how far the page was turned in the input, clockwise: 0, 90, 180 or 270
    mode: str  # "scan" (seen flat) or "photo" (seen under perspective)

    def canvas_point(self, u: float, v: float) -> tuple[float, float]:
        return self.margin_px + u * self.frame_px, self.margin_px + v * self.frame_px * self.aspect


def align(gray: np.ndarray, template: Template) -> Alignment:
    """Warp the page in `gray` onto the template frame, or raise alignment_failed."""
    shrink = min(1.0, DETECT_LONG_SIDE / max(gray.shape))
    # Both working images are at most half size on large pages: halve the page once and shrink both from that.
    half = cv2.pyrDown(gray) if shrink <= 0.5 else None
    small = _shrink(gray, shrink, half)
    ink = _ink_mask(small)
    marks = _fiducial_candidates(small, ink)
    if len(marks) < 4:
        _fail(f"found {len(marks)} of the 4 corner fiducials")
    ordered, turns = _choose_corners(marks, template)
    centres = np.array([m.centre for m in ordered], dtype=np.float64)

    frame_src = float(np.linalg.norm(centres[1] - centres[0]) + np.linalg.norm(centres[2] - centres[3])) / 2
    zoom = min(1.0, CANVAS_FRAME_PX / (frame_src / shrink))
    source = _shrink(gray, zoom, half)
    # Per-axis ratio of the actual image sizes: rounding in the pyramid makes them differ from zoom / shrink.
    src_pts = (centres * [source.shape[1] / small.shape[1], source.shape[0] / small.shape[0]]).astype(np.float32)
    margin = CANVAS_FRAME_PX * template.fiducial_size * 1.5
    height = CANVAS_FRAME_PX * template.aspect
    right, bottom = margin + CANVAS_FRAME_PX, margin + height
    dst_pts = np.array([[margin, margin], [right, margin], [right, bottom], [margin, bottom]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(src_pts, dst_pts)
    size = (round(CANVAS_FRAME_PX + 2 * margin), round(height + 2 * margin))
    canvas = cv2.warpPerspective(source, homography, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Alignment(
        canvas=canvas,
        frame_px=CANVAS_FRAME_PX,
        margin_px=margin,
        aspect=template.aspect,
        orientation_deg=turns * 90,
        mode="scan" if _is_flat(centres) else "photo",
    )


def _fail(message: str) -> NoReturn:
    raise PermanentError(ALIGNMENT_FAILED, f"cannot align the sheet: {message}")


def _shrink(image: np.ndarray, factor: float, half: np.ndarray | None = None) -> np.ndarray:
    """Downscale by `factor` (<= 1): Gaussian pyramid halvings, then one bilinear step; both keep aliasing out
    at a fraction of INTER_AREA's cost for non-integer factors. `half`, if given, is `cv2.pyrDown(image)`."""
    target = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    if half is not None and image.shape[1] >= 2 * target[0]:
        image = half
    while image.shape[1] >= 2 * target[0]:
        image = cv2.pyrDown(image)
    return image if image.shape[1] == target[0] else cv2.resize(image, target, interpolation=cv2.INTER_LINEAR)


def _ink_mask(small: np.ndarray) -> np.ndarray:
    """1 where darker than DARK_RATIO of the neighbourhood mean; thin strokes (text, bubble rings) opened away."""
    k = max(15, round(max(small.shape) * NEIGHBOURHOOD)) | 1
    local = cv2.blur(small, (k, k), borderType=cv2.BORDER_REPLICATE)
    ink = (small < cv2.convertScaleAbs(local, alpha=DARK_RATIO)).astype(np.uint8)
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


@dataclass(frozen=True)
class _Mark:
    """A fiducial candidate on the detection image."""

    centre: tuple[float, float]
    area: float
    centre_ink: float  # ink fraction at its centre: ~1 solid, ~0 for the hollow orientation mark


def _fiducial_candidates(small: np.ndarray, ink: np.ndarray) -> list[_Mark]:
    """Square, solid, black ink blobs of fiducial size standing on clear paper (`ink` is `small`'s ink mask)."""
    long_side = max(ink.shape)
    min_area = (FIDUCIAL_SIDE_RANGE[0] * long_side) ** 2
    max_area = (FIDUCIAL_SIDE_RANGE[1] * long_side) ** 2
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[_Mark] = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if not min_area <= area <= max_area:
            continue
        quad = cv2.approxPolyDP(contour, 0.04 * cv2.arcLength(contour, True), True)
        if len(quad) != 4 or not cv2.isContourConvex(quad):
            continue
        if not SQUARENESS[0] <= area / max(cv2.contourArea(quad), 1.0) <= SQUARENESS[1]:
            continue
        sides = np.linalg.norm(quad[:, 0] - np.roll(quad[:, 0], 1, axis=0), axis=1)
        if sides.max() > MAX_ELONGATION * max(sides.min(), 1.0):
            continue
        solidity, quiet, tone = _surroundings(small, ink, contour, float(np.sqrt(area)))
        if solidity < MIN_SOLIDITY or quiet > MAX_QUIET_INK or tone > MAX_TONE:
            continue
        m = cv2.moments(contour)
        centre = (m["m10"] / m["m00"], m["m01"] / m["m00"])
        found.append(_Mark(centre, area, _centre_ink(ink, centre, area)))
    return found


def _surroundings(small: np.ndarray, ink: np.ndarray, contour: np.ndarray, side: float) -> tuple[float, float, float]:
    """Ink fraction inside the contour and in its quiet zone (a band QUIET_ZONE sides wide around it), and the
    tone inside: its median brightness over the brightest paper of the band (90th percentile).

    The ink mask is relative to a wide neighbourhood mean, so at the page's edge a patch of a grey table next to
    bright paper reads as ink, and its noisy outline can by chance pass as a small square; a printed fiducial is
    black (tone <= ~0.1 on every capture), such a patch only shaded (tone >= ~0.5)."""
    pad = round(side * (QUIET_ZONE + QUIET_GAP)) + 1
    x, y, w, h = cv2.boundingRect(contour)
    x0, y0 = max(0, x - pad), max(0, y - pad)
    crop = ink[y0 : y + h + pad, x0 : x + w + pad]
    mask = np.zeros(crop.shape, np.uint8)
    cv2.drawContours(mask, [contour - np.array([x0, y0])], -1, 1, thickness=cv2.FILLED)
    # The band starts a little outside the outline: blur makes the mark's own edge bleed.
    gap = cv2.dilate(mask, np.ones((2 * round(side * QUIET_GAP) + 1,) * 2, np.uint8)) > 0
    band = (cv2.dilate(mask, np.ones((2 * pad - 1,) * 2, np.uint8)) > 0) & ~gap
    inked = crop > 0
    inside = mask > 0
    if not band.any():
        return float(inked[inside].mean()), 0.0, 0.0
    gray = small[y0 : y + h + pad, x0 : x + w + pad]
    paper = max(float(np.percentile(gray[band], 90)), 1.0)
    tone = float(np.median(gray[inside])) / paper
    return float(inked[inside].mean()), float(inked[band].mean()), tone


def _centre_ink(ink: np.ndarray, centre: tuple[float, float], area: float) -> float:
    half = max(1, round(np.sqrt(area) * FIDUCIAL_HOLE * 0.3))  # well inside the hole, which is 0.2 side each way
    x, y = round(centre[0]), round(centre[1])
    patch = ink[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
    return float(patch.mean()) if patch.size else 0.0


def _choose_corners(marks: list[_Mark], template: Template) -> tuple[list[_Mark], int]:
    """The four candidates that make the largest valid page, clockwise from the top-left (hollow) mark, and how
    many quarter turns clockwise the page was rotated. Raises the largest candidate page's defect if none is valid."""
    pool = sorted(marks, key=lambda m: m.area, reverse=True)[:MAX_CANDIDATES]
    combos = [_clockwise(list(c)) for c in itertools.combinations(pool, 4)]
    combos.sort(key=lambda c: -cv2.contourArea(np.array([m.centre for m in c], np.float32)))
    first_error: PermanentError | None = None
    for combo in combos:
        try:
            return _validate(combo, template)
        except PermanentError as exc:
            first_error = first_error or exc
    assert first_error is not None  # at least four marks make at least one combination
    raise first_error


def _clockwise(marks: list[_Mark]) -> list[_Mark]:
    xy = np.array([m.centre for m in marks])
    centre = xy.mean(axis=0)
    # Image y points down, so increasing atan2 angle runs clockwise on screen.
    return [marks[i] for i in np.argsort(np.arctan2(xy[:, 1] - centre[1], xy[:, 0] - centre[0]))]


def _validate(clockwise: list[_Mark], template: Template) -> tuple[list[_Mark], int]:
    hollow = [i for i, m in enumerate(clockwise) if m.centre_ink <= HOLLOW_MAX]
    if len(hollow) != 1 or sorted(m.centre_ink for m in clockwise)[1] < SOLID_MIN:
        _fail("the top-left orientation mark (hollow fiducial) was not found exactly once")
    ordered = clockwise[hollow[0] :] + clockwise[: hollow[0]]
    centres = np.array([m.centre for m in ordered], dtype=np.float32)
    sides = [float(np.sqrt(m.area)) for m in ordered]
    if max(sides) ** 2 > MAX_SIZE_SPREAD * min(sides) ** 2:
        _fail("the four corner marks differ too much in size")
    if not cv2.isContourConvex(centres):
        _fail("the corner marks do not form a convex page outline")
    top, right, bottom, left = _frame_sides(centres)
    seen_aspect = (left + right) / (top + bottom)
    if not 1 / ASPECT_TOLERANCE <= seen_aspect / template.aspect <= ASPECT_TOLERANCE:
        _fail(f"the corner marks outline a page of aspect {seen_aspect:.2f}, the template's is {template.aspect:.2f}")
    relative = float(np.mean(sides)) / ((top + bottom) / 2)
    if not FIDUCIAL_TO_FRAME[0] <= relative / template.fiducial_size <= FIDUCIAL_TO_FRAME[1]:
        _fail("the corner marks are not the size the template gives its fiducials")
    misfit = _size_misfit(ordered, template)
    if misfit.min() < 1 / SIZE_MISFIT or misfit.max() > SIZE_MISFIT:
        _fail("a corner mark is not the size the page's perspective gives a fiducial at its corner")
    # Which screen quadrant the top-left mark is in tells the rotation: top-left 0, top-right 90, ...
    mid = centres.mean(axis=0)
    hx, hy = ordered[0].centre
    quadrant = {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}
    return ordered, quadrant[(bool(hx > mid[0]), bool(hy > mid[1]))]


def _size_misfit(ordered: list[_Mark], template: Template) -> np.ndarray:
    """Each mark's area over the area a template fiducial takes at its corner under the homography that the four
    centres define: the global fit of sizes to the page's perspective.

    A near and a far corner of a tilted photo legitimately differ in size (MAX_SIZE_SPREAD allows that), but only
    as the perspective says: ~0.9-1.05 on every capture of the tuning set. A stray blob taken for a corner makes
    an outline whose perspective gives that corner a fiducial of a quite different size (0.25 on the photo where a
    table fragment was taken for the top-right mark)."""
    frame = np.array([[0, 0], [1, 0], [1, template.aspect], [0, template.aspect]], np.float64)
    seen = np.array([m.centre for m in ordered], np.float64)
    h = cv2.getPerspectiveTransform(frame.astype(np.float32), seen.astype(np.float32))
    # Jacobian determinant of (x, y) = (h0 . p, h1 . p) / (h2 . p) at each corner: the local area scale.
    p = np.c_[frame, np.ones(4)] @ h.T
    w = p[:, 2]
    jac = (h[None, :2, :2] * w[:, None, None] - p[:, :2, None] * h[None, 2:3, :2]) / (w**2)[:, None, None]
    predicted = np.abs(np.linalg.det(jac)) * template.fiducial_size**2
    areas = np.array([m.area for m in ordered])
    result: np.ndarray = areas / np.maximum(predicted, 1e-9)
    return result


def _frame_sides(centres: np.ndarray) -> tuple[float, float, float, float]:
    """Lengths of top, right, bottom and left, for centres ordered clockwise from the top-left."""
    top, right, bottom, left = (float(np.linalg.norm(centres[(i + 1) % 4] - centres[i])) for i in range(4))
    return top, right, bottom, left


def _is_flat(centres: np.ndarray) -> bool:
    top, right, bottom, left = _frame_sides(centres)
    return abs(top / bottom - 1) <= FLAT_TOLERANCE and abs(left / right - 1) <= FLAT_TOLERANCE
