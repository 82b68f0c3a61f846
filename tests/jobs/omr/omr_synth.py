"""Seeded generator of filled answer sheets with known ground truth, under scan and phone-photo conditions.

Each sheet is the standard sheet rendered by ai_worker.jobs.omr.sheet, filled by a simulated student (pen or light
pencil, sloppy marks, marks cut by a chord or bitten on one side (a crescent) to 50-90 % of the bubble, blanks,
multiples, partial erasures and stray dots that must read as blank), then captured under one of
CONDITIONS: clean scan; scan skewed up to 5 degrees with noise; upside-down scan (JPEG 75); phone photo (camera
tilt up to 20 degrees, slight lens distortion, gradient light and a soft shadow, blur, noise, JPEG 40); degraded
scan (skew, blur, strong noise, uneven light, JPEG 40). The same seed always gives the same sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import Placement, render_sheet
from ai_worker.jobs.omr.template import Template

CONDITIONS = ("clean", "rotated", "upside_down", "photo", "degraded")
QUESTION_COUNTS = (25, 50, 100)
P_BLANK, P_MULTIPLE, P_ERASURE, P_DOT = 0.1, 0.06, 0.15, 0.05
P_PARTIAL = 0.2  # a mark covering only PARTIAL_COVER of the bubble: still a mark (about half or more is one)
PARTIAL_COVER = (0.5, 0.9)
PEN_DARKNESS = (0.78, 0.95)
PENCIL_DARKNESS = (0.35, 0.6)  # light pencil: a third to two thirds of full black
ERASURE_RESIDUE = (0.04, 0.16)  # what a rubbed-out pencil mark leaves behind
MAX_TILT_DEG = 20.0  # camera perspective
MAX_SKEW_DEG = 5.0  # scanner rotation
MAX_LENS_K1 = 0.025  # radial (barrel) distortion left in a phone photo: ~3 % at the corners
SUBPIXEL_BITS = 4  # cv2 drawing precision: coordinates in 1/16 pixel


@dataclass(frozen=True)
class Truth:
    answers: tuple[tuple[int, ...], ...]  # per question, the marked choice indices (empty: blank)
    identifier: str
    condition: str
    instrument: str  # "pen" or "pencil"
    erasures: int  # rubbed-out marks left on bubbles that must read as blank
    partials: int = 0  # marks covering only part of their bubble


@dataclass(frozen=True)
class Sheet:
    data: bytes  # PNG or JPEG as a producer would upload it
    truth: Truth
    questions: int
    choices: int


@lru_cache(maxsize=8)
def _blank(questions: int, choices: int, dpi: int) -> tuple[np.ndarray, Template]:
    template = standard_template(questions, choices)
    page = np.asarray(render_sheet(template, dpi=dpi), dtype=np.float32) / 255.0
    return page, template


def make_sheet(rng: np.random.Generator, condition: str, *, dpi: int = 150) -> Sheet:
    questions = int(rng.choice(QUESTION_COUNTS))
    choices = int(rng.choice((4, 5)))
    blank, template = _blank(questions, choices, dpi)
    page = blank.copy()
    place = Placement(template, dpi)
    radius = place.length(template.bubble_radius)
    instrument = "pencil" if rng.random() < 0.5 else "pen"
    level = rng.uniform(*(PENCIL_DARKNESS if instrument == "pencil" else PEN_DARKNESS))

    answers: list[tuple[int, ...]] = []
    erasures = partials = 0
    for question in template.questions:
        roll = rng.random()
        if roll < P_BLANK:
            chosen: tuple[int, ...] = ()
        elif roll < P_BLANK + P_MULTIPLE:
            chosen = tuple(sorted(rng.choice(choices, size=int(rng.integers(2, 4)), replace=False).tolist()))
        else:
            chosen = (int(rng.integers(choices)),)
        answers.append(chosen)
        for i in chosen:
            partial = rng.random() < P_PARTIAL
            partials += partial
            _mark(page, place.point(*question.bubbles[i]), radius, level, instrument, rng, partial=partial)
        unmarked = [i for i in range(choices) if i not in chosen]
        if instrument == "pencil" and unmarked and rng.random() < P_ERASURE:
            _erasure(page, place.point(*question.bubbles[int(rng.choice(unmarked))]), radius, rng)
            erasures += 1
        elif unmarked and rng.random() < P_DOT:
            _dot(page, place.point(*question.bubbles[int(rng.choice(unmarked))]), radius, level, rng)
    identifier = "".join(str(d) for d in rng.integers(0, 10, size=len(template.identifier)))
    for column, digit in zip(template.identifier, identifier, strict=True):
        _mark(page, place.point(*column[int(digit)]), radius, level, instrument, rng)

    image, encoding = _capture(page, condition, rng)
    encoded = _encode(image, encoding)
    truth = Truth(tuple(answers), identifier, condition, instrument, erasures, partials)
    return Sheet(data=encoded, truth=truth, questions=questions, choices=choices)


def generate(seed: int, count: int, *, dpi: int = 150) -> list[Sheet]:
    """`count` sheets cycling through CONDITIONS."""
    rng = np.random.default_rng(seed)
    return [make_sheet(rng, CONDITIONS[i % len(CONDITIONS)], dpi=dpi) for i in range(count)]


def _patch(page: np.ndarray, centre: tuple[float, float], reach: int) -> tuple[slice, slice, float, float]:
    x, y = centre
    x0, y0 = int(x) - reach, int(y) - reach
    return slice(y0, y0 + 2 * reach + 1), slice(x0, x0 + 2 * reach + 1), x - x0, y - y0


def _ellipse_mask(size: int, cx: float, cy: float, axes: tuple[float, float], angle: float) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(
        mask,
        (round(cx * 2**SUBPIXEL_BITS), round(cy * 2**SUBPIXEL_BITS)),
        (round(axes[0] * 2**SUBPIXEL_BITS), round(axes[1] * 2**SUBPIXEL_BITS)),
        angle,
        0,
        360,
        1.0,
        thickness=-1,
        lineType=cv2.LINE_AA,
        shift=SUBPIXEL_BITS,
    )
    return mask


def _mark(
    page: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    level: float,
    instrument: str,
    rng: np.random.Generator,
    *,
    partial: bool = False,
) -> None:
    reach = int(radius * 1.4)
    ys, xs, cx, cy = _patch(page, centre, reach)
    sloppy = rng.random() < 0.12
    axes = radius * (rng.uniform(0.74, 0.84, 2) if sloppy else rng.uniform(0.85, 1.0, 2))
    if partial:  # a full disc cut by a chord: the cut sets the covered share
        axes = radius * rng.uniform(0.97, 1.05, 2)
    jitter = rng.normal(0, 0.05 * radius, 2)
    mask = _ellipse_mask(2 * reach + 1, cx + jitter[0], cy + jitter[1], (axes[0], axes[1]), rng.uniform(0, 180))
    if partial and rng.random() < 0.5:
        mask *= _chord_cut(mask.shape[0], cx, cy, radius, rng.uniform(*PARTIAL_COVER), rng.uniform(0, 2 * np.pi))
    elif partial:
        mask *= _bite(mask.shape[0], cx, cy, radius, rng.uniform(*PARTIAL_COVER), rng)
    darkness = level * rng.uniform(0.9, 1.08)
    if instrument == "pencil":
        # Graphite leaves a grainy stroke texture.
        grain = cv2.GaussianBlur(rng.normal(1.0, 0.25, mask.shape).astype(np.float32), (0, 0), 0.8)
        mask *= np.clip(grain, 0.4, 1.4)
    page[ys, xs] *= 1.0 - np.clip(darkness * mask, 0.0, 0.97)


def _chord_cut(size: int, cx: float, cy: float, radius: float, cover: float, angle: float) -> np.ndarray:
    """1 on the side of a chord that leaves `cover` of the bubble's disc, soft over one pixel."""
    # Area of a disc segment of depth h (in radii) over the disc's: solve for the depth giving `cover`.
    depths = np.linspace(0.0, 2.0, 401)
    theta = 2 * np.arccos(np.clip(1 - depths, -1, 1))
    share = (theta - np.sin(theta)) / (2 * np.pi)
    depth = float(np.interp(cover, share, depths))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    return np.clip((depth - 1) * radius - along + 0.5, 0.0, 1.0).astype(np.float32)


def _bite(size: int, cx: float, cy: float, radius: float, cover: float, rng: np.random.Generator) -> np.ndarray:
    """0 inside a disc bitten out of one side of the bubble, sized so that `cover` of the bubble stays: a crescent
    of ink along the ring."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, shift = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.7) * radius
    bx, by = cx + shift * np.cos(angle), cy + shift * np.sin(angle)
    bubble = np.hypot(xx - cx, yy - cy) <= radius
    gap = np.hypot(xx - bx, yy - by)
    bite = float(np.quantile(gap[bubble], 1.0 - cover))  # the bite radius leaving `cover` of the bubble
    return np.clip(gap - bite + 0.5, 0.0, 1.0).astype(np.float32)


def _dot(page: np.ndarray, centre: tuple[float, float], radius: float, level: float, rng: np.random.Generator) -> None:
    """A stray pencil or pen dot, a tenth of the bubble or less, somewhere on it."""
    reach = int(radius * 1.4)
    ys, xs, cx, cy = _patch(page, centre, reach)
    where = rng.normal(0, 0.4 * radius, 2)
    size = radius * rng.uniform(0.12, 0.3)
    mask = _ellipse_mask(2 * reach + 1, cx + where[0], cy + where[1], (size, size * rng.uniform(0.6, 1.0)), 0.0)
    page[ys, xs] *= 1.0 - np.clip(level * mask, 0.0, 0.97)


def _erasure(page: np.ndarray, centre: tuple[float, float], radius: float, rng: np.random.Generator) -> None:
    reach = int(radius * 1.8)
    ys, xs, cx, cy = _patch(page, centre, reach)
    axes = radius * rng.uniform(0.8, 1.3, 2)  # rubbing spreads the residue past the bubble
    mask = _ellipse_mask(2 * reach + 1, cx, cy, (axes[0], axes[1]), rng.uniform(0, 180))
    patches = cv2.GaussianBlur(rng.random(mask.shape).astype(np.float32), (0, 0), radius * 0.3)
    patches = (patches - patches.min()) / max(float(np.ptp(patches)), 1e-6)
    page[ys, xs] *= 1.0 - rng.uniform(*ERASURE_RESIDUE) * mask * (0.4 + patches)


def _capture(page: np.ndarray, condition: str, rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, list[int]]]:
    png = (".png", [cv2.IMWRITE_PNG_COMPRESSION, 0])
    jpeg40 = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 40])
    if condition == "clean":
        return _to_u8(page), png
    if condition == "rotated":
        img = _rotate(page, rng.uniform(-MAX_SKEW_DEG, MAX_SKEW_DEG), rng.uniform(0.92, 1.05))
        return _to_u8(_noise(_blur(img, 0.6), 4.0, rng)), png
    if condition == "upside_down":
        img = _rotate(page, 180.0 + rng.uniform(-2.0, 2.0), 1.0)
        return _to_u8(_noise(img, 4.0, rng)), (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 75])
    if condition == "photo":
        img = lens_distortion(_photograph(page, rng), rng.uniform(0.0, MAX_LENS_K1))
        img = _lighting(img, rng)
        return _to_u8(_noise(_blur(img, rng.uniform(0.5, 1.2)), rng.uniform(3.0, 7.0), rng)), jpeg40
    if condition == "degraded":
        img = _rotate(page, rng.uniform(-MAX_SKEW_DEG, MAX_SKEW_DEG), 1.0)
        img = _lighting(_blur(img, rng.uniform(1.0, 1.6)), rng)
        return _to_u8(_noise(img, rng.uniform(6.0, 12.0), rng)), jpeg40
    raise ValueError(f"unknown condition {condition!r}")


def _encode(image: np.ndarray, encoding: tuple[str, list[int]]) -> bytes:
    # PNG is lossless whatever its compression level: the set's PNGs are stored uncompressed (level 0), a tenth of
    # the cost of deflating a noisy page, and decode to the very same pixels.
    ok, buf = cv2.imencode(encoding[0], image, encoding[1])
    assert ok, f"cv2 could not encode {encoding[0]}"
    return buf.tobytes()


def _to_u8(img: np.ndarray) -> np.ndarray:
    """To 8 bits, rounded to the nearest level and saturated (OpenCV's conversion: a third of numpy's cost)."""
    return cv2.convertScaleAbs(cv2.max(img, 0.0), alpha=255.0)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _noise(img: np.ndarray, sigma_levels: float, rng: np.random.Generator) -> np.ndarray:
    # float32 draws: a quarter of the cost of float64 ones at page size
    return img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma_levels / 255.0)


def _rotate(page: np.ndarray, degrees: float, scale: float) -> np.ndarray:
    """A skewed scan: the whole page turned on a larger white scanner bed."""
    h, w = page.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(w * cos + h * sin) + 2, int(w * sin + h * cos) + 2
    matrix[:, 2] += (out_w - w) / 2, (out_h - h) / 2
    return cv2.warpAffine(page, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=1.0)


def _photograph(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The page on a table, seen by a camera tilted up to MAX_TILT_DEG from straight above."""
    h, w = page.shape
    tilt = np.radians(rng.uniform(0.0, MAX_TILT_DEG))
    axis_angle = rng.uniform(0, 2 * np.pi)
    rotation, _ = cv2.Rodrigues(np.array([np.cos(axis_angle), np.sin(axis_angle), 0.0]) * tilt)
    spin = np.radians(rng.uniform(-8.0, 8.0))
    rotation = rotation @ np.array([[np.cos(spin), -np.sin(spin), 0], [np.sin(spin), np.cos(spin), 0], [0, 0, 1]])
    focal = 1.2 * max(w, h)
    corners = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]])
    seen = corners @ rotation.T
    projected = focal * seen[:, :2] / (seen[:, 2:] + focal)
    out_w, out_h = int(w * 1.12), int(h * 1.12)
    span = projected.max(axis=0) - projected.min(axis=0)
    fit = rng.uniform(0.8, 0.95) * min(out_w / span[0], out_h / span[1])
    placed = (projected - projected.min(axis=0)) * fit
    placed += (np.array([out_w, out_h]) - span * fit) * rng.uniform(0.2, 0.8, 2)
    homography = cv2.getPerspectiveTransform(
        np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32), placed.astype(np.float32)
    )
    table = rng.uniform(0.25, 0.55) + cv2.resize(
        rng.normal(0, 0.04, (12, 9)).astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_CUBIC
    )
    return cv2.warpPerspective(
        page, homography, (out_w, out_h), dst=table.astype(np.float32), borderMode=cv2.BORDER_TRANSPARENT
    )


def lens_distortion(img: np.ndarray, k1: float) -> np.ndarray:
    """Barrel distortion: a point at radius r (in half long sides from the centre) moves out by k1 * r**2."""
    h, w = img.shape
    cx, cy = w / 2, h / 2
    dx = np.arange(w, dtype=np.float32)[None, :] - np.float32(cx)  # a row and a column, broadcast: the
    dy = np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)  # full-size arrays are only the maps
    scale = 1 + np.float32(k1 / (max(w, h) / 2) ** 2) * (dx * dx + dy * dy)
    return cv2.remap(img, cx + dx * scale, cy + dy * scale, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A light gradient across the page and a soft shadow over part of it."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h:8, 0:w:8].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (xx * np.cos(direction) + yy * np.sin(direction)) / np.hypot(w, h)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = 1.0 - rng.uniform(0.15, 0.4) * ramp
    edge = rng.uniform(0.2, 0.8) * np.hypot(w, h)
    side = xx * np.cos(direction + 1.2) + yy * np.sin(direction + 1.2)
    shadow = 1.0 / (1.0 + np.exp(-(side - edge + np.hypot(w, h) / 2) / (0.02 * np.hypot(w, h))))
    light *= 1.0 - rng.uniform(0.2, 0.4) * shadow
    return img * cv2.resize(light.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
