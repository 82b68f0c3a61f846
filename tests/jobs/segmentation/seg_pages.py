"""Seeded generator of exam pages with known question boxes (ground truth for question_segmentation tests).

A page is A4 at 150 dpi (1240x1754): a header closed by a rule, one or two columns (optionally split by a vertical
rule), 3-12 questions with a left-margin number and hanging indent, text lines in one of several fonts (five Hershey
fonts or PIL's bundled FreeType font), optional choice rows and figures, a centred page number, then scan noise
(half of the pages rotated up to 2 degrees, paper tint and gradient, blur, Gaussian noise, dust specks, JPEG). The
truth box of a question is the tight box of its ink on the clean page, [x0, y0, x1, y1] with x1/y1 exclusive; on a
rotated page, the axis-aligned box around that box's rotated corners.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAGE_W, PAGE_H = 1240, 1754
MARGIN = 80
BODY_TOP = 170
BODY_BOTTOM = PAGE_H - 110
MAX_SKEW_DEG = 2.0  # half of the pages are scanned this much askew at most
HERSHEY = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
)


@dataclass(frozen=True)
class ExamPage:
    image: np.ndarray  # noisy grayscale page
    boxes: list[tuple[int, int, int, int]]  # truth, reading order
    columns: int

    def encode(self, ext: str = ".png", quality: int = 90) -> bytes:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
        ok, buf = cv2.imencode(ext, self.image, params)
        assert ok
        return buf.tobytes()


class Pen:
    """Draws text in one font at one size; `height` is the line height it occupies."""

    def __init__(self, rng: random.Random) -> None:
        self.pil: ImageFont.FreeTypeFont | None = None
        if rng.random() < 0.2:
            self.pil = ImageFont.load_default(size=rng.randint(18, 24))
            self.height = int(self.pil.getbbox("Ag")[3]) + 2
        else:
            self.font = rng.choice(HERSHEY)
            target = rng.randint(15, 21)  # cap height in pixels
            (_, h), _ = cv2.getTextSize("H", self.font, 1.0, 1)
            self.scale = target / h
            self.thickness = rng.choice((1, 1, 2))
            (_, h), base = cv2.getTextSize("Hg", self.font, self.scale, self.thickness)
            self.ascent, self.height = h, h + base + self.thickness

    def width(self, text: str) -> int:
        if self.pil is not None:
            return int(self.pil.getlength(text))
        return int(cv2.getTextSize(text, self.font, self.scale, self.thickness)[0][0])

    def draw(self, page: np.ndarray, text: str, x: int, y: int) -> None:
        """Draw `text` with its line box's top-left corner at (x, y)."""
        if self.pil is not None:
            w, h = self.width(text) + 4, self.height + 4
            tile = Image.new("L", (w, h), 255)
            ImageDraw.Draw(tile).text((0, 0), text, font=self.pil, fill=0)
            region = page[y : y + h, x : x + w]
            np.minimum(region, np.asarray(tile)[: region.shape[0], : region.shape[1]], out=region)
        else:
            cv2.putText(page, text, (x, y + self.ascent), self.font, self.scale, 0, self.thickness, cv2.LINE_AA)


def _words(rng: random.Random, pen: Pen, max_width: int) -> str:
    words: list[str] = []
    while True:
        word = "".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(2, 8)))
        if rng.random() < 0.15:
            word = word.capitalize()
        if rng.random() < 0.08:
            word = str(rng.randint(2, 999))
        candidate = " ".join([*words, word])
        if pen.width(candidate) > max_width:
            return " ".join(words) if words else word[:3]
        words.append(word)


def _question_parts(rng: random.Random, pen: Pen, width: int) -> list[tuple[str, int]]:
    """The rows of a question body as (kind, height); rows are drawn later, once placed."""
    parts = [("text", pen.height) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.6:
        parts += [("choices", pen.height)] * (1 if width > 520 or rng.random() < 0.5 else 2)
    if rng.random() < 0.25:
        parts.append(("figure", rng.randint(60, 140)))
    return parts


def _draw_part(rng: random.Random, page: np.ndarray, pen: Pen, kind: str, x: int, y: int, w: int, h: int) -> None:
    if kind == "text":
        pen.draw(page, _words(rng, pen, int(w * rng.uniform(0.45, 1.0))), x, y)
    elif kind == "choices":
        n = rng.choice((4, 5))
        step = w // n
        for i in range(n):
            label = f"({i + 1}) " + _words(rng, pen, step - pen.width("(5) ") - 12)
            pen.draw(page, label, x + i * step, y)
    else:
        fw = rng.randint(120, min(300, w))
        cv2.rectangle(page, (x, y), (x + fw, y + h - 1), 0, 2)
        if rng.random() < 0.5:
            cv2.circle(page, (x + fw // 2, y + h // 2), max(8, h // 3), 0, 2, cv2.LINE_AA)
        else:
            pts = np.array([[x + 8 + i * (fw - 16) // 6, y + 8 + rng.randint(0, h - 16)] for i in range(7)], np.int32)
            cv2.polylines(page, [pts], False, 0, 2, cv2.LINE_AA)


def _header(rng: random.Random, page: np.ndarray, pen: Pen) -> None:
    title = f"Mathematics Unit Test {rng.randint(1, 9)}"
    pen.draw(page, title, (PAGE_W - pen.width(title)) // 2, 60)
    name = "Name ________  Class ____"
    pen.draw(page, name, PAGE_W - MARGIN - pen.width(name), 60 + pen.height + 12)
    if rng.random() < 0.5:
        cv2.line(page, (MARGIN, 140), (PAGE_W - MARGIN, 140), 0, 2)
    else:
        cv2.rectangle(page, (MARGIN - 10, 45), (PAGE_W - MARGIN + 10, 140), 0, 2)


def _layout(rng: random.Random, pen: Pen, n: int, columns: list[tuple[int, int]], indent: int) -> list[dict] | None:
    """Stack n questions in the columns (the first half on the left); None when they do not fit."""
    per_column = [n] if len(columns) == 1 else [(n + 1) // 2, n // 2]
    placed: list[dict] = []
    for (x0, x1), count in zip(columns, per_column, strict=True):
        y = BODY_TOP
        for _ in range(count):
            parts = _question_parts(rng, pen, x1 - x0 - indent)
            pitch = [h + rng.randint(int(0.35 * pen.height), int(0.7 * pen.height)) for _, h in parts]
            if y + sum(pitch) > BODY_BOTTOM:
                return None
            placed.append({"x": x0, "w": x1 - x0, "y": y, "parts": parts, "pitch": pitch})
            y += sum(pitch) + rng.randint(int(1.3 * pen.height), int(3.0 * pen.height))
    return placed


def render_exam_page(seed: int) -> ExamPage:
    """A noisy exam page and its questions' truth boxes, fully determined by `seed`."""
    rng = random.Random(seed)
    while True:
        pen = Pen(rng)
        two = rng.random() < 0.5
        gutter = rng.randint(50, 80)
        if two:
            mid = PAGE_W // 2
            columns = [(MARGIN, mid - gutter // 2), (mid + gutter // 2, PAGE_W - MARGIN)]
        else:
            columns = [(MARGIN, PAGE_W - MARGIN)]
        indent = pen.width("12.") + rng.randint(int(0.6 * pen.height), int(1.5 * pen.height))
        placed = _layout(rng, pen, rng.randint(3, 12), columns, indent)
        if placed and len(placed) >= 3:
            break
    page = np.full((PAGE_H, PAGE_W), 255, np.uint8)
    _header(rng, page, pen)
    if two and rng.random() < 0.5:
        cv2.line(page, (PAGE_W // 2, BODY_TOP - 10), (PAGE_W // 2, BODY_BOTTOM), 0, 1)
    boxes = []
    for number, q in enumerate(placed, start=1):
        clean = page.copy()
        pen.draw(page, f"{number}.", q["x"], q["y"])
        y = q["y"]
        for (kind, h), pitch in zip(q["parts"], q["pitch"], strict=True):
            _draw_part(rng, page, pen, kind, q["x"] + indent, y, q["w"] - indent, h)
            y += pitch
        ys, xs = np.nonzero(clean != page)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    label = f"- {rng.randint(1, 4)} -"
    pen.draw(page, label, (PAGE_W - pen.width(label)) // 2, PAGE_H - 70)
    if rng.random() < 0.5:
        page, boxes = _skew(page, boxes, rng.uniform(-MAX_SKEW_DEG, MAX_SKEW_DEG))
    return ExamPage(_scan(rng, page), boxes, 2 if two else 1)


def _skew(page: np.ndarray, boxes: list[tuple[int, int, int, int]], angle: float) -> tuple[np.ndarray, list]:
    """The page rotated as a skewed scan; each truth box becomes the axis-aligned box around its rotated corners."""
    rotation = cv2.getRotationMatrix2D((PAGE_W / 2, PAGE_H / 2), angle, 1.0)
    turned = cv2.warpAffine(page, rotation, (PAGE_W, PAGE_H), flags=cv2.INTER_LINEAR, borderValue=255)
    skewed = []
    for x0, y0, x1, y1 in boxes:
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64) @ rotation.T
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        skewed.append((int(lo[0]), int(lo[1]), int(np.ceil(hi[0])), int(np.ceil(hi[1]))))
    return turned, skewed


def _scan(rng: random.Random, page: np.ndarray) -> np.ndarray:
    """Paper tone with a lighting gradient, ink tone, blur, sensor noise and dust specks."""
    paper = rng.uniform(215, 250)
    ink = rng.uniform(10, 70)
    img = ink + (page.astype(np.float32) / 255.0) * (paper - ink)
    gx = np.linspace(0, rng.uniform(-25, 25), PAGE_W, dtype=np.float32)
    img += gx[None, :]
    sigma = rng.uniform(0.0, 0.9)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    nrng = np.random.default_rng(rng.randrange(2**32))
    img += nrng.normal(0, rng.uniform(2, 10), img.shape).astype(np.float32)
    for _ in range(rng.randint(20, 200)):
        cv2.circle(img, (rng.randrange(PAGE_W), rng.randrange(PAGE_H)), rng.choice((0, 1)), ink, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def iou(a: tuple[int, int, int, int] | list[int], b: tuple[int, int, int, int] | list[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


@dataclass(frozen=True)
class VariedPage(ExamPage):
    numbers: list[int]
    labels: list[str]


VARIED_STYLES = ("dot", "paren", "q", "bracket", "boxed", "circled")


def _draw_label(page: np.ndarray, pen: Pen, style: str, number: int, x: int, y: int) -> tuple[str, int]:
    """Draw a question label in `style` at (x, y): (the label as printed, its width)."""
    if style in ("boxed", "circled"):
        text = str(number)
        w, pad = pen.width(text), max(3, pen.height // 6)
        if style == "boxed":
            cv2.rectangle(page, (x, y - pad), (x + w + 2 * pad, y + pen.height - pad), 0, 1)
        else:
            r = max(w, pen.height) // 2 + pad
            cv2.circle(page, (x + r, y + pen.height // 2 - 1), r, 0, 1, cv2.LINE_AA)
            pad = r - w // 2
        pen.draw(page, text, x + pad, y)
        label = text if style == "boxed" else "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"[number - 1]
        return label, w + 2 * pad
    text = {"dot": f"{number}.", "paren": f"{number})", "q": f"Q{number}.", "bracket": f"[{number}]"}[style]
    pen.draw(page, text, x, y)
    return text, pen.width(text)


def render_varied_page(seed: int) -> VariedPage:
    """A tuning page with the harder layouts: label styles, flush text, section headings, no header, bilevel scans.

    Drawn with this module's pens (Hershey and PIL's bundled font); numbering may start past 1.
    """
    rng = random.Random(seed + 7_000_000)
    pen = Pen(rng)
    style = rng.choice(VARIED_STYLES)
    flush = rng.random() < 0.5
    header = rng.random() < 0.5
    two = rng.random() < 0.5
    gutter = rng.randint(50, 80)
    mid = PAGE_W // 2
    columns = (
        [(MARGIN, mid - gutter // 2), (mid + gutter // 2, PAGE_W - MARGIN)] if two else [(MARGIN, PAGE_W - MARGIN)]
    )
    page = np.full((PAGE_H, PAGE_W), 255, np.uint8)
    top = BODY_TOP if header else 70
    if header:
        _header(rng, page, pen)
    number = rng.choice((1, 1, rng.randint(2, 9)))
    boxes, numbers, labels = [], [], []
    for x0, x1 in columns:
        y = top
        while True:
            if rng.random() < 0.2 and y + 3 * pen.height < BODY_BOTTOM:
                pen.draw(page, f"[{number}-{number + 2}] Answer the questions below.", x0, y)
                y += 2 * pen.height
            if style == "circled" and number > 20:
                break
            parts = _question_parts(rng, pen, x1 - x0 - 60)
            pitch = [h + rng.randint(int(0.35 * pen.height), int(0.7 * pen.height)) for _, h in parts]
            if y + pen.height + sum(pitch) > BODY_BOTTOM:
                break
            clean = page.copy()
            label, width = _draw_label(page, pen, style, number, x0, y)
            indent = width + (pen.width(" ") if flush else rng.randint(int(0.5 * pen.height), pen.height))
            pen.draw(page, _words(rng, pen, x1 - x0 - indent), x0 + indent, y)
            yy = y + pen.height + rng.randint(int(0.35 * pen.height), int(0.7 * pen.height))
            body = x0 if flush else x0 + indent
            for (kind, h), p in zip(parts, pitch, strict=True):
                _draw_part(rng, page, pen, kind, body, yy, x1 - body, h)
                yy += p
            ys, xs = np.nonzero(clean != page)
            boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
            numbers.append(number)
            labels.append(label)
            number += 1
            y = yy + rng.randint(int(1.0 * pen.height), int(2.5 * pen.height))
    label = f"- {rng.randint(1, 4)} -"
    pen.draw(page, label, (PAGE_W - pen.width(label)) // 2, PAGE_H - 50)
    if rng.random() < 0.4:
        page, boxes = _skew(page, boxes, rng.uniform(-MAX_SKEW_DEG, MAX_SKEW_DEG))
    if rng.random() < 0.3:
        noisy = cv2.GaussianBlur(page, (0, 0), 0.7).astype(np.float32) + np.random.default_rng(seed).normal(
            0, 20, page.shape
        ).astype(np.float32)
        image = np.where(noisy < 140, 0, 255).astype(np.uint8)
    else:
        image = _scan(rng, page)
    return VariedPage(image, boxes, 2 if two else 1, numbers, labels)
