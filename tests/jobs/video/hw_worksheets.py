"""Seeded generator of realistic homework videos (tuning set): printed worksheets filmed in colour, in perspective.

What it adds to hw_videos.py (whose synthetic pages stay for the fast tests), each a mechanism of real footage:
- pages: worksheets typeset with PIL in Un and Baekmuk fonts (Korean; fonts-unfonts-core, fonts-baekmuk) or
  Liberation and FreeFont (English; fonts-liberation, fonts-freefont-ttf) at a realistic density: title block, name
  field, numbered problems of 1-4 lines, choice rows, answer lines, boxes or blank space; some pages are dense print
  with hardly any answer space and are never written on; some homeworks are sparse (one short line per problem over
  a large answer box: the shared title block is much of a page); some carry print larger than the body that no other
  page repeats in place (a bold section heading, a boxed instruction, the title block on the first page only);
- writing: answers in the answer areas, in blue or black pen or pencil, as pen trajectories (scribbled glyphs on a
  drifting baseline, digits, circled choices, ticks) or in the UnPilgi handwriting font with each glyph jittered,
  in some homeworks hardly larger than the print;
  written before filming, or while held (answer by answer, a hand with a pen at work), or not at all;
- scene: a colour desk (plain, gradient, grain), the sheet in perspective (some videos filmed from further away), a
  colour cast, vignetting, exposure drift, defocus, sensor noise; the whole view shakes (shift, roll, zoom
  breathing); H.264 (libx264) where the ffmpeg has it, else MPEG-4;
- transitions: a cut (same framing or reframed), a slide (the sheet taken out sideways by a hand and the next brought
  in, or the next slid in on top of it), a page turn (the sheet folds over its left edge in 3-D perspective, showing
  its back with the print showing through, and is taken away); hands reaching in and pausing over a held page.

    render_worksheet_clip(seed, workdir) -> Clip   (fonts missing: FontsMissing; tests skip with the reason)
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from hw_videos import Clip
from PIL import Image, ImageDraw, ImageFont

from ai_worker.jobs.video import ffmpeg_exe

PRINT_FONTS = {
    "ko": (
        "/usr/share/fonts/truetype/unfonts-core/UnBatang.ttf",
        "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
        "/usr/share/fonts/truetype/unfonts-core/UnGraphic.ttf",
        "/usr/share/fonts/truetype/baekmuk/gulim.ttf",
        "/usr/share/fonts/truetype/baekmuk/batang.ttf",
    ),
    "en": (
        "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSerif.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    ),
}
BOLD_FONTS = {
    "ko": "/usr/share/fonts/truetype/unfonts-core/UnDotumBold.ttf",
    "en": "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
}
HAND_FONT = "/usr/share/fonts/truetype/unfonts-core/UnPilgi.ttf"
PAGE_W, PAGE_H = 760, 1075  # A4 proportions
SIZES = ((640, 480), (720, 540), (1024, 576), (1280, 720))
FPS = 15
PENS = {"blue": (150, 60, 25), "black": (35, 30, 30), "pencil": (105, 105, 110), "darkblue": (110, 40, 40)}  # BGR
KO_SYLLABLES = (
    "가각간갈감강개거건것게겨결경계고곡공과관광교구국군권귀규그근글금기길나남내너년노누는니다단달당대도동두들등라"
)
KO_WORDS = ("다음", "식을", "계산하시오", "알맞은", "수를", "쓰시오", "그림을", "보고", "답하시오", "몇", "입니까")
EN_WORDS = (
    "find", "the", "value", "of", "write", "answer", "each", "number", "below", "how", "many", "solve", "explain",
    "which", "is", "greater", "circle", "correct", "total", "left", "more", "than", "sum", "pieces",
)  # fmt: skip


class FontsMissing(RuntimeError):
    pass


def fonts_available() -> bool:
    return all(Path(f).exists() for f in (*PRINT_FONTS["ko"], *PRINT_FONTS["en"], *BOLD_FONTS.values(), HAND_FONT))


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass
class _Sheet:
    print_: np.ndarray  # BGR page with its print
    answers: list[tuple[int, int, int, int]]  # answer areas (x0, y0, x1, y1) in page pixels
    choices: list[tuple[int, int]]  # centres of printed choice marks (a student circles one)


def _text(rng: random.Random, lang: str, words: int) -> str:
    if lang == "ko":
        pool = [*KO_WORDS, *("".join(rng.choice(KO_SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(8))]
    else:
        pool = list(EN_WORDS)
    return " ".join(rng.choice(pool) for _ in range(words))


def _worksheet(
    rng: random.Random, lang: str, layout: dict, number: int, dense: bool, extra: random.Random | None = None
) -> _Sheet:
    """One page of the homework: the shared title block and answer style, problems of its own. With
    `layout["headings"]`, print larger than the body that no other page repeats in its place, drawn from `extra`:
    the title block on the first page only (later pages carry a small running header), a bold section heading or a
    boxed instruction in a larger font between problems."""
    img = Image.new("RGB", (PAGE_W, PAGE_H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    body = _font(layout["font"], layout["size"] - (2 if dense else 0))
    title = _font(BOLD_FONTS[lang], layout["size"] + 10)
    margin = 56
    headings = layout.get("headings", False) and extra is not None
    if headings and layout.get("first_title_only") and number > 1:
        draw.text((margin, 50), layout["title"], font=body, fill=(0, 0, 0))  # a running header, body size
    else:
        draw.text((margin, 40), layout["title"], font=title, fill=(0, 0, 0))
    draw.text((PAGE_W - margin - 120, 48), layout["name"], font=body, fill=(0, 0, 0))
    draw.line((margin, 88, PAGE_W - margin, 88), fill=(0, 0, 0), width=2)
    y = 108
    problem = layout["first"] + (number - 1) * layout["per_page"]
    answers, choices = [], []
    step = int(body.size * 1.55)
    while y < PAGE_H - 90:
        if headings and extra is not None and y > 140 and extra.random() < 0.2:  # unrepeated larger print
            big = _font(BOLD_FONTS[lang] if extra.random() < 0.6 else layout["font"], body.size + extra.randint(3, 9))
            words = ("심화", "문제", "서술형", "다음을", "읽고", "답하시오", "단원", "평가") if lang == "ko" else (
                "Part", "B", "word", "problems", "challenge", "read", "carefully", "review", "section")  # fmt: skip
            text = " ".join(extra.choice(words) for _ in range(extra.randint(2, 5)))
            if extra.random() < 0.4:  # a boxed instruction
                width = draw.textlength(text, font=big)
                draw.rectangle((margin, y, margin + width + 24, y + big.size + 16), outline=(0, 0, 0), width=1)
                draw.text((margin + 12, y + 6), text, font=big, fill=(0, 0, 0))
            else:
                draw.text((margin + extra.randint(0, 40), y), text, font=big, fill=(0, 0, 0))
            y += big.size + 24
            if y >= PAGE_H - 90:
                break
        draw.text((margin, y), f"{problem}.", font=body, fill=(0, 0, 0))
        lines = rng.randint(2, 4) if dense else rng.randint(1, 3)
        sparse = layout["sparse"] and not dense  # one short line per problem, a large answer space
        lines = 1 if sparse else lines
        for k in range(lines):
            room = (PAGE_W - 2 * margin - 40) * (rng.uniform(0.5, 1.0) if k == lines - 1 else rng.uniform(0.85, 1.0))
            room *= 0.6 if sparse else 1.0
            text = _text(rng, lang, 2)
            while draw.textlength(text, font=body) < room:
                text += " " + _text(rng, lang, 1)
            draw.text((margin + 36, y + k * step), text.rsplit(" ", 1)[0], font=body, fill=(0, 0, 0))
        y += lines * step + 6
        if rng.random() < 0.35:  # a row of choices
            for c in range(5):
                x = margin + 36 + c * (PAGE_W - 2 * margin - 36) // 5
                mark = "①②③④⑤"[c] if lang == "ko" else f"({'abcde'[c]})"
                draw.text((x, y), f"{mark} {rng.randint(2, 99)}", font=body, fill=(0, 0, 0))
                choices.append((x + body.size // 2, y + body.size // 2 + 2))
            y += step + 4
        space = rng.randint(20, 45) if dense else rng.randint(60, 150) + (130 if sparse else 0)
        style = layout["answer"]
        if style == "box":
            draw.rectangle((margin + 30, y + 4, PAGE_W - margin, y + space - 6), outline=(0, 0, 0), width=1)
        elif style == "line":
            label = "답:" if lang == "ko" else "Ans:"
            draw.text((PAGE_W // 2, y + space - 10 - body.size), label, font=body, fill=(0, 0, 0))
            draw.line((PAGE_W // 2 + 50, y + space - 10, PAGE_W - margin, y + space - 10), fill=(0, 0, 0), width=1)
        answers.append((margin + 40, y + 8, PAGE_W - margin - 10, y + space - 10))
        y += space + 10
        problem += 1
    return _Sheet(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR), answers, choices)


def _glyph(rng: random.Random, x: float, base: float, h: float, slant: float) -> tuple[list[np.ndarray], float]:
    """A scribbled handwritten glyph: 1-3 smooth strokes through jittered points of a cell; returns (strokes, width)."""
    w = h * rng.uniform(0.5, 0.9)
    strokes = []
    for _ in range(rng.randint(1, 3)):
        pts = np.array([(rng.uniform(0, w), rng.uniform(-h, 0)) for _ in range(rng.randint(3, 5))], np.float64)
        t = np.linspace(0, 1, 24)
        # a smooth curve through the points: a quadratic B-spline-like blend of consecutive midpoints
        curve = []
        for a, b, c in zip(pts[:-2], pts[1:-1], pts[2:], strict=False):
            p0, p2 = (a + b) / 2, (b + c) / 2
            curve.append((1 - t)[:, None] ** 2 * p0 + 2 * ((1 - t) * t)[:, None] * b + (t**2)[:, None] * p2)
        seg = np.concatenate(curve) if curve else pts
        seg[:, 0] += x - seg[:, 1] * slant
        seg[:, 1] += base
        strokes.append(seg)
    return strokes, w


def _write(rng: random.Random, sheet: _Sheet, lang: str, share: float, small: float | None = None) -> list[np.ndarray]:
    """The page's handwriting as answer layers (alpha 0-1, one per answer, so they can appear one by one); `small`
    sets the writing's height (px) instead of the drawn 17-30: handwriting hardly larger than the print."""
    h = rng.uniform(17, 30)
    h = small if small is not None else h
    width = rng.choice((1.5, 2.0, 2.5, 3.0))
    slant = rng.uniform(-0.1, 0.35)
    use_font = (lang == "ko" or small is not None) and rng.random() < 0.5
    if small is not None:  # a small hand writes with a fine pen
        width = min(width, 2.0)
    glyphs = KO_SYLLABLES + "0123456789" if lang == "ko" else "abcdefghijklmnopqrstuvwxyz0123456789"
    layers = []
    areas = [a for a in sheet.answers if rng.random() < share] or sheet.answers[:1]
    for x0, y0, x1, y1 in areas:
        layer = Image.new("L", (PAGE_W, PAGE_H), 0) if use_font else None
        canvas = np.zeros((PAGE_H, PAGE_W), np.uint8)
        rows = max(1, min(3, int((y1 - y0) // (h * 1.6))))
        for r in range(rows if rng.random() < 0.6 else 1):
            base = y0 + h * 1.2 + r * h * 1.6
            x = x0 + rng.uniform(0, 60)
            end = min(x1, x + rng.uniform(0.3, 0.9) * (x1 - x0))
            drift = rng.uniform(-0.04, 0.04)
            while x < end - h:
                if layer is not None:
                    glyph = rng.choice(glyphs)
                    font = _font(HAND_FONT, int(h * rng.uniform(1.1, 1.4)))
                    tile = Image.new("L", (int(h * 2), int(h * 2)), 0)
                    ImageDraw.Draw(tile).text((2, 2), glyph, font=font, fill=255)
                    tile = tile.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR)
                    layer.paste(255, (int(x), int(base - h * 1.3)), tile)
                    x += h * rng.uniform(0.9, 1.2) + (h * 0.5 if rng.random() < 0.2 else 0)
                else:
                    strokes, w = _glyph(rng, x, base + (x - x0) * drift + rng.gauss(0, h * 0.05), h, slant)
                    for s in strokes:
                        cv2.polylines(canvas, [np.round(s * 4).astype(np.int32)], False, 255, max(1, round(width)),
                                      cv2.LINE_AA, shift=2)  # fmt: skip
                    x += w + rng.uniform(0.1, 0.3) * h + (h * 0.6 if rng.random() < 0.2 else 0)
        if layer is not None:
            canvas = np.maximum(canvas, np.asarray(layer))
        layers.append(canvas.astype(np.float32) / 255)
    for cx, cy in rng.sample(sheet.choices, min(len(sheet.choices), rng.randint(0, 3))):  # circled choices
        canvas = np.zeros((PAGE_H, PAGE_W), np.uint8)
        r = rng.uniform(13, 18)
        t = np.linspace(0, math.tau * 1.1, 40) + rng.uniform(0, math.tau)
        pts = np.stack([cx + r * 1.2 * np.cos(t) + rng.gauss(0, 1), cy + r * np.sin(t)], 1) * 4
        cv2.polylines(canvas, [pts.astype(np.int32)], False, 255, max(1, round(width)), cv2.LINE_AA, shift=2)
        layers.append(canvas.astype(np.float32) / 255)
    return layers


def _ink(page: np.ndarray, layers: list[np.ndarray], pen: tuple[int, int, int], pencil: bool) -> np.ndarray:
    if not layers:
        return page
    alpha = np.clip(sum(layers), 0, 1)[..., None] * (0.75 if pencil else 0.95)
    return (page * (1 - alpha) + np.array(pen, np.float32) * alpha).astype(np.uint8)


def _back(page: np.ndarray) -> np.ndarray:
    """The back of a sheet: paper with the front's print faintly showing through (mirrored by the fold itself)."""
    grey = cv2.GaussianBlur(page, (0, 0), 1.5).astype(np.float32)
    return (235 + (grey - 255) * 0.12).clip(0, 255).astype(np.uint8)


def _desk(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = np.array([rng.uniform(40, 200) for _ in range(3)], np.float32)
    ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(-25, 25)
    desk = np.broadcast_to(base, (h, w, 3)) + ramp
    if rng.random() < 0.5:  # wood grain or weave
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        grain = np.sin(yy / rng.uniform(3, 9) + np.sin(xx / rng.uniform(40, 120)) * 3) * rng.uniform(5, 18)
        desk = desk + grain[..., None]
    return np.clip(desk + nrng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.float32)


def _pose(rng: random.Random, w: int, h: int, framing: float = 1.0) -> np.ndarray:
    """Page corners in the frame: the sheet fills 75-95 % of the frame's height (times `framing`: a phone held
    further away), seen in perspective."""
    sh = h * rng.uniform(0.75, 0.95) * framing
    sw = sh * PAGE_W / PAGE_H
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.03, 0.03) * h
    corners = np.array([[-sw / 2, -sh / 2], [sw / 2, -sh / 2], [sw / 2, sh / 2], [-sw / 2, sh / 2]], np.float32)
    corners += np.array([[rng.uniform(-0.05, 0.05) * sw, rng.uniform(-0.03, 0.03) * sh] for _ in range(4)], np.float32)
    angle = math.radians(rng.uniform(-6, 6))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
    return corners @ rot.T + np.array([cx, cy], np.float32)


SRC = np.array([[0, 0], [PAGE_W, 0], [PAGE_W, PAGE_H], [0, PAGE_H]], np.float32)


def _paste(frame: np.ndarray, image: np.ndarray, corners: np.ndarray) -> None:
    """Paste the page `image` onto `frame` (float32 BGR) with its corners at `corners`: area-averaged down to about
    the size it takes in the frame first (thin rules stay whole), then warped."""
    h, w = frame.shape[:2]
    tall = max(float(np.linalg.norm(corners[3] - corners[0])), float(np.linalg.norm(corners[2] - corners[1])))
    scale = min(1.0, max(tall, 8.0) / PAGE_H)
    dsize = (max(2, round(PAGE_W * scale)), max(2, round(PAGE_H * scale)))
    small = cv2.resize(image, dsize, interpolation=cv2.INTER_AREA)
    src = SRC * np.array([small.shape[1] / PAGE_W, small.shape[0] / PAGE_H], np.float32)
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ m
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(small, m, size, flags=cv2.INTER_LINEAR).astype(np.float32)
    mask = cv2.warpPerspective(np.ones(small.shape[:2], np.float32), m, size, flags=cv2.INTER_LINEAR)[..., None]
    region = frame[y0:y1, x0:x1]
    region *= 1 - mask
    region += warped * mask


def _folded(corners: np.ndarray, theta: float) -> np.ndarray:
    """The sheet's corners when it has turned by `theta` about its left edge, in a pinhole's perspective."""
    depth = 3.0 * PAGE_W
    out = []
    for x, y in SRC:
        X, Z = x * math.cos(theta), x * math.sin(theta)  # Z towards the camera
        k = depth / (depth - Z)
        out.append((X * k, PAGE_H / 2 + (y - PAGE_H / 2) * k))
    m = cv2.getPerspectiveTransform(SRC, corners.astype(np.float32))
    return cv2.perspectiveTransform(np.array(out, np.float32)[None], m)[0]


def _hand(frame: np.ndarray, tip: np.ndarray, frm: np.ndarray, skin: tuple[float, float, float], size: float) -> None:
    d = tip - frm
    d = d / max(1e-6, float(np.linalg.norm(d)))
    n = np.array([-d[1], d[0]])
    arm = np.array([frm + n * size * 0.45, frm - n * size * 0.45, tip - d * size * 0.6 - n * size * 0.35,
                    tip - d * size * 0.6 + n * size * 0.35], np.int32)  # fmt: skip
    cv2.fillConvexPoly(frame, arm, [c * 0.88 for c in skin], cv2.LINE_AA)
    cv2.ellipse(frame, (int(tip[0] - d[0] * size * 0.4), int(tip[1] - d[1] * size * 0.4)),
                (int(size * 0.5), int(size * 0.38)), math.degrees(math.atan2(d[1], d[0])), 0, 360, skin, -1,
                cv2.LINE_AA)  # fmt: skip
    for k in range(4):
        base = tip - d * size * 0.2 + n * (k - 1.5) * size * 0.17
        end = base + d * size * (0.35 + 0.08 * (k % 2))
        thick = max(2, int(size * 0.13))
        cv2.line(frame, base.astype(int).tolist(), end.astype(int).tolist(), skin, thick, cv2.LINE_AA)


def _encoder(path: Path, w: int, h: int, fps: int, crf: int) -> subprocess.Popen:
    exe = ffmpeg_exe()
    encoders = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf)] if "libx264" in encoders else [
        "-c:v", "mpeg4", "-q:v", "5"]  # fmt: skip
    command = [exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps),
               "-i", "pipe:0", *codec, "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    return subprocess.Popen(command, stdin=subprocess.PIPE)


def render_worksheet_clip(
    seed: int,
    workdir: Path,
    pages: int | None = None,
    kinds: tuple[str, ...] | None = None,
    size: tuple[int, int] | None = None,
    max_hold_s: float = 5.5,
    plan: tuple[str, ...] | None = None,
    pen: str | None = None,
    far: bool | None = None,
    sparse: bool | None = None,
    headings: bool | None = None,
    small_hand: bool | None = None,
) -> Clip:
    """One video; page count, frame size, transitions (one per page change) and pen are drawn unless given; `plan`
    gives each page's writing: "blank", "dense" (dense print, blank), "written" (before filming) or "progressive";
    `far` and `sparse` are drawn for about a third of the seeds each, from an RNG of their own so the other draws
    stay as they were: `far`, the phone is held further away (the sheet fills 60-75 % of the frame's height);
    `sparse`, each problem is one short line over a large answer box, so the homework's shared title block is much
    of what a page shows; `headings` and `small_hand` (about two in five each, an RNG of their own too): print larger
    than the body that no other page repeats in place (a section heading, a boxed instruction, the title block on the
    first page only), and handwriting hardly larger than the print."""
    if not fonts_available():
        raise FontsMissing("worksheet videos need fonts-unfonts-core, fonts-baekmuk, fonts-liberation, fonts-freefont")
    rng = random.Random(seed * 104_729 + 7)
    nrng = np.random.default_rng(seed + 555)
    w, h = size or SIZES[rng.randrange(len(SIZES))]
    count = len(plan) if plan else pages or rng.randint(3, 10)
    lang = rng.choice(("ko", "en"))
    layout = {
        "font": rng.choice(PRINT_FONTS[lang]),
        "size": rng.randint(15, 20),
        "title": ("수학 익힘 " if lang == "ko" else "Math practice ") + str(rng.randint(1, 30)),
        "name": "이름:" if lang == "ko" else "Name:",
        "first": 1,
        "per_page": rng.randint(3, 6),
        "answer": rng.choice(("box", "line", "space")),
    }
    style = random.Random(seed * 31 + 11)
    framing = 0.8 if (style.random() < 0.3 if far is None else far) else 1.0
    layout["sparse"] = style.random() < 0.3 if sparse is None else sparse
    # Drawn from an RNG of their own, so the other draws stay as they were: about two videos in five carry print
    # larger than the body that other pages do not repeat in place (`_worksheet`), and about two in five are written
    # in a hand hardly larger than the print (lines of it 1.0-1.5 times as tall as lines of print).
    extra = random.Random(seed * 53 + 19)
    layout["headings"] = extra.random() < 0.4 if headings is None else headings
    layout["first_title_only"] = extra.random() < 0.5
    small_hand = extra.random() < 0.4 if small_hand is None else small_hand
    hand_px = layout["size"] * (0.8 if lang == "ko" else 0.85) * extra.uniform(1.05, 1.6) if small_hand else None
    pen_name = pen or rng.choice(tuple(PENS))
    ink, pencil = PENS[pen_name], pen_name == "pencil"
    dense = [rng.random() < 0.25 for _ in range(count)]
    written = [not d and rng.random() < 0.55 for d in dense]
    progressive = [wr and rng.random() < 0.35 for wr in written]
    if plan:
        dense = [p == "dense" for p in plan]
        written = [p in ("written", "progressive") for p in plan]
        progressive = [p == "progressive" for p in plan]
    sheets = [_worksheet(rng, lang, layout, n + 1, dense[n], extra) for n in range(count)]
    # Print whose black carries a tint, from an RNG of its own so the other draws stay as they were: about one video
    # in two is printed in a dark ink that is not neutral (a printer's composite black, dark-blue or brown-black
    # print): its channels lose 12-30 % unequally over every mark, in a direction drawn per video.
    tint = random.Random(seed * 61 + 37)
    if tint.random() < 0.5:
        base = tint.uniform(10, 45)
        weights = [1.0, 0.0, tint.random()]
        tint.shuffle(weights)
        spread = tint.uniform(0.12, 0.3) * (255 - base)
        print_ink = np.array([base + spread * wt for wt in weights], np.float32)  # BGR
        for sheet in sheets:
            loss = (255.0 - sheet.print_.astype(np.float32).mean(axis=2, keepdims=True)) / 255.0
            sheet.print_[...] = np.clip(255.0 - loss * (255.0 - print_ink), 0, 255).astype(np.uint8)
    layers = []
    for sheet, wr in zip(sheets, written, strict=True):
        layers.append(_write(rng, sheet, lang, rng.uniform(0.3, 1.0), hand_px) if wr else [])
    holds = [rng.uniform(1.8, max(1.8, max_hold_s)) for _ in range(count)]
    transitions = list(kinds or ()) or [rng.choice(("cut", "slide", "turn")) for _ in range(count - 1)]
    durations = {"cut": 0.0, "slide": rng.uniform(0.7, 1.1), "turn": rng.uniform(0.7, 1.1)}
    skin = (rng.uniform(95, 150), rng.uniform(120, 175), rng.uniform(170, 230))
    desk = _desk(rng, nrng, w, h)
    cast = np.array([rng.uniform(0.9, 1.05), rng.uniform(0.95, 1.02), rng.uniform(0.92, 1.08)], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = (1 - rng.uniform(0.1, 0.3) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2)[..., None]
    light = (vignette * cast).astype(np.float32)
    blur = rng.choice((0.0, 0.0, 0.6, 1.0))
    noise = rng.uniform(2, 6)
    grain = [nrng.normal(0, noise, (h, w, 1)).astype(np.float32) for _ in range(6)]  # sensor noise, drawn per frame
    # The camera's colour fringes at sharp edges, from an RNG of their own so the other draws stay as they were:
    # lateral chromatic aberration (the red and blue images scaled and shifted against the green one, 0.3-1.5 px at
    # the frame's corner), the phone's sharpening that deepens them, a Bayer sensor's interpolated colours and its
    # 4:2:0 chroma (colour at half the resolution, before the H.264 encoder halves it again). Black print then shows
    # colour along its edges.
    lens = random.Random(seed * 97 + 29)
    fringes = []
    for _ in range(2):  # red, blue: scale about the frame's centre and shift, against green
        reach = lens.uniform(0.3, 1.5) * lens.choice((-1, 1))
        scale = 1 + reach / (0.5 * math.hypot(w, h))
        m = cv2.getRotationMatrix2D((w / 2 + lens.uniform(-0.1, 0.1) * w, h / 2), 0.0, scale)
        m[:, 2] += [lens.uniform(-0.4, 0.4), lens.uniform(-0.4, 0.4)]
        fringes.append(m)
    sharpen = lens.uniform(0.0, 0.8)
    subsample = lens.random() < 0.7
    mosaic = lens.random() < 0.6  # a Bayer sensor: one colour per pixel, the others interpolated (bilinear)
    path = workdir / f"worksheet{seed}.mp4"
    encoder = _encoder(path, w, h, FPS, rng.randint(21, 28))
    assert encoder.stdin is not None
    frames = 0
    starts: list[float] = []
    ends: list[float] = []
    events: list[tuple[str, float, float]] = []
    shake = np.zeros(4)
    gain = 1.0
    pose = _pose(rng, w, h, framing)
    finals = [_ink(s.print_, lay, ink, pencil) for s, lay in zip(sheets, layers, strict=True)]

    def emit(frame: np.ndarray) -> None:
        nonlocal frames, shake, gain
        shake = 0.85 * shake + nrng.normal(0, [0.8, 0.8, 0.06, 0.0015])  # px, px, degrees, zoom
        gain = float(np.clip(gain + nrng.normal(0, 0.008), 0.85, 1.1))
        m = cv2.getRotationMatrix2D((w / 2, h / 2), shake[2], 1 + shake[3])
        m[:, 2] += shake[:2]
        frame = cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        if blur:
            frame = cv2.GaussianBlur(frame, (0, 0), blur)
        for channel, m in zip((2, 0), fringes, strict=True):  # BGR: red, blue
            plane = np.ascontiguousarray(frame[..., channel])
            frame[..., channel] = cv2.warpAffine(plane, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        if sharpen:
            frame = cv2.addWeighted(frame, 1 + sharpen, cv2.GaussianBlur(frame, (0, 0), 1.2), -sharpen, 0)
        frame *= light * gain
        frame += grain[int(nrng.integers(len(grain)))] * (1 if nrng.random() < 0.5 else -1)
        if mosaic:
            bayer = np.clip(frame, 0, 255).astype(np.uint8)
            raw = np.empty((h, w), np.uint8)  # BGGR: blue at even rows and columns, red at odd ones
            raw[0::2, 0::2], raw[1::2, 1::2] = bayer[0::2, 0::2, 0], bayer[1::2, 1::2, 2]
            raw[0::2, 1::2], raw[1::2, 0::2] = bayer[0::2, 1::2, 1], bayer[1::2, 0::2, 1]
            frame = cv2.cvtColor(raw, cv2.COLOR_BayerRG2BGR).astype(np.float32)
        if subsample:
            ycc = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_BGR2YCrCb)
            chroma = cv2.resize(cv2.resize(ycc[..., 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h))
            ycc[..., 1:] = chroma
            frame = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR).astype(np.float32)
        encoder.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())  # type: ignore[union-attr]
        frames += 1

    for p in range(count):
        begin = frames / FPS
        starts.append(begin)
        steps = round(holds[p] * FPS)
        occlusion = None
        if holds[p] > 2.2 and rng.random() < 0.35:
            occlusion = (rng.uniform(0.2, holds[p] - 1.6), rng.uniform(0.4, 1.4))
            events.append(("hand", begin + occlusion[0], begin + occlusion[0] + occlusion[1]))
        writing = (rng.uniform(0.15, 0.3) * holds[p], rng.uniform(0.6, 0.85) * holds[p]) if progressive[p] else None
        if writing:
            events.append(("writing", begin + writing[0], begin + writing[1]))
        side = rng.choice((-1, 1))
        still: dict[int, np.ndarray] = {}  # the desk with the sheet, per number of answers shown
        for k in range(steps):
            t = k / FPS
            shown = len(layers[p])
            if writing:
                shown = int(len(layers[p]) * np.clip((t - writing[0]) / (writing[1] - writing[0]), 0, 1))
            if shown not in still:
                still.clear()
                still[shown] = desk.copy()
                _paste(still[shown], _ink(sheets[p].print_, layers[p][:shown], ink, pencil), pose)
            frame = still[shown].copy()
            if occlusion and occlusion[0] <= t < occlusion[0] + occlusion[1]:
                u = (t - occlusion[0]) / occlusion[1]
                reach = min(1.0, 3 * min(u, 1 - u))  # reaches in, pauses, leaves
                edge = np.array([w * (0.5 + 0.6 * side), h * 0.9])
                target = pose.mean(axis=0) + np.array([side * w * 0.05, h * 0.1])
                _hand(frame, edge + (target - edge) * reach, edge + np.array([side * w * 0.3, h * 0.3]), skin, h * 0.3)
            if writing and writing[0] <= t < writing[1]:
                u = (t - writing[0]) / (writing[1] - writing[0])
                tip = pose[0] + (pose[2] - pose[0]) * np.array([0.6, 0.2 + 0.6 * u])
                cv2.line(
                    frame,
                    tip.astype(int).tolist(),
                    (tip + np.array([h * 0.08, h * 0.12])).astype(int).tolist(),
                    (40, 40, 40),
                    max(2, h // 120),
                    cv2.LINE_AA,
                )
                _hand(frame, tip + np.array([h * 0.1, h * 0.15]), np.array([w * 1.1, h * 1.1]), skin, h * 0.25)
            emit(frame)
        ends.append(frames / FPS)
        if p == count - 1:
            break
        kind = transitions[p]
        nxt = finals[p + 1] if not progressive[p + 1] else sheets[p + 1].print_
        new_pose = pose if kind == "cut" and rng.random() < 0.5 else _pose(rng, w, h, framing)
        steps = round(durations[kind] * FPS)
        over = kind == "slide" and rng.random() < 0.4  # the next sheet is slid in on top of this one
        for k in range(steps):
            u = (k + 0.5) / steps
            frame = desk.copy()
            shift = np.array([side * w * 1.1, -h * 0.1])
            if kind == "slide" and over:
                _paste(frame, finals[p], pose)
                moving = new_pose + shift * (1 - u)
                _paste(frame, nxt, moving)
                _hand(frame, moving[1 if side > 0 else 0] * 0.5 + moving[2 if side > 0 else 3] * 0.5,
                      np.array([w * (0.5 + side), h * 0.6]), skin, h * 0.3)  # fmt: skip
            elif kind == "slide":
                if u < 0.5:
                    moving = _rotate(pose, 20 * u * side) + shift * (2 * u)
                    _paste(frame, finals[p], moving)
                else:
                    moving = _rotate(new_pose, -20 * (1 - u) * side) + shift * (2 - 2 * u)
                    _paste(frame, nxt, moving)
                edge = moving[1 if side > 0 else 0] * 0.5 + moving[2 if side > 0 else 3] * 0.5
                _hand(frame, edge, edge + np.array([side * w * 0.4, h * 0.2]), skin, h * 0.3)
            else:  # turn: the sheet folds over its left edge, the next page lies under it
                _paste(frame, nxt, new_pose)
                if u < 0.75:
                    theta = math.pi * u / 0.75
                    folded = _folded(pose, theta)
                    if abs(math.cos(theta)) > 0.04:
                        _paste(frame, finals[p] if theta < math.pi / 2 else _back(finals[p]), folded)
                    tip = (folded[1] + folded[2]) / 2
                else:
                    away = (u - 0.75) / 0.25
                    folded = _folded(pose, math.pi) + np.array([-w * 0.9 * away, 0])
                    _paste(frame, _back(finals[p]), folded)
                    tip = (folded[1] + folded[2]) / 2
                _hand(frame, tip, tip + np.array([w * 0.2, h * 0.5]), skin, h * 0.28)
            emit(frame)
        pose = new_pose
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError(f"ffmpeg failed encoding {path}")
    return Clip(path.read_bytes(), count, written, frames / FPS, starts, transitions, progressive, ends, events)


def _rotate(corners: np.ndarray, degrees: float) -> np.ndarray:
    c = corners.mean(axis=0)
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    return (corners - c) @ rot.T + c
