"""Held-out pages for handwriting_analysis: written by different code from the tests' tuning generator.

Never tuned on: `bench/bench_handwriting.py` only evaluates on these pages. What differs from the tuning generator
(tests/jobs/handwriting): print is typeset with real Debian fonts through PIL (Nanum and Noto CJK for Korean,
DejaVu / Liberation / FreeFont for English); handwriting is Hershey script glyphs (cv2.FONT_HERSHEY_SCRIPT_*) placed
one character at a time with jittered size, slant, rotation and baseline, Nanum Pen glyphs for Korean, and cubic
Bezier strokes for ticks, circles and digits, all bent by a smooth random displacement field; the ink is blended
multiplicatively in colour (blue and black ballpoint, red pen, grainy light pencil). Papers: grain, crumpled
shading, graph paper, manuscript grid boxes; scans: blur, heavy noise, JPEG, camera perspective and vignetting;
photos that are not pages and a low-resolution scan come from scikit-image's bundled real photographs.

Every page is BGR at 200 dpi A4 (1654 x 2339) unless it is a photo or a low-resolution scan. Each case records
whether it is written on (handwriting present, stamps and highlighter swipes excluded) and the handwritten inked
area (pixels of the writing layer at >= 35 % ink over the page area).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

A4 = (1654, 2339)  # 200 dpi
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
KO_FONTS = (
    "nanum/NanumGothic.ttf",
    "nanum/NanumMyeongjo.ttf",
    "nanum/NanumBarunGothic.ttf",
    "nanum/NanumSquareR.ttf",
    "noto/NotoSansCJK-Regular.ttc",
    "noto/NotoSerifCJK-Regular.ttc",
)
EN_FONTS = (
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSerif.ttf",
    "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "freefont/FreeSerif.ttf",
)
HAND_KO_FONT = "nanum/NanumPen.ttf"
KO_WORDS = (
    "다음",
    "중",
    "옳은",
    "것을",
    "고르시오",
    "그림과",
    "같이",
    "직각삼각형",
    "넓이를",
    "구하여라",
    "보기에서",
    "설명으로",
    "알맞은",
    "것은",
    "함수의",
    "그래프가",
    "점을",
    "지날",
    "때",
    "상수의",
    "값을",
    "구하시오",
    "학생들이",
    "실험한",
    "결과를",
    "나타낸",
    "것이다",
    "이에",
    "대한",
    "설명",
    "중",
    "주어진",
    "조건을",
    "만족하는",
    "자연수의",
    "개수는",
    "문장을",
    "읽고",
    "물음에",
    "답하시오",
    "다음",
    "글의",
    "내용과",
    "일치하지",
    "않는",
    "것은",
    "식물의",
    "광합성",
    "물질",
    "변화",
    "과정",
    "우리나라",
    "역사에서",
    "조선",
    "시대",
    "사회",
    "모습",
    "방정식의",
    "해를",
    "구하는",
    "과정",
    "확률",
    "수열",
    "삼각형의",
    "둘레",
    "원의",
    "반지름",
    "정답",
    "풀이",
)
EN_WORDS = (
    "which",
    "of",
    "the",
    "following",
    "statements",
    "is",
    "correct",
    "about",
    "the",
    "graph",
    "find",
    "the",
    "value",
    "of",
    "when",
    "the",
    "function",
    "passes",
    "through",
    "point",
    "read",
    "the",
    "passage",
    "and",
    "answer",
    "questions",
    "below",
    "choose",
    "best",
    "title",
    "for",
    "paragraph",
    "explain",
    "your",
    "reasoning",
    "in",
    "the",
    "space",
    "provided",
    "area",
    "of",
    "triangle",
    "radius",
    "circle",
    "probability",
    "sequence",
    "experiment",
    "results",
)
KO_HAND = "가나다라마바사아자차카타파하정답풀이계산그러므로넓이는입니다삼각형원의반지름"
EN_HAND = ["the", "answer", "is", "because", "so", "we", "get", "area", "equals", "then", "therefore", "sum"]
PENS = {
    "blue": ((150, 60, 25), 0.95),  # BGR, opacity
    "black": ((35, 30, 30), 0.95),
    "red": ((40, 40, 200), 0.9),
    "pencil": ((95, 95, 95), 0.55),
}


def font_path(name: str) -> Path | None:
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return folder / name
    return None


def fonts_available() -> bool:
    return font_path(KO_FONTS[0]) is not None and font_path(EN_FONTS[0]) is not None


@dataclass
class Case:
    name: str  # the case family, e.g. "print_ko", "single_mark"
    written: bool
    image: np.ndarray  # BGR
    inked: float = 0.0  # handwritten ink area / page area
    series: str = ""  # "" or the series id; `step` orders a series
    step: int = 0
    notes: dict = field(default_factory=dict)

    @property
    def gray(self) -> np.ndarray:
        return cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)


# --- print ------------------------------------------------------------------------------------------------------


def _font(rng: random.Random, korean: bool, size: int) -> ImageFont.FreeTypeFont:
    names = [n for n in (KO_FONTS if korean else EN_FONTS) if font_path(n)]
    path = font_path(rng.choice(names))
    assert path is not None
    return ImageFont.truetype(str(path), size, index=0)


def _sentence(rng: random.Random, korean: bool, chars: int) -> str:
    words = KO_WORDS if korean else EN_WORDS
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < chars:
        out.append(rng.choice(words))
    return " ".join(out)


@dataclass
class Layout:
    canvas: Image.Image  # RGB print
    answer_spaces: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 blank places to write
    choices: list[tuple[int, int, int]]  # (cx, cy, r) centres of printed choice numbers


def typeset(rng: random.Random, korean: bool, size: tuple[int, int] = A4, boxes: bool = True) -> Layout:
    """A printed exam page: title, numbered questions, choice rows, answer spaces (some boxed)."""
    width, height = size
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    em = rng.randint(26, 36)
    body = _font(rng, korean, em)
    margin = int(width * rng.uniform(0.07, 0.11))
    title_font = _font(rng, korean, int(em * 1.5))
    draw.text((margin, int(height * 0.04)), _sentence(rng, korean, 14 if korean else 28), font=title_font, fill=0)
    y = int(height * 0.04 + em * 3)
    spaces: list[tuple[int, int, int, int]] = []
    choices: list[tuple[int, int, int]] = []
    number = 1
    per_line = int((width - 2 * margin) / (em * (1.0 if korean else 0.5)))
    while y < height * 0.86:
        draw.text((margin, y), f"{number}.", font=body, fill=0)
        for _ in range(rng.randint(1, 3)):
            draw.text(
                (margin + int(em * 1.6), y),
                _sentence(rng, korean, int(per_line * rng.uniform(0.6, 0.92))),
                font=body,
                fill=0,
            )
            y += int(em * 1.6)
        if rng.random() < 0.6:
            marks = "①②③④⑤" if rng.random() < 0.6 else "12345"
            step = (width - 2 * margin - em * 2) // 5
            for i, mark in enumerate(marks):
                x = margin + int(em * 1.6) + i * step
                label = mark if len(marks) == 5 and mark in "①②③④⑤" else f"({mark})"
                draw.text((x, y), f"{label} {rng.randint(2, 99)}", font=body, fill=0)
                choices.append((x + em // 2, y + int(em * 0.6), em))
            y += int(em * 1.8)
        space = int(em * rng.uniform(5, 9))
        box = (margin + em, y + em // 3, width - margin, y + space - em // 2)
        if boxes and rng.random() < 0.4:
            draw.rectangle(box, outline=0, width=rng.choice((1, 2)))
        spaces.append(box)
        y += space
        number += 1
    return Layout(canvas, spaces, choices)


# --- handwriting --------------------------------------------------------------------------------------------------


class Hand:
    """One writer: a float ink layer (0..1) drawn into at 8x sub-pixel precision, bent at the end."""

    def __init__(self, rng: random.Random, size: tuple[int, int], height: float, thickness: int) -> None:
        self.rng = rng
        self.layer = np.zeros((size[1], size[0]), np.uint8)
        self.height = height  # x-height-ish of the writing in pixels
        self.thickness = thickness
        self.slant = rng.uniform(-0.15, 0.35)
        self.script = rng.choice((cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX))
        self.warp_seed = rng.randrange(2**32)  # the same bend whatever is written

    def glyph(self, char: str, x: float, base: float) -> float:
        """A Hershey script glyph with its own size, slant and rotation; returns the advance."""
        scale = self.height / 14 * self.rng.uniform(0.85, 1.15)
        (w, h), _ = cv2.getTextSize(char, self.script, scale, self.thickness)
        pad = int(h + self.thickness * 4)
        tile = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
        cv2.putText(tile, char, (pad, pad + h), self.script, scale, 255, self.thickness, cv2.LINE_AA)
        angle = self.rng.gauss(0, 6)
        matrix = cv2.getRotationMatrix2D((tile.shape[1] / 2, tile.shape[0] / 2), angle, 1.0)
        matrix[0, 1] += -self.slant
        matrix[0, 2] += self.slant * tile.shape[0] / 2
        tile = cv2.warpAffine(tile, matrix, (tile.shape[1], tile.shape[0]))
        self._paste(tile, int(x - pad), int(base + self.rng.gauss(0, self.height * 0.08) - pad - h))
        return w * self.rng.uniform(0.8, 1.0)

    def korean(self, text: str, x: float, base: float) -> float:
        path = font_path(HAND_KO_FONT)
        start = x
        for char in text:
            size = int(self.height * 2.2 * self.rng.uniform(0.85, 1.15))
            if path is None:  # strokes instead of the pen font
                x += self._bezier_glyph(x, base, size)
                continue
            font = ImageFont.truetype(str(path), size)
            tile = Image.new("L", (size * 2, size * 2), 0)
            ImageDraw.Draw(tile).text((size // 2, size // 2), char, font=font, fill=255)
            arr = np.asarray(tile)
            if self.thickness > 2:
                arr = cv2.dilate(arr, np.ones((2, 2), np.uint8))
            matrix = cv2.getRotationMatrix2D((size, size), self.rng.gauss(0, 5), 1.0)
            matrix[0, 1] -= self.slant * 0.5
            arr = cv2.warpAffine(arr, matrix, (size * 2, size * 2))
            self._paste(arr, int(x - size // 2), int(base - size * 1.3 + self.rng.gauss(0, self.height * 0.1)))
            x += size * self.rng.uniform(0.75, 0.95)
        return x - start

    def _bezier_glyph(self, x: float, base: float, size: int) -> float:
        for _ in range(self.rng.randint(2, 4)):
            p = [(x + self.rng.uniform(0, size * 0.8), base - self.rng.uniform(0, size)) for _ in range(4)]
            self.bezier(p)
        return size * 0.9

    def bezier(self, points: list[tuple[float, float]], samples: int = 40) -> None:
        t = np.linspace(0, 1, samples)[:, None]
        p0, p1, p2, p3 = (np.array(p, np.float64) for p in points)
        curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        curve += np.cumsum(np.random.default_rng(self.rng.randrange(2**32)).normal(0, 0.25, curve.shape), axis=0)
        pts = (curve * 8).astype(np.int32)
        cv2.polylines(self.layer, [pts], False, 255, self.thickness, cv2.LINE_AA, shift=3)

    def word(self, text: str, x: float, base: float) -> float:
        start = x
        if any("\uac00" <= c <= "\ud7a3" for c in text):
            return self.korean(text, x, base)
        for char in text:
            x += self.glyph(char, x, base + (x - start) * self.rng.uniform(-0.02, 0.02))
        return x - start

    def tick(self, cx: float, cy: float) -> None:
        s = self.height * self.rng.uniform(1.2, 2.0)
        low = (cx, cy + s * 0.4)
        self.bezier([(cx - s * 0.5, cy - s * 0.05), (cx - s * 0.3, cy + s * 0.15), low, low], 20)
        self.bezier([low, (cx + s * 0.2, cy - s * 0.2), (cx + s * 0.5, cy - s * 0.7), (cx + s * 0.8, cy - s)], 30)

    def circle(self, cx: float, cy: float, r: float) -> None:
        """A hand-drawn loop around (cx, cy): an ellipse that does not close where it started."""
        a, b = r * self.rng.uniform(1.3, 1.9), r * self.rng.uniform(0.9, 1.3)
        start = self.rng.uniform(0, math.tau)
        sweep = math.tau * self.rng.uniform(1.05, 1.2)
        t = np.linspace(start, start + sweep, 80)
        wobble = 1 + 0.06 * np.sin(t * self.rng.uniform(2, 4)) + np.linspace(0, self.rng.uniform(-0.15, 0.15), 80)
        pts = np.stack([cx + a * wobble * np.cos(t), cy + b * wobble * np.sin(t)], axis=1)
        cv2.polylines(self.layer, [(pts * 8).astype(np.int32)], False, 255, self.thickness, cv2.LINE_AA, shift=3)

    def _paste(self, tile: np.ndarray, x: int, y: int) -> None:
        h, w = self.layer.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + tile.shape[1]), min(h, y + tile.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        region = self.layer[y0:y1, x0:x1]
        np.maximum(region, tile[y0 - y : y1 - y, x0 - x : x1 - x], out=region)

    def bent(self) -> np.ndarray:
        """The layer (float 0..1) bent by a smooth random displacement of a few pixels."""
        h, w = self.layer.shape
        nrng = np.random.default_rng(self.warp_seed)
        small = (max(2, w // 40), max(2, h // 40))
        dx = cv2.resize(nrng.normal(0, 2.0, (small[1], small[0])).astype(np.float32), (w, h), cv2.INTER_CUBIC)
        dy = cv2.resize(nrng.normal(0, 2.0, (small[1], small[0])).astype(np.float32), (w, h), cv2.INTER_CUBIC)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = cv2.remap(self.layer, gx + dx, gy + dy, cv2.INTER_LINEAR)
        return out.astype(np.float32) / 255.0


def ink(page: np.ndarray, alpha: np.ndarray, pen: str, rng: random.Random) -> np.ndarray:
    """Blend a writing layer onto a BGR page multiplicatively, with the pen's colour and opacity."""
    color, opacity = PENS[pen]
    a = alpha * opacity
    if pen == "pencil":
        grain = np.random.default_rng(rng.randrange(2**32)).uniform(0.45, 1.0, alpha.shape).astype(np.float32)
        a = a * grain * rng.uniform(0.7, 1.0)
    tint = np.array(color, np.float32) / 255.0
    out = page.astype(np.float32) * (1 - a[..., None] * (1 - tint[None, None, :]))
    return np.clip(out, 0, 255).astype(np.uint8)


def write_items(rng: random.Random, layout: Layout, korean: bool, count: int) -> list[Callable[[Hand], None]]:
    """Up to `count` things a student writes into the answer spaces: words, calculations, ticks and circles."""
    items: list[Callable[[Hand], None]] = []
    spaces = list(layout.answer_spaces)
    rng.shuffle(spaces)
    for x0, y0, x1, y1 in spaces:
        line_pitch = rng.uniform(55, 75)
        base = y0 + line_pitch
        while base < y1 - 10 and len(items) < count:
            kind = rng.random()
            start = x0 + rng.uniform(20, 120)
            end = x0 + (x1 - x0) * rng.uniform(0.4, 0.95)

            seed = rng.randrange(2**32)

            def line(
                hand: Hand,
                start: float = start,
                end: float = end,
                base: float = base,
                kind: float = kind,
                seed: int = seed,
            ) -> None:
                rng = random.Random(seed)  # the same words whenever the item is drawn
                x = start
                while x < end:
                    if kind < 0.35:
                        token = f"{rng.randint(2, 99)}{rng.choice('+-x=')}{rng.randint(1, 9)}"
                    elif korean and kind < 0.75:
                        token = "".join(rng.choice(KO_HAND) for _ in range(rng.randint(2, 4)))
                    else:
                        token = rng.choice(EN_HAND)
                    x += hand.word(token, x, base) + hand.height * rng.uniform(0.8, 1.5)

            items.append(line)
            base += line_pitch
    return items[:count]


def _hand(rng: random.Random, size: tuple[int, int], pen: str) -> Hand:
    return Hand(rng, size, rng.uniform(16, 26), 2 if pen == "pencil" else rng.choice((2, 2, 3)))


# --- paper and scan -----------------------------------------------------------------------------------------------


def paper(rng: random.Random, size: tuple[int, int], kind: str = "plain") -> np.ndarray:
    """A BGR sheet: tone, fibres, and optionally crumple shading, graph paper or manuscript grid boxes."""
    w, h = size
    nrng = np.random.default_rng(rng.randrange(2**32))
    tone = np.array([rng.uniform(225, 252)] * 3, np.float32) + np.array([rng.uniform(-8, 0), 0, rng.uniform(0, 6)])
    img = np.ones((h, w, 3), np.float32) * tone
    fibres = np.zeros((h, w), np.float32)
    for scale, amp in ((1, 4), (3, 5), (9, 4)):
        n = cv2.GaussianBlur(nrng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), scale)
        fibres += n / (n.std() + 1e-6) * amp * (rng.uniform(0.8, 2.0) if kind == "texture" else 0.6)
    img += fibres[..., None]
    if kind == "crumpled":
        height_field = np.zeros((h, w), np.float32)
        for _ in range(rng.randint(8, 16)):  # creases: folded ridges across the sheet
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            angle = rng.uniform(0, math.pi)
            nx, ny = math.cos(angle), math.sin(angle)
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            dist = (gx - x0) * nx + (gy - y0) * ny
            height_field += rng.uniform(5, 25) * np.abs(dist) / (np.abs(dist) + rng.uniform(20, 80))
        height_field += cv2.GaussianBlur(nrng.normal(0, 30, (h, w)).astype(np.float32), (0, 0), 40)
        gy_, gx_ = np.gradient(height_field)
        light = (gx_ * rng.uniform(-1, 1) + gy_ * rng.uniform(-1, 1)) * rng.uniform(30, 60)
        img += np.clip(light, -70, 40)[..., None]
    elif kind == "graph":
        color = rng.choice(((200, 180, 120), (150, 200, 150), (170, 170, 170), (210, 170, 140)))
        pitch = rng.choice((32, 40, 48))
        for i, pos in enumerate(range(rng.randint(0, pitch), max(w, h), pitch)):
            thick = 2 if i % 5 == 0 else 1
            if pos < w:
                cv2.line(img, (pos, 0), (pos, h), color, thick, cv2.LINE_AA)
            if pos < h:
                cv2.line(img, (0, pos), (w, pos), color, thick, cv2.LINE_AA)
    elif kind == "boxes":  # manuscript paper: rows of square boxes
        color = rng.choice(((60, 60, 200), (90, 150, 90), (60, 60, 60)))
        cell = rng.choice((44, 52, 60))
        top = int(h * rng.uniform(0.25, 0.45))
        for row in range(rng.randint(4, 10)):
            y = top + row * int(cell * 1.5)
            if y + cell > h - 40:
                break
            for col in range((w - 160) // cell):
                x = 80 + col * cell
                cv2.rectangle(img, (x, y), (x + cell, y + cell), color, rng.choice((1, 2)))
    return np.clip(img, 0, 255).astype(np.uint8)


def lay_print(sheet: np.ndarray, layout: Layout, darkness: float = 1.0) -> np.ndarray:
    printed = np.asarray(layout.canvas, np.float32) / 255.0
    printed = 1 - (1 - printed) * darkness
    return (sheet.astype(np.float32) * printed[..., ::-1]).clip(0, 255).astype(np.uint8)


def scan(rng: random.Random, page: np.ndarray, noise: str = "normal", camera: bool = False) -> np.ndarray:
    nrng = np.random.default_rng(rng.randrange(2**32))
    img = page.astype(np.float32)
    h, w = page.shape[:2]
    if camera:
        shift = w * 0.04
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = src + np.float32([[rng.uniform(-shift, shift), rng.uniform(-shift, shift)] for _ in range(4)])
        img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(90, 80, 70))
        gx, gy = np.meshgrid(np.linspace(-1, 1, w, dtype=np.float32), np.linspace(-1, 1, h, dtype=np.float32))
        img *= (1 - rng.uniform(0.15, 0.3) * (gx**2 + gy**2) / 2)[..., None]
    else:
        angle = rng.uniform(-1.2, 1.2)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    img += np.linspace(rng.uniform(-20, 0), rng.uniform(0, 15), w, dtype=np.float32)[None, :, None]
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.0))
    if noise == "heavy":
        img += nrng.normal(0, rng.uniform(18, 30), img.shape[:2]).astype(np.float32)[..., None]
        salt = nrng.random(img.shape[:2])
        img[salt < 0.01] = 20
        img[salt > 0.99] = 250
        quality = rng.randint(35, 55)
    else:
        img += nrng.normal(0, rng.uniform(2, 6), img.shape[:2]).astype(np.float32)[..., None]
        quality = rng.randint(70, 92)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def stamp(rng: random.Random, page: np.ndarray, korean: bool) -> np.ndarray:
    """A red seal: a ring (or square) with text inside, translucent red over whatever is below."""
    h, w = page.shape[:2]
    layer = np.zeros((h, w), np.uint8)
    r = rng.randint(70, 120)
    cx, cy = rng.randint(r + 20, w - r - 20), rng.randint(r + 20, int(h * 0.3))
    if rng.random() < 0.7:
        cv2.circle(layer, (cx, cy), r, 255, rng.randint(5, 9), cv2.LINE_AA)
        cv2.circle(layer, (cx, cy), r - 16, 255, 2, cv2.LINE_AA)
    else:
        cv2.rectangle(layer, (cx - r, cy - r), (cx + r, cy + r), 255, rng.randint(6, 10))
    text = "검인" if korean else "CHECKED"
    path = font_path(KO_FONTS[0] if korean else EN_FONTS[0])
    if path is not None:
        tile = Image.fromarray(layer)
        font = ImageFont.truetype(str(path), int(r * (0.7 if korean else 0.35)))
        ImageDraw.Draw(tile).text((cx, cy), text, font=font, fill=255, anchor="mm")
        layer = np.asarray(tile).copy()
    layer = cv2.GaussianBlur(layer, (0, 0), 1.2)
    grain = np.random.default_rng(rng.randrange(2**32)).uniform(0.5, 1.0, layer.shape).astype(np.float32)
    return ink(page, layer.astype(np.float32) / 255.0 * grain, "red", rng)


def highlight(rng: random.Random, page: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """One to three broad translucent highlighter swipes (yellow, green, pink), over print lines."""
    h, w = page.shape[:2]
    color = np.array(rng.choice(((80, 250, 255), (120, 255, 140), (200, 140, 255))), np.float32) / 255.0
    layer = np.zeros((h, w), np.uint8)
    for _ in range(rng.randint(1, 3)):
        x0, y0, x1, _ = rng.choice(boxes) if boxes else (100, 400, w - 100, 0)
        y = y0 - rng.randint(10, 60)
        length = rng.uniform(0.3, 0.9) * (x1 - x0)
        cv2.line(layer, (x0 + 20, y), (int(x0 + 20 + length), y + rng.randint(-8, 8)), 255, rng.randint(26, 44))
    a = cv2.GaussianBlur(layer, (0, 0), 2).astype(np.float32) / 255.0 * rng.uniform(0.6, 0.85)
    out = page.astype(np.float32) * (1 - a[..., None] * (1 - color[None, None, :]))
    return np.clip(out, 0, 255).astype(np.uint8)


# --- photos that are not pages ------------------------------------------------------------------------------------


def photos() -> list[tuple[str, np.ndarray]]:
    """Real photographs bundled with scikit-image: a person, a desk with a cup, a wall, a cat, a rocket, a bike."""
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "brick", "chelsea", "rocket", "motorcycle_left", "grass", "gravel"):
        try:
            img = getattr(data, name)()
        except Exception:
            continue
        img = np.asarray(img)
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        out.append((name, bgr))
    return out


def lowres_print(rng: random.Random, korean: bool) -> np.ndarray:
    """A printed page scanned small (60-90 dpi), blurred and JPEG-compressed."""
    dpi = rng.randint(60, 90)
    size = (int(A4[0] * dpi / 200), int(A4[1] * dpi / 200))
    layout = typeset(rng, korean)
    page = lay_print(paper(rng, A4), layout)
    small = cv2.resize(page, size, interpolation=cv2.INTER_AREA)
    return scan(rng, small)


# --- cases --------------------------------------------------------------------------------------------------------


def _written_page(
    rng: random.Random, korean: bool, pen: str, count: int, kind: str = "plain"
) -> tuple[np.ndarray, float, Layout]:
    layout = typeset(rng, korean)
    sheet = lay_print(paper(rng, A4, kind), layout)
    hand = _hand(rng, A4, pen)
    for item in write_items(rng, layout, korean, count):
        item(hand)
    alpha = hand.bent()
    return ink(sheet, alpha, pen, rng), float((alpha >= 0.35).mean()), layout


def build(seed: int = 20261130) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    # no writing
    for i in range(10):
        layout = typeset(rng, korean=True)
        cases.append(Case("print_ko", False, scan(rng, lay_print(paper(rng, A4), layout), camera=i % 4 == 3)))
    for i in range(5):
        layout = typeset(rng, korean=False)
        cases.append(Case("print_en", False, scan(rng, lay_print(paper(rng, A4), layout), camera=i % 4 == 3)))
    for kind in ("texture", "crumpled"):
        for i in range(4):
            page = paper(rng, A4, kind)
            if i % 2:
                page = lay_print(page, typeset(rng, korean=i % 4 == 1))
            cases.append(Case(f"paper_{kind}", False, scan(rng, page)))
    for i in range(4):
        page = paper(rng, A4)
        if i % 2:
            page = lay_print(page, typeset(rng, korean=True))
        cases.append(Case("scan_noise", False, scan(rng, page, noise="heavy")))
    for kind in ("graph", "boxes"):
        for i in range(3):
            page = paper(rng, A4, kind)
            if i == 1:
                page = lay_print(page, typeset(rng, korean=True, boxes=False))
            cases.append(Case(f"grid_{kind}", False, scan(rng, page)))
    for i in range(3):
        layout = typeset(rng, korean=i != 1)
        cases.append(Case("stamp_only", False, scan(rng, stamp(rng, lay_print(paper(rng, A4), layout), i != 1))))
    for i in range(3):
        layout = typeset(rng, korean=i != 1)
        page = highlight(rng, lay_print(paper(rng, A4), layout), layout.answer_spaces)
        cases.append(Case("highlighter_only", False, scan(rng, page)))
    for name, image in photos():
        cases.append(Case("not_a_page", False, image, notes={"photo": name}))
    for i in range(4):
        cases.append(Case("lowres_print", False, lowres_print(rng, korean=i % 2 == 0)))
    try:
        from skimage import data

        cases.append(
            Case("lowres_print", False, cv2.cvtColor(data.page(), cv2.COLOR_GRAY2BGR), notes={"photo": "page"})
        )
    except Exception:
        pass
    # writing
    for i in range(12):
        korean = i % 3 != 2
        pen = ("blue", "black", "red", "blue")[i % 4]
        image, inked, _ = _written_page(rng, korean, pen, rng.randint(3, 12))
        cases.append(Case("ordinary", True, scan(rng, image, camera=i % 5 == 4), inked))
    for i in range(6):
        image, inked, _ = _written_page(rng, i % 2 == 0, "pencil", rng.randint(3, 10))
        cases.append(Case("light_pencil", True, scan(rng, image), inked))
    for i in range(9):
        korean = i % 3 != 2
        layout = typeset(rng, korean)
        sheet = lay_print(paper(rng, A4), layout)
        pen = ("blue", "black", "pencil")[i % 3]
        hand = _hand(rng, A4, pen)
        what = ("tick", "circle", "answer")[i % 3]
        if what == "circle" and layout.choices:
            cx, cy, r = rng.choice(layout.choices)
            hand.circle(cx + r * 0.6, cy, r * 0.9)
        elif what == "tick":
            x0, y0, x1, y1 = rng.choice(layout.answer_spaces)
            hand.tick(rng.uniform(x0 + 50, x1 - 50), (y0 + y1) / 2)
        else:
            x0, y0, x1, y1 = rng.choice(layout.answer_spaces)
            hand.word(rng.choice(("12", "x=5", "정답 3" if korean else "yes", "42")), x0 + 80, (y0 + y1) / 2)
        alpha = hand.bent()
        cases.append(
            Case(
                "single_mark",
                True,
                scan(rng, ink(sheet, alpha, pen, rng)),
                float((alpha >= 0.35).mean()),
                notes={"mark": what},
            )
        )
    for i in range(4):
        image, inked, layout = _written_page(rng, i % 2 == 0, ("blue", "black")[i % 2], rng.randint(4, 10))
        cases.append(Case("pen_highlighter", True, scan(rng, highlight(rng, image, layout.answer_spaces)), inked))
    for i in range(3):
        image, inked, _ = _written_page(rng, i != 1, "blue", rng.randint(3, 8))
        cases.append(Case("pen_stamp", True, scan(rng, stamp(rng, image, i != 1)), inked))
    for i in range(4):
        kind = ("texture", "crumpled", "graph", "boxes")[i]
        image, inked, _ = _written_page(rng, True, ("blue", "pencil", "black", "blue")[i], rng.randint(3, 8), kind)
        cases.append(Case("written_on_paper", True, scan(rng, image), inked))
    # monotone series: the same page with 0, 15, 45 and 100 % of the same marks
    for s in range(10):
        korean = s % 3 != 2
        pen = ("blue", "pencil", "black", "pencil", "red")[s % 5]
        srng = random.Random(seed * 7 + s)
        layout = typeset(srng, korean)
        sheet = lay_print(paper(srng, A4, ("plain", "texture")[s % 2]), layout)
        items = write_items(srng, layout, korean, 14)
        scan_seed = srng.randrange(2**32)
        for step, share in enumerate((0.0, 0.15, 0.45, 1.0)):
            hand = _hand(random.Random(seed * 11 + s), A4, pen)
            hand.rng = random.Random(seed * 13 + s)  # the same strokes at every step
            for item in items[: round(share * len(items))]:
                item(hand)
            alpha = hand.bent()
            image = scan(random.Random(scan_seed), ink(sheet, alpha, pen, random.Random(scan_seed)))
            cases.append(Case("series", step > 0, image, float((alpha >= 0.35).mean()), f"s{s}-{pen}", step))
    return cases
