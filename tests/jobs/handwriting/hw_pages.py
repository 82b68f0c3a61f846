"""Seeded generator of homework pages: printed questions with blank answer space, optionally written in.

Printed content (Hershey fonts and PIL's bundled font, choice rows, answer-box rules) stands for the exam; writing is
simulated as a pen trajectory, not a font: cursive words are a forward-moving oscillation (loops where it turns
back) on a drifting, tilted baseline with jittered letter heights and slant; calculations are separate digit-like
marks (loops, hooks, strokes, + and =) in rows. Stroke width and ink tone vary per page; the scan adds paper grain,
a lighting gradient, blur, noise and JPEG.

`amount` is how many handwritten lines are written (0 = a blank answer sheet), so scores can be checked for
monotonicity on the same printed page.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


@dataclass(frozen=True)
class Sheet:
    image: np.ndarray  # grayscale scan
    lines_written: int
    kind: str  # "prose", "calc" or "none"

    def encode(self, quality: int = 85) -> bytes:
        ok, buf = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return buf.tobytes()


def _printed_line(rng: random.Random, page: np.ndarray, x: int, y: int, width: int, pil: bool, font: int) -> int:
    """One printed text line with its top-left at (x, y); returns its height."""
    words = []
    while sum(len(w) + 1 for w in words) * 11 < width * rng.uniform(0.5, 0.95):
        words.append("".join(rng.choice("abcdefghiklmnoprstuy") for _ in range(rng.randint(2, 8))))
    text = " ".join(words)
    if pil:
        tile = Image.new("L", (width + 40, 30), 255)
        ImageDraw.Draw(tile).text((0, 0), text, font=ImageFont.load_default(size=19), fill=0)
        region = page[y : y + 30, x : x + width + 40]
        np.minimum(region, np.asarray(tile)[: region.shape[0], : region.shape[1]], out=region)
        return 24
    cv2.putText(page, text, (x, y + 16), font, 0.62, 0, 1, cv2.LINE_AA)
    return 24


def _cursive_word(rng: random.Random, page: np.ndarray, x: float, base: float, h: float, look: dict) -> float:
    """A cursive-like word starting at (x, baseline); returns the x where it ends."""
    letters = rng.randint(2, 7)
    per = h * rng.uniform(0.55, 0.8)
    pts = []
    steps = letters * 12
    phase = rng.uniform(0, math.tau)
    heights = [h * rng.uniform(0.7, 1.3) * (2.0 if rng.random() < 0.2 else 1.0) for _ in range(letters + 1)]
    for i in range(steps + 1):
        t = i / 12
        k = min(int(t), letters)
        loop = look["loop"] * per * math.sin(math.tau * t + phase)
        px = x + t * per + loop
        py = base - heights[k] * 0.5 * (1 - math.cos(math.tau * t + phase)) + rng.gauss(0, h * 0.04)
        px += look["slant"] * (base - py)
        pts.append((px, py))
    arr = np.array(pts, np.float32) * 8
    cv2.polylines(page, [arr.astype(np.int32)], False, look["ink"], look["width"], cv2.LINE_AA, shift=3)
    return x + letters * per + h * rng.uniform(*look.get("gap", (0.5, 1.0)))


def _digit(rng: random.Random, page: np.ndarray, x: float, base: float, h: float, look: dict) -> float:
    """One digit-like or operator mark; returns the next x."""
    kind = rng.choice(("loop", "hook", "stroke", "curve", "curve", "plus", "equals"))
    hh = h * rng.uniform(0.85, 1.2)
    cy = base - hh / 2 + rng.gauss(0, h * 0.08)
    w = hh * rng.uniform(0.45, 0.7)
    color, width = look["ink"], look["width"]
    if kind == "loop":
        cv2.ellipse(
            page,
            (int(x + w / 2), int(cy)),
            (int(w / 2), int(hh / 2)),
            rng.uniform(-15, 15),
            0,
            360,
            color,
            width,
            cv2.LINE_AA,
        )
    elif kind == "hook":
        pts = np.array([[x, cy - hh / 2 + 3], [x + w, cy - hh / 2], [x + w * 0.3, cy + hh / 2]], np.int32)
        cv2.polylines(page, [pts], False, color, width, cv2.LINE_AA)
    elif kind == "stroke":
        cv2.line(
            page, (int(x + w * 0.6), int(cy - hh / 2)), (int(x + w * 0.4), int(cy + hh / 2)), color, width, cv2.LINE_AA
        )
        w *= 0.6
    elif kind == "curve":
        t = np.linspace(0, 1, 16)
        pts = np.stack([x + w * (0.5 + 0.5 * np.sin(t * 5 + rng.uniform(0, 2))), cy - hh / 2 + hh * t], axis=1)
        cv2.polylines(page, [pts.astype(np.int32)], False, color, width, cv2.LINE_AA)
    elif kind == "plus":
        cv2.line(page, (int(x), int(cy)), (int(x + w), int(cy)), color, width, cv2.LINE_AA)
        cv2.line(page, (int(x + w / 2), int(cy - w / 2)), (int(x + w / 2), int(cy + w / 2)), color, width, cv2.LINE_AA)
    else:
        for dy in (-hh * 0.15, hh * 0.15):
            cv2.line(page, (int(x), int(cy + dy)), (int(x + w), int(cy + dy)), color, width, cv2.LINE_AA)
    return x + w + h * rng.uniform(0.25, 0.6)


def _written_line(rng: random.Random, page: np.ndarray, x0: int, y: int, width: int, kind: str, look: dict) -> None:
    h = look["height"]
    x = x0 + rng.uniform(0, h)
    end = x0 + width * rng.uniform(0.55, 0.95)
    tilt = math.tan(math.radians(rng.uniform(-3, 3)))
    while x < end:
        base = y + h + (x - x0) * tilt + rng.gauss(0, h * 0.06)
        x = _cursive_word(rng, page, x, base, h, look) if kind == "prose" else _digit(rng, page, x, base, h, look)


def render_sheet(seed: int, amount: int, kind: str = "prose", width: int = 1240, height: int = 1754) -> Sheet:
    """A homework sheet with `amount` handwritten lines of `kind` ("prose" or "calc") spread over its answer spaces."""
    rng = random.Random(seed)  # the printed page depends on the seed only, so amounts compare on the same page
    page = np.full((height, width), 255, np.uint8)
    pil, font = rng.random() < 0.25, rng.choice(HERSHEY)
    margin = width // 14
    spaces: list[tuple[int, int]] = []  # (top, bottom) of the blank answer spaces
    y = height // 14
    number = 1
    while y < height * 0.85:
        cv2.putText(page, f"{number}.", (margin, y + 16), font, 0.62, 0, 1, cv2.LINE_AA)
        for _ in range(rng.randint(1, 3)):
            y += _printed_line(rng, page, margin + 40, y, width - 2 * margin - 40, pil, font) + 6
        if rng.random() < 0.5:
            for i in range(4):
                cv2.putText(
                    page,
                    f"({i + 1}) {rng.randint(2, 99)}",
                    (margin + 40 + i * (width - 2 * margin) // 4, y + 16),
                    font,
                    0.62,
                    0,
                    1,
                    cv2.LINE_AA,
                )
            y += 30
        space = rng.randint(150, 260)
        if rng.random() < 0.4:
            cv2.rectangle(page, (margin + 30, y + 5), (width - margin, y + space - 10), 0, 1)
        spaces.append((y + 10, y + space - 15))
        y += space
        number += 1
    wrng = random.Random(f"{seed}-{kind}")  # one writer per sheet: amount k writes the first k of the same lines
    look = {
        "height": wrng.uniform(18, 30),
        "width": wrng.choice((1, 2, 2, 3)),
        "ink": wrng.randint(0, 110),
        "loop": wrng.uniform(0.1, 0.45),
        "slant": wrng.uniform(-0.1, 0.35),
    }
    pitch = int(look["height"] * 1.9)
    slots = sorted(top + pitch // 3 + i * pitch for top, bottom in spaces for i in range((bottom - top) // pitch))
    for y_line in slots[:amount]:
        _written_line(wrng, page, margin + 40, y_line, width - 2 * margin - 40, kind, look)
    return Sheet(_scan(random.Random(seed + 1), page), min(amount, len(slots)), kind if amount else "none")


def _scan(rng: random.Random, page: np.ndarray) -> np.ndarray:
    h, w = page.shape
    nrng = np.random.default_rng(rng.randrange(2**32))
    paper = rng.uniform(205, 245)
    img = page.astype(np.float32) * (paper / 255.0)
    grain = cv2.GaussianBlur(nrng.normal(0, rng.uniform(3, 9), (h, w)).astype(np.float32), (0, 0), 1.5)  # fibres
    img += grain * 2 + np.linspace(0, rng.uniform(-30, 30), w, dtype=np.float32)[None, :]
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.9))
    img += nrng.normal(0, rng.uniform(2, 8), (h, w)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- Korean print, colour pens, stamps, highlighters (tuning only; the held-out pages live in bench/heldout) ------

KOREAN_FONTS = (  # Un and Baekmuk fonts (fonts-unfonts-core, fonts-baekmuk); the held-out pages use others
    "/usr/share/fonts/truetype/unfonts-core/UnBatang.ttf",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/usr/share/fonts/truetype/baekmuk/gulim.ttf",
    "/usr/share/fonts/truetype/baekmuk/batang.ttf",
    "/usr/share/fonts/truetype/unfonts-core/UnDinaru.ttf",
    "/usr/share/fonts/truetype/unfonts-core/UnGraphic.ttf",
    "/usr/share/fonts/truetype/unfonts-core/UnBatangBold.ttf",
    "/usr/share/fonts/truetype/unfonts-core/UnDotumBold.ttf",
    "/usr/share/fonts/truetype/baekmuk/dotum.ttf",
)
SYLLABLES = (
    "가각간갈감강개거건것게겨결경계고곡공과관광교구국군권귀규그근글금기길김나남내너년노누는니다단달당대도동두들등라"
)


def korean_fonts() -> list[str]:
    from pathlib import Path

    return [f for f in KOREAN_FONTS if Path(f).exists()]


def render_korean_sheet(seed: int, amount: int, pen: str = "black") -> np.ndarray:
    """A BGR sheet of Korean print in Un/Baekmuk fonts with `amount` handwritten lines (trajectory pen, as above)
    in `pen` ("black", "blue", "pencil", or "grainy": pencil broken up by the paper's grain), the printed page
    depending on the seed only."""
    rng = random.Random(seed)
    width, height = (1240, 1754) if seed % 2 else (1654, 2339)
    tile = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(tile)
    fonts = korean_fonts()
    size = rng.randint(20, 28) * width // 1240
    font = ImageFont.truetype(rng.choice(fonts), size)
    y, spaces = 90, []
    draw.text(
        (90, 40), "".join(rng.choice(SYLLABLES) for _ in range(8)), font=ImageFont.truetype(fonts[0], size * 3 // 2)
    )
    while y < height * 0.85:
        for _ in range(rng.randint(1, 3)):
            words = [
                "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(6, 12))
            ]
            draw.text((90, y), " ".join(words), font=font, fill=0)
            y += int(font.size * 1.7)
        if rng.random() < 0.5:
            for i, mark in enumerate("\u2460\u2461\u2462\u2463\u2464"):
                draw.text(
                    (120 + i * width // 6, y), f"{mark} {rng.choice(SYLLABLES)}{rng.randint(1, 99)}", font=font, fill=0
                )
            y += int(font.size * 1.8)
        space = rng.randint(150, 240)
        spaces.append((y + 10, y + space - 15))
        y += space
    page = np.asarray(tile).copy()
    written = np.full_like(page, 255)
    wrng = random.Random(f"{seed}-{pen}")
    look = {
        "height": wrng.uniform(18, 28) * width / 1240,
        "width": 2,
        "ink": 0,
        "loop": wrng.uniform(0.1, 0.4),
        "slant": 0.1,
    }
    pitch = int(look["height"] * 1.9)
    slots = sorted(top + pitch // 3 + i * pitch for top, bottom in spaces for i in range((bottom - top) // pitch))
    for y_line in slots[:amount]:
        _written_line(wrng, written, 120, y_line, width - 240, "prose" if seed % 3 else "calc", look)
    colour = {"black": (20, 20, 20), "blue": (170, 70, 30), "pencil": (120, 120, 120), "grainy": (95, 95, 100)}[pen]
    alpha = 1 - written.astype(np.float32) / 255
    if pen == "grainy":  # soft pencil on rough paper: the graphite catches on the fibres' tops, strokes break up
        grain = np.random.default_rng(seed).uniform(0.0, 1.0, alpha.shape).astype(np.float32)
        alpha *= np.clip(cv2.GaussianBlur(grain, (0, 0), 0.6) * 2.2 - 0.6, 0.0, 1.0)
    bgr = np.repeat(page[..., None].astype(np.float32), 3, axis=2)
    for c in range(3):
        bgr[..., c] = bgr[..., c] * (1 - alpha) + colour[c] * alpha
    gray = _scan(random.Random(seed + 1), np.full((height, width), 255, np.uint8)).astype(np.float32) / 255
    return np.clip(bgr * gray[..., None], 0, 255).astype(np.uint8)


# --- mixed cases: single marks beside print, coloured grids, seals, paper, noise, low resolution (tuning only) ----

PEN_BGR = {"black": (25, 25, 30), "blue": (160, 60, 20), "red": (40, 40, 190), "pencil": (110, 110, 110)}
CASE_KINDS = (
    "print",  # print only (Korean or Latin), sometimes photographed askew
    "texture",  # print on fibrous, blotchy paper
    "crumpled",  # print on creased paper (shading ridges)
    "noise",  # print under heavy sensor noise, salt and pepper, low JPEG quality
    "boxes",  # print and coloured manuscript boxes (or a grey graph grid)
    "seal",  # print and a red seal
    "highlight",  # print with translucent highlighter bands across lines
    "highlight_edge",  # broad highlighter swipes whose edges run through printed lines (letters half under them)
    "lowres",  # print scanned at 60-90 dpi
    "lowres_scan",  # print through a soft scanner at 72-100 dpi (small print too): optics blur, JPEG at low quality
    "lowres_page",  # the same scanner, a few written lines beside the print
    "lowres_title",  # the same scanner, print only: titles 1.4-2.3x the body's size, bracketed choice rows "(1) 26"
    "lowres_title_page",  # the same page as lowres_title, with one short answer or a few written lines
    "tick",  # one tick, in an answer space or beside a choice
    "circle",  # one hand-drawn loop around a printed choice
    "answer",  # one short answer (a number or a word) in an answer space or after a label
    "page",  # a few written lines
    "highlight_page",  # a few written lines (black pen or pencil too) under a highlighter swipe
    "faint_answer",  # one short answer (two or three marks) in faint, hard pencil: a third as dark as the print
    "keystone",  # print only, photographed from below or above: the lines' slope changes down the page
    "ring",  # one round, closed loop around a printed choice (as round as a bubble, around its two or three letters)
)


@dataclass(frozen=True)
class Case:
    image: np.ndarray  # BGR
    kind: str
    written: bool


def _mixed_print(
    rng: random.Random, width: int, height: int, titles: random.Random | None = None
) -> tuple[np.ndarray, list, list]:
    """A white page of print (Korean in Un/Baekmuk or Latin in PIL's font) as an 8-bit grey layer; returns it, the
    choice labels' boxes and the blank answer spaces. `titles` (its own random stream): a page title and section
    headings 1.4-2.3x the body's size, and choice rows in brackets ("(1) 26") whatever the script."""
    tile = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(tile)
    fonts = korean_fonts()
    korean = bool(fonts) and rng.random() < 0.6
    size = rng.randint(22, 34)
    font = ImageFont.truetype(rng.choice(fonts), size) if korean else ImageFont.load_default(size=size)

    def words() -> str:
        if korean:
            return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(12))
        return " ".join("".join(rng.choice("abcdefghiklmnoprstuy") for _ in range(rng.randint(2, 8))) for _ in range(9))

    choices, spaces = [], []
    y = rng.randint(60, 120)

    def heading(scale: float, count: int) -> int:
        """A heading of `count` short words at `scale` times the body's size, centred or flush left; its height."""
        assert titles is not None
        big = max(size + 4, round(size * scale))
        face = ImageFont.truetype(rng.choice(fonts), big) if korean else ImageFont.load_default(size=big)
        if korean:
            text = " ".join(
                "".join(titles.choice(SYLLABLES) for _ in range(titles.randint(2, 4))) for _ in range(count)
            )
        else:
            text = " ".join(
                "".join(titles.choice("abcdefghiklmnoprstuy") for _ in range(titles.randint(3, 7)))
                for _ in range(count)
            )
            text = text.title() if titles.random() < 0.5 else text
        length = draw.textlength(text, font=face)
        x = (width - length) / 2 if titles.random() < 0.5 else 90
        draw.text((x, y), text, font=face, fill=0)
        return int(big * 1.5)

    if titles is not None:
        y += heading(titles.uniform(1.6, 2.3), titles.randint(2, 4))
    while y < height * 0.85:
        if titles is not None and titles.random() < 0.35:
            y += heading(titles.uniform(1.4, 1.8), titles.randint(1, 3))
        for _ in range(rng.randint(1, 2)):
            text = words()
            while draw.textlength(text, font=font) > width - 200:
                text = text[: int(len(text) * 0.9)]
            draw.text((90, y), text, font=font, fill=0)
            y += int(size * 1.6)
        if rng.random() < 0.6:
            for i in range(5):
                x = 110 + i * (width - 200) // 5
                circled = korean and titles is None
                label = f"{'①②③④⑤'[i]} {rng.randint(1, 99)}" if circled else f"({i + 1}) {rng.randint(1, 99)}"
                draw.text((x, y), label, font=font, fill=0)
                box = draw.textbbox((x, y), label, font=font)
                choices.append(box)
            y += int(size * 1.8)
        space = rng.randint(4, 8) * size
        spaces.append((110, y + size // 2, width - 110, y + space - size // 2))
        y += space
    return np.asarray(tile).copy(), choices, spaces


def _pen_stroke(page: np.ndarray, pts: list[tuple[float, float]], width: int) -> None:
    cv2.polylines(page, [(np.array(pts) * 8).astype(np.int32)], False, 0, width, cv2.LINE_AA, shift=3)


def _tick(rng: random.Random, layer: np.ndarray, cx: float, cy: float, s: float, width: int) -> None:
    """A check mark: a short falling stroke and a long rising one, drawn as one trajectory with a little wobble."""
    pts = []
    for t in np.linspace(0, 1, 30):
        if t < 0.3:
            u = t / 0.3
            x, y = cx - s * 0.45 * (1 - u), cy - s * 0.1 * (1 - u) + s * 0.35 * u
        else:
            u = (t - 0.3) / 0.7
            x, y = cx + s * 0.7 * u, cy + s * 0.35 - s * 1.15 * u**0.8
        pts.append((x + rng.gauss(0, s * 0.015), y + rng.gauss(0, s * 0.015)))
    _pen_stroke(layer, pts, width)


def _loop(rng: random.Random, layer: np.ndarray, box: tuple, width: int, round_: bool = False) -> None:
    """A hand-drawn loop around a box: one turn and a bit, its radius drifting so its ends overlap apart; `round_`:
    a circle round the box's longer side, closing on itself."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a, b = (x1 - x0) / 2 * rng.uniform(1.15, 1.5), (y1 - y0) / 2 * rng.uniform(1.3, 1.9)
    if round_:
        a = b = max(x1 - x0, y1 - y0) / 2 * rng.uniform(1.05, 1.25)
    start = rng.uniform(0, math.tau)
    t = np.linspace(start, start + math.tau * rng.uniform(1.03, 1.15), 90)
    drift = np.linspace(1.0, rng.uniform(0.96, 1.04) if round_ else rng.uniform(0.85, 1.12), len(t))
    pts = [(cx + a * d * math.cos(v), cy + b * d * math.sin(v)) for v, d in zip(t, drift, strict=True)]
    _pen_stroke(layer, pts, width)


def _camera(rng: random.Random, image: np.ndarray) -> np.ndarray:
    """A phone photo: a mild perspective and vignetting."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + np.float32([[rng.uniform(-1, 1) * w * 0.03, rng.uniform(-1, 1) * h * 0.02] for _ in range(4)])
    out = cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(60, 70, 80))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fall = 1 - rng.uniform(0.1, 0.25) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    return np.clip(out * fall[..., None], 0, 255).astype(np.uint8)


def _keystone(rng: random.Random, image: np.ndarray) -> np.ndarray:
    """A phone held off to the left or right of the page: the far side shrinks by 2.5-6 % of the page's height, so
    each printed line has its own slope (the top and bottom lines 2-5 degrees apart), and the page turns a little."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    squeeze = h * rng.uniform(0.012, 0.03)
    turn = w * rng.uniform(-0.01, 0.01)
    far = (0, 3) if rng.random() < 0.5 else (1, 2)  # the left or the right side is the far one
    dst = src.copy()
    dst[far[0], 1] += squeeze
    dst[far[1], 1] -= squeeze
    dst[:, 1] += np.float32([-turn, turn, turn, -turn])
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(60, 70, 80))


def render_case(seed: int, kind: str) -> Case:
    """One tuning page of `kind` (CASE_KINDS), BGR, with whether it holds handwriting."""
    rng = random.Random(f"case-{seed}-{kind}")
    width, height = 1240, 1754
    titled = kind in ("lowres_title", "lowres_title_page")
    printed, choices, spaces = _mixed_print(rng, width, height, random.Random(f"titles-{seed}") if titled else None)
    paper_tone = rng.uniform(215, 248)
    canvas = np.repeat((printed.astype(np.float32) / 255 * paper_tone)[..., None], 3, axis=2)
    nrng = np.random.default_rng(rng.randrange(2**32))
    if kind == "texture":  # fibres and blotches of a recycled paper
        blotch = cv2.GaussianBlur(nrng.normal(0, 1, (height // 8, width // 8)).astype(np.float32), (0, 0), 2)
        blotch = cv2.resize(blotch, (width, height)) * rng.uniform(6, 12)
        fibres = np.zeros((height, width), np.float32)
        for _ in range(rng.randint(300, 900)):
            x, y, angle = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, math.pi)
            length = rng.uniform(4, 18)
            end = (int(x + length * math.cos(angle)), int(y + length * math.sin(angle)))
            cv2.line(fibres, (int(x), int(y)), end, rng.uniform(20, 60), 1, cv2.LINE_AA)
        canvas -= (blotch + fibres)[..., None]
    elif kind == "crumpled":  # creases: lit on one side, shaded on the other
        shade = np.zeros((height, width), np.float32)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        for _ in range(rng.randint(6, 14)):
            angle = rng.uniform(0, math.pi)
            d = (xx - rng.uniform(0, width)) * math.cos(angle) + (yy - rng.uniform(0, height)) * math.sin(angle)
            shade += rng.uniform(10, 35) * np.tanh(d / rng.uniform(8, 40)) * np.exp(-np.abs(d) / rng.uniform(40, 150))
        canvas += shade[..., None]
    elif kind == "boxes":
        colour = rng.choice(((70, 70, 210), (100, 160, 90), (80, 80, 80), (200, 150, 90)))
        cell = rng.randint(40, 64)
        top = rng.randint(height // 5, height // 2)
        for row in range(rng.randint(3, 8)):
            for col in range((width - 180) // cell):
                x, y = 90 + col * cell, top + row * int(cell * rng.choice((1.0, 1.4)))
                cv2.rectangle(canvas, (x, y), (x + cell, y + cell), colour, rng.choice((1, 2, 2)))
    elif kind == "seal":
        r = rng.randint(55, 110)
        cx, cy = rng.randint(r + 40, width - r - 40), rng.randint(r + 40, height - r - 40)
        seal = np.zeros((height, width), np.uint8)
        if rng.random() < 0.6:
            cv2.circle(seal, (cx, cy), r, 255, rng.randint(4, 10), cv2.LINE_AA)
        else:
            cv2.rectangle(seal, (cx - r, cy - r), (cx + r, cy + r), 255, rng.randint(4, 10))
        stamp_font = ImageFont.truetype(korean_fonts()[0], r // 2) if korean_fonts() else None
        if stamp_font is not None:
            tile = Image.fromarray(seal)
            ImageDraw.Draw(tile).text((cx, cy), "확인", font=stamp_font, fill=255, anchor="mm")
            seal = np.asarray(tile).copy()
        alpha = cv2.GaussianBlur(seal, (0, 0), 1.0).astype(np.float32) / 255 * nrng.uniform(0.4, 1.0, seal.shape)
        red = np.array((50, 40, 200), np.float32) / 255
        canvas *= 1 - alpha[..., None] * (1 - red[None, None, :])
    elif kind == "highlight":  # bands of yellow, green or pink that multiply the page, edges soft
        tint = np.array(rng.choice(((90, 240, 250), (130, 250, 150), (210, 150, 250))), np.float32) / 255
        band = np.zeros((height, width), np.float32)
        for _ in range(rng.randint(1, 4)):
            y = rng.randint(80, height - 200)
            x0 = rng.randint(60, width // 2)
            cv2.line(
                band, (x0, y), (x0 + rng.randint(150, width // 2), y + rng.randint(-6, 6)), 1.0, rng.randint(22, 40)
            )
        band = cv2.GaussianBlur(band, (0, 0), 2.5) * rng.uniform(0.5, 0.9)
        canvas *= 1 - band[..., None] * (1 - tint[None, None, :])
    elif kind == "highlight_edge":  # a broad, even swipe whose top or bottom edge cuts through a printed line
        tint = np.array(rng.choice(((90, 240, 250), (130, 250, 150), (210, 150, 250), (240, 200, 120))), np.float32)
        band = np.zeros((height, width), np.float32)
        rows = np.flatnonzero((printed < 128).any(axis=1))
        for _ in range(rng.randint(2, 4)):
            cut = int(rng.choice(rows))  # a row through print: the swipe's edge runs along it
            thick = rng.randint(30, 70)
            top = cut if rng.random() < 0.5 else cut - thick
            x0 = rng.randint(60, width // 3)
            x1 = min(width - 40, x0 + rng.randint(300, width - 200))
            tilt = rng.uniform(-0.01, 0.01)
            pts = np.array([[x0, top], [x1, top + tilt * (x1 - x0)], [x1, top + thick], [x0, top + thick]], np.int32)
            cv2.fillPoly(band, [pts], 1.0)
        band = cv2.GaussianBlur(band, (0, 0), rng.uniform(0.8, 3.0)) * rng.uniform(0.6, 0.95)
        canvas *= 1 - band[..., None] * (1 - tint[None, None, :] / 255)
    written = kind in (
        "tick",
        "circle",
        "answer",
        "page",
        "highlight_page",
        "lowres_page",
        "lowres_title_page",
        "faint_answer",
        "ring",
    )
    if written:
        pen = "pencil" if kind == "faint_answer" else rng.choice(tuple(PEN_BGR))
        layer = np.full((height, width), 255, np.uint8)
        stroke = 2 if pen == "pencil" else rng.choice((2, 2, 3))
        hand = rng.uniform(18, 30)
        if kind == "tick":
            if choices and rng.random() < 0.5:
                x0, y0, x1, y1 = rng.choice(choices)
                _tick(rng, layer, x1 + hand, (y0 + y1) / 2, hand * rng.uniform(1.0, 1.8), stroke)
            else:
                x0, y0, x1, y1 = rng.choice(spaces)
                _tick(rng, layer, rng.uniform(x0 + 60, x1 - 60), (y0 + y1) / 2, hand * rng.uniform(1.0, 1.8), stroke)
        elif kind in ("circle", "ring") and choices:
            _loop(rng, layer, rng.choice(choices), stroke, round_=kind == "ring")
        else:
            look = {"height": hand, "width": stroke, "ink": 0, "loop": rng.uniform(0.1, 0.4), "slant": 0.15}
            if kind == "lowres_title_page":  # words written wide apart: each its own line, on a steady baseline
                look["gap"] = (2.0, 3.5)
            x0, y0, x1, y1 = rng.choice(spaces)
            if kind in ("page", "highlight_page", "lowres_page") or (kind == "lowres_title_page" and seed % 2):
                for k in range(rng.randint(2, 5)):
                    _written_line(
                        rng, layer, x0, int(y0 + k * hand * 1.9), x1 - x0, rng.choice(("prose", "calc")), look
                    )
            else:
                x = rng.uniform(x0, x0 + 200)
                for _ in range(rng.randint(2, 3) if kind == "faint_answer" else rng.randint(1, 3)):
                    draw = _digit if rng.random() < 0.6 else _cursive_word
                    x = draw(rng, layer, x, (y0 + y1) / 2, hand, look)
        alpha = 1 - layer.astype(np.float32) / 255
        if kind == "faint_answer":  # hard pencil, pressed lightly: grey strokes 50-100 levels below the paper
            alpha *= nrng.uniform(0.45, 0.85, alpha.shape).astype(np.float32) * rng.uniform(0.7, 0.95)
        elif pen == "pencil":
            alpha *= nrng.uniform(0.4, 0.9, alpha.shape).astype(np.float32)
        tint = np.array(PEN_BGR[pen], np.float32) / 255
        canvas *= 1 - alpha[..., None] * (1 - tint[None, None, :])
        if kind == "highlight_page":  # a swipe over the written lines, from their top to below their middle
            band = np.zeros((height, width), np.float32)
            cv2.rectangle(band, (int(x0), int(y0 - hand)), (int(x1), int(y0 + hand * rng.uniform(1.5, 4))), 1.0, -1)
            band = cv2.GaussianBlur(band, (0, 0), rng.uniform(0.8, 3.0)) * rng.uniform(0.6, 0.95)
            shade = np.array(rng.choice(((90, 240, 250), (130, 250, 150), (210, 150, 250))), np.float32) / 255
            canvas *= 1 - band[..., None] * (1 - shade[None, None, :])
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    low = kind in ("lowres", "lowres_scan", "lowres_page", "lowres_title", "lowres_title_page")
    if kind == "keystone":
        image = _keystone(rng, image)
    elif not low and rng.random() < 0.25:
        image = _camera(rng, image)
    heavy = kind == "noise"
    image = image.astype(np.float32) + nrng.normal(
        0, rng.uniform(14, 28) if heavy else rng.uniform(1, 5), (height, width, 1)
    )
    if heavy:
        salt = nrng.random((height, width))
        image[salt < 0.008], image[salt > 0.992] = 25, 245
    image = np.clip(image, 0, 255).astype(np.uint8)
    if kind == "lowres":
        scale = rng.uniform(60, 90) / 150
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    quality = rng.randint(35, 55) if heavy else rng.randint(75, 92)
    if kind in ("lowres_scan", "lowres_page", "lowres_title", "lowres_title_page"):
        # Scanned at 72-100 dpi, the page taken as printed at 150 dpi (print 11-16 pt) or 220 dpi (8-11 pt: letters
        # about 5-7 px tall): the scanner's optics blur over about a target pixel, then it samples bilinearly.
        scale = rng.uniform(72, 100) / rng.choice((150, 220))
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9) / scale)
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        quality = rng.randint(40, 75)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return Case(cv2.imdecode(buf, cv2.IMREAD_COLOR), kind, written)
