"""Held-out answer-sheet captures for omr_grading, built by code independent of the tuning generator.

Only the printed form comes from the product (`render_sheet` of the standard sheet, blank): it is what students
are handed. Everything else is written here from scratch and shares nothing with tests/jobs/omr/omr_synth.py:

- Marks are rasterised analytically with 4x4 supersampling, in colour (black and blue ballpoint, graphite), as
  shapes defined in bubble-relative coordinates: full fills with a wobbly outline, half-moons (a chord), crescents
  (a disc bitten by another), centred and off-centre blobs, and zig-zag scribbles. The covered share of the
  bubble's disc is *measured* on the supersampled mask and is the ground truth of a partial fill.
- Instruments: pen (darkness 0.75-0.95), pencil (0.45-0.7) and light pencil (0.28-0.42), the graphite ones with
  a paper-tooth grain; erasures are pencil marks rubbed down to 6-25 % of their darkness and smeared past the
  bubble, sometimes with a few specks left; stray dots are small (under a tenth of the bubble) anywhere on it.
- Captures: `clean` (flat 300 dpi colour PNG), `scanned` (skew of a few degrees, sometimes upside down, scanner
  blur, shading, noise, PNG or JPEG), `photo` (a phone camera: random four-corner perspective onto a 12 MP frame
  over a desk, vignetting, a cast shadow, colour cast, defocus, sensor noise, JPEG 55-85). Encoded with PIL.

Per row the truth is the set of bubbles that carry a mark, where a mark is a full fill or a partial fill of
`PARTIAL_COVER` (40-90 %) of the bubble; an erasure or a stray dot is never a mark. Every row has a `kind` for
per-case figures: blank, full, partial, double (two marks, one of them partial), erasure, dot.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import Placement, render_sheet
from ai_worker.jobs.omr.template import Template

CAPTURES = ("clean", "scanned", "photo")
KINDS = ("blank", "full", "partial", "double", "erasure", "dot")
SHAPES = ("half_moon", "crescent", "centre_blob", "off_centre", "scribble")
INSTRUMENTS = ("pen", "pencil", "light_pencil")
DARKNESS = {"pen": (0.75, 0.95), "pencil": (0.45, 0.7), "light_pencil": (0.28, 0.42)}
# Absorption per RGB channel, scaled so that the luminance-weighted absorption is 1: darkness is grey-level darkness.
INKS = {"black": (0.95, 0.95, 0.9), "blue": (0.85, 0.75, 0.2), "graphite": (0.9, 0.9, 0.86)}
PARTIAL_COVER = (0.4, 0.9)
ROW_KINDS = {"blank": 0.12, "full": 0.46, "partial": 0.22, "double": 0.06, "erasure": 0.08, "dot": 0.06}
QUESTION_CHOICES = ((25, 5), (40, 4), (50, 5), (60, 5), (100, 4), (100, 5))
SUPER = 4  # supersampling per axis when rasterising a mark
WOBBLE_STEPS = 720  # angular resolution of a hand-drawn outline
NOISE_TILE = 509  # sensor noise is drawn on a tile this size (prime: no alignment with the bubble grid)
DPI = 300
PNG_LEVEL = 1  # zlib level of the PNG captures: fast to write; decoding costs about the same at any level


@dataclass(frozen=True)
class Row:
    marks: tuple[int, ...]  # indices of the bubbles that carry a mark
    kind: str
    covers: tuple[float, ...]  # measured covered share of each partial mark in the row
    shapes: tuple[str, ...] = ()  # shape of each partial mark in the row


@dataclass(frozen=True)
class Capture:
    data: bytes
    fmt: str  # "PNG" or "JPEG"
    capture: str
    instrument: str
    questions: int
    choices: int
    rows: tuple[Row, ...]
    identifier: str
    id_partials: int  # identifier digits marked with a partial fill


@lru_cache(maxsize=4)
def _form(questions: int, choices: int, dpi: int) -> tuple[np.ndarray, Template]:
    """The printed form as ink absorption (0 paper .. 1 black)."""
    template = standard_template(questions, choices)
    gray = np.asarray(render_sheet(template, dpi=dpi), dtype=np.float32) / 255.0
    return 1.0 - gray, template


class _Page:
    """An RGB transmittance image: paper colour times what each layer lets through."""

    def __init__(self, absorption: np.ndarray, rng: np.random.Generator) -> None:
        h, w = absorption.shape
        self.rng = rng
        self.paper = np.array(
            [rng.uniform(0.93, 0.99), rng.uniform(0.92, 0.98), rng.uniform(0.86, 0.96)], dtype=np.float32
        )
        toner = rng.uniform(0.85, 0.97)
        self.light = np.repeat((1.0 - np.float32(toner) * absorption)[:, :, None], 3, axis=2)
        # Paper tooth: graphite catches on the fibres' peaks; a fixed field per sheet.
        tooth = rng.random((h // 2 + 1, w // 2 + 1)).astype(np.float32)
        self.tooth = np.asarray(Image.fromarray(tooth).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)

    def lay(self, x0: int, y0: int, coverage: np.ndarray, darkness: np.ndarray | float, ink: str) -> None:
        """Multiply the patch at (x0, y0) by 1 - coverage * darkness * the ink's channel absorption."""
        h, w = coverage.shape
        patch = self.light[y0 : y0 + h, x0 : x0 + w]
        amount = coverage * darkness
        patch *= (1.0 - np.clip(amount[:, :, None] * np.array(INKS[ink]), 0.0, 0.98)).astype(np.float32)

    def rgb(self) -> np.ndarray:
        result: np.ndarray = self.light * self.paper
        return result


def _grid(radius: float, reach: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Supersampled coordinates, in bubble radii, of a square patch around a bubble centre in pixels."""
    half = int(np.ceil(reach * radius)) + 1
    x0, y0 = int(cx) - half, int(cy) - half
    size = 2 * half + 1
    steps = (np.arange(size * SUPER) + 0.5) / SUPER
    u = (x0 + steps[None, :] - cx) / radius
    v = (y0 + steps[:, None] - cy) / radius
    return np.broadcast_to(u, (size * SUPER,) * 2), np.broadcast_to(v, (size * SUPER,) * 2), x0, y0, size


def _pool(mask: np.ndarray) -> np.ndarray:
    n = mask.shape[0] // SUPER
    pooled: np.ndarray = mask.reshape(n, SUPER, n, SUPER).mean(axis=(1, 3))
    return pooled


def _wobble(rng: np.random.Generator, amount: float) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random radius factor around 1 as a function of angle (a hand-drawn outline)."""
    phases = rng.uniform(0, 2 * np.pi, 4)
    sizes = rng.normal(0, amount, 4) / np.arange(1, 5)
    angles = np.linspace(-np.pi, np.pi, WOBBLE_STEPS + 1)
    table = 1.0 + sum(s * np.cos((k + 2) * angles + p) for k, (s, p) in enumerate(zip(sizes, phases, strict=True)))

    def factor(theta: np.ndarray) -> np.ndarray:
        result: np.ndarray = table[np.rint((theta + np.pi) * (WOBBLE_STEPS / (2 * np.pi))).astype(np.int64)]
        return result

    return factor


def _quantile_in_disc(metric: np.ndarray, inside: np.ndarray, share: float) -> float:
    return float(np.quantile(metric[inside], share))


def _shape(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator, cover: float) -> np.ndarray:
    """Boolean ink mask of one mark on the supersampled grid (u, v in bubble radii)."""
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    inside = r <= 1.0
    if kind == "full":
        return r <= rng.uniform(0.9, 1.08) * _wobble(rng, 0.05)(theta)
    hull = r <= rng.uniform(0.98, 1.08) * _wobble(rng, 0.03)(theta)
    if kind == "half_moon":
        phi = rng.uniform(0, 2 * np.pi)
        along = u * np.cos(phi) + v * np.sin(phi) + 0.04 * np.sin(7 * theta)
        return hull & (along <= _quantile_in_disc(along, inside, cover))
    if kind == "crescent":
        phi, gap = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8)
        bite = np.hypot(u - gap * np.cos(phi), v - gap * np.sin(phi))
        return hull & (bite >= _quantile_in_disc(bite, inside, 1.0 - cover))
    if kind in ("centre_blob", "off_centre"):
        shift = rng.uniform(0.0, 0.12) if kind == "centre_blob" else rng.uniform(0.3, 0.6)
        phi = rng.uniform(0, 2 * np.pi)
        du, dv = u - shift * np.cos(phi), v - shift * np.sin(phi)
        metric = np.hypot(du, dv) / _wobble(rng, 0.06)(np.arctan2(dv, du))
        return metric <= _quantile_in_disc(metric, inside, cover)
    if kind == "scribble":
        return _scribble(u, v, rng, cover)
    raise ValueError(kind)


def _scribble(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, cover: float) -> np.ndarray:
    """Zig-zag strokes of a pen tip swept across part of the bubble; the swept part is sized for `cover`."""
    phi = rng.uniform(0, np.pi)
    a = u * np.cos(phi) + v * np.sin(phi)  # across the strokes
    b = -u * np.sin(phi) + v * np.cos(phi)  # along the strokes
    width = rng.uniform(0.22, 0.38)
    pitch = width * rng.uniform(0.8, 1.25)
    # Strokes zig-zag: their centre line drifts with b, so neighbouring passes touch at the turns.
    phase = (a + 0.35 * pitch * np.abs(np.sin(b * np.pi / 1.2))) / pitch
    stroke = np.abs(phase - np.round(phase)) * pitch <= width / 2
    inside = np.hypot(u, v) <= 1.0
    swept = stroke & (np.hypot(u, v) <= 1.05)
    # Keep passes up to the cut that gives the wanted share of ink in the bubble.
    order = np.sort(a[swept & inside])
    cut = order[min(len(order) - 1, int(cover * inside.sum()))] if order.size else -1.0
    return swept & (a <= cut)


def _mark(
    page: _Page, centre: tuple[float, float], radius: float, kind: str, instrument: str, ink: str, cover: float = 1.0
) -> float:
    """Draw a mark; return the share of the bubble's disc it covers."""
    rng = page.rng
    u, v, x0, y0, size = _grid(radius, 1.35, *centre)
    mask = _shape(kind, u, v, rng, cover)
    inside = np.hypot(u, v) <= 1.0
    covered = float((mask & inside).sum() / inside.sum())
    coverage = _pool(mask.astype(np.float32))
    darkness = rng.uniform(*DARKNESS[instrument])
    if instrument != "pen":
        tooth = page.tooth[y0 : y0 + size, x0 : x0 + size]
        grain = 1.0 - rng.uniform(0.25, 0.5) * np.clip(tooth - 0.3, 0, 1)
        page.lay(x0, y0, coverage, darkness * grain, ink)
    else:
        page.lay(x0, y0, coverage, darkness, ink)
    return covered


def _erasure(page: _Page, centre: tuple[float, float], radius: float) -> None:
    rng = page.rng
    u, v, x0, y0, _ = _grid(radius, 1.8, *centre)
    mask = _shape("full", u, v, rng, 1.0).astype(np.float32)
    residue = _pool(mask) * rng.uniform(*DARKNESS["pencil"]) * rng.uniform(0.06, 0.25)
    # Rubbing drags the graphite out past the bubble in the eraser's direction.
    smear = _smooth(residue, radius * rng.uniform(0.15, 0.4))
    page.lay(x0, y0, smear, 1.0, "graphite")
    for _ in range(int(rng.integers(0, 4))):  # specks the eraser missed
        spot = (centre[0] + rng.normal(0, 0.5) * radius, centre[1] + rng.normal(0, 0.5) * radius)
        _dot(page, spot, radius, "pencil", "graphite", size=(0.04, 0.1))


def _smooth(patch: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a small square patch as two matrix products (zero outside the patch)."""
    n = patch.shape[0]
    idx = np.arange(n)
    kernel = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    result: np.ndarray = (kernel @ patch @ kernel.T).astype(np.float32)
    return result


def _dot(
    page: _Page,
    centre: tuple[float, float],
    radius: float,
    instrument: str,
    ink: str,
    size: tuple[float, float] = (0.1, 0.3),
) -> None:
    rng = page.rng
    u, v, x0, y0, _ = _grid(radius, 0.5, *centre)
    dot = np.hypot(u, v * rng.uniform(0.7, 1.0)) <= rng.uniform(*size)
    page.lay(x0, y0, _pool(dot.astype(np.float32)), rng.uniform(*DARKNESS[instrument]), ink)


def _row_plan(
    rng: np.random.Generator, choices: int
) -> tuple[str, list[tuple[int, str, float]], list[tuple[int, str]]]:
    """(kind, marks as (choice, shape, cover), extras as (choice, "erasure" | "dot"))."""
    kind = str(rng.choice(list(ROW_KINDS), p=list(ROW_KINDS.values())))
    picks = [int(c) for c in rng.permutation(choices)]
    partial = lambda: (str(rng.choice(SHAPES)), float(rng.uniform(*PARTIAL_COVER)))  # noqa: E731
    if kind == "blank":
        return kind, [], []
    if kind == "full":
        return kind, [(picks[0], "full", 1.0)], []
    if kind == "partial":
        return kind, [(picks[0], *partial())], []
    if kind == "double":
        second = (picks[1], *partial())
        first = (picks[0], *partial()) if rng.random() < 0.3 else (picks[0], "full", 1.0)
        return kind, [first, second], []
    extra = "erasure" if kind == "erasure" else "dot"
    marks = [(picks[0], "full", 1.0)] if rng.random() < 0.6 else []
    return kind, marks, [(picks[1], extra)]


def make_capture(rng: np.random.Generator, capture: str, *, dpi: int = DPI) -> Capture:
    questions, choices = QUESTION_CHOICES[int(rng.integers(len(QUESTION_CHOICES)))]
    absorption, template = _form(questions, choices, dpi)
    page = _Page(absorption, rng)
    place = Placement(template, dpi)
    radius = place.length(template.bubble_radius)
    instrument = str(rng.choice(INSTRUMENTS))
    ink = str(rng.choice(["black", "blue"])) if instrument == "pen" else "graphite"
    # Erasing needs an eraser-friendly instrument: pen sheets get their erasures from a pencil draft.
    rows: list[Row] = []
    for question in template.questions:
        kind, marks, extras = _row_plan(rng, choices)
        covers, shapes = [], []
        for choice, shape, cover in marks:
            covered = _mark(page, place.point(*question.bubbles[choice]), radius, shape, instrument, ink, cover)
            if shape != "full":
                covers.append(covered)
                shapes.append(shape)
        for choice, extra in extras:
            where = place.point(*question.bubbles[choice])
            if extra == "erasure":
                _erasure(page, where, radius)
            else:
                off = rng.normal(0, 0.45, 2) * radius
                _dot(page, (where[0] + off[0], where[1] + off[1]), radius, instrument, ink)
        rows.append(Row(tuple(sorted(m[0] for m in marks)), kind, tuple(covers), tuple(shapes)))
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, len(template.identifier)))
    id_partials = 0
    for column, digit in zip(template.identifier, digits, strict=True):
        if rng.random() < 0.2:
            shape, cover = str(rng.choice(SHAPES)), float(rng.uniform(*PARTIAL_COVER))
            id_partials += 1
        else:
            shape, cover = "full", 1.0
        _mark(page, place.point(*column[int(digit)]), radius, shape, instrument, ink, cover)
    image, fmt, quality = _CAPTURES[capture](page.rgb(), rng)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {"compress_level": PNG_LEVEL}))
    return Capture(buf.getvalue(), fmt, capture, instrument, questions, choices, tuple(rows), digits, id_partials)


def generate(seed: int, count: int, *, dpi: int = DPI) -> list[Capture]:
    """`count` captures cycling through CAPTURES; the same seed gives the same captures."""
    rng = np.random.default_rng(seed)
    return [make_capture(rng, CAPTURES[i % len(CAPTURES)], dpi=dpi) for i in range(count)]


@dataclass(frozen=True)
class Outcome:
    """One question of one capture as read."""

    capture: str
    kind: str
    instrument: str
    correct: bool
    needs_review: bool
    confidence: float
    cover: float | None  # the smallest partial cover in the row, if any
    shapes: tuple[str, ...]


def outcomes(capture: Capture, result: dict[str, Any]) -> list[Outcome]:
    """Compare a reading (the omr_grading result) with the capture's truth, question by question."""
    letters = "ABCDE"
    found = []
    for row, answer in zip(capture.rows, result["answers"], strict=True):
        correct = answer["marked"] == [letters[i] for i in row.marks]
        cover = min(row.covers) if row.covers else None
        found.append(
            Outcome(
                capture.capture,
                row.kind,
                capture.instrument,
                correct,
                bool(answer["needs_review"]),
                float(answer["confidence"]),
                cover,
                row.shapes,
            )
        )
    return found


# ---- capture effects (all on float RGB in [0, 1], returning uint8 RGB) ------------------------------------------


def _u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _sensor(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise, mostly shared by the three channels: a random tile of it repeated over the image."""
    tile = rng.standard_normal((NOISE_TILE, NOISE_TILE, 1), dtype=np.float32) * 0.9
    tile = tile + rng.standard_normal((NOISE_TILE, NOISE_TILE, 3), dtype=np.float32) * 0.45
    h, w, _ = rgb.shape
    reps = (h // NOISE_TILE + 2, w // NOISE_TILE + 2, 1)
    dy, dx = (int(d) for d in rng.integers(0, NOISE_TILE, 2))
    noise = np.tile(tile, reps)[dy : dy + h, dx : dx + w]
    result: np.ndarray = rgb + noise * np.float32(sigma / 255.0)
    return result


def _pil_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(_u8(rgb)).filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32) / 255.0


def _clean(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str, int]:
    return _u8(_sensor(rgb, 1.0, rng)), "PNG", 0


def _scanned(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str, int]:
    h, w, _ = rgb.shape
    drop = np.float32(rng.uniform(0.0, 0.08))
    if rng.random() < 0.5:
        shading = 1.0 - drop * np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    else:
        shading = 1.0 - drop * np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = _pil_blur(rgb * shading, rng.uniform(0.4, 1.0))
    turn = rng.uniform(-4.0, 4.0) + (180.0 if rng.random() < 0.2 else 0.0)
    bed = tuple(int(c) for c in rng.uniform(235, 250, 3))
    pil = Image.fromarray(_u8(img)).rotate(turn, Image.Resampling.BICUBIC, expand=True, fillcolor=bed)
    img = _sensor(np.asarray(pil, dtype=np.float32) / 255.0, rng.uniform(1.5, 4.0), rng)
    jpeg = rng.random() < 0.5
    return _u8(img), "JPEG" if jpeg else "PNG", int(rng.integers(72, 93))


def _photo(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str, int]:
    h, w, _ = rgb.shape
    sideways = rng.random() < 0.15  # the phone held in landscape, the page turned a quarter in the frame
    out_w, out_h = (4032, 3024) if sideways else (3024, 4032)
    seen_w, seen_h = (h, w) if sideways else (w, h)
    # Where the page's corners land in the camera frame: a fitted rectangle, each corner pushed at random.
    fill = rng.uniform(0.72, 0.9)
    scale = fill * min(out_w / seen_w, out_h / seen_h)
    cw, ch = seen_w * scale, seen_h * scale
    ox, oy = (out_w - cw) / 2 + rng.uniform(-0.05, 0.05) * out_w, (out_h - ch) / 2 + rng.uniform(-0.04, 0.04) * out_h
    corners = np.array([[ox, oy], [ox + cw, oy], [ox + cw, oy + ch], [ox, oy + ch]])
    corners += rng.uniform(-0.07, 0.07, (4, 2)) * np.array([cw, ch])
    # The photographer keeps the whole page in the picture: pull it in if a corner left the frame.
    middle = np.array([out_w, out_h]) / 2
    reach = np.abs(corners - middle).max(axis=0) / (middle * 0.97)
    corners = middle + (corners - middle) / max(1.0, float(reach.max()))
    if sideways:  # the page's top-left corner lands on the frame's top-right
        corners = np.roll(corners, -1, axis=0)
    coeffs = _perspective_coeffs(corners, np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64))
    desk = np.array([rng.uniform(0.25, 0.6), rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.45)])
    canvas = Image.fromarray(_u8(rgb)).transform(
        (out_w, out_h),
        Image.Transform.PERSPECTIVE,
        tuple(coeffs),
        Image.Resampling.BILINEAR,
        fillcolor=tuple(int(c * 255) for c in desk),
    )
    img = np.asarray(canvas, dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:out_h:8, 0:out_w:8].astype(np.float32)
    cx, cy = out_w * rng.uniform(0.35, 0.65), out_h * rng.uniform(0.35, 0.65)
    light = 1.0 - rng.uniform(0.1, 0.3) * ((xx - cx) ** 2 + (yy - cy) ** 2) / (out_w**2 + out_h**2) * 4
    # A shadow (a hand or the phone) with a soft edge across part of the frame.
    phi = rng.uniform(0, 2 * np.pi)
    edge = (xx - out_w / 2) * np.cos(phi) + (yy - out_h / 2) * np.sin(phi) - rng.uniform(0.1, 0.45) * out_w
    light *= 1.0 - rng.uniform(0.15, 0.35) / (1.0 + np.exp(-edge / (rng.uniform(0.01, 0.05) * out_w)))
    light_full = np.asarray(Image.fromarray(light.astype(np.float32)).resize((out_w, out_h), Image.Resampling.BILINEAR))
    cast = np.array([rng.uniform(0.95, 1.05), 1.0, rng.uniform(0.85, 1.05)], dtype=np.float32)
    img = img * (light_full[:, :, None] * cast).astype(np.float32)
    img = _pil_blur(img, rng.uniform(0.6, 1.6))
    img = _sensor(img, rng.uniform(2.5, 6.0), rng)
    return _u8(img), "JPEG", int(rng.integers(55, 86))


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """PIL's PERSPECTIVE coefficients mapping output pixels (dst) back to input pixels (src)."""
    rows = []
    for (x, y), (sx, sy) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -sx * x, -sx * y])
        rows.append([0, 0, 0, x, y, 1, -sy * x, -sy * y])
    coeffs: np.ndarray = np.linalg.solve(np.array(rows, dtype=np.float64), src.reshape(8))
    return coeffs


_CAPTURES: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, str, int]]] = {
    "clean": _clean,
    "scanned": _scanned,
    "photo": _photo,
}
