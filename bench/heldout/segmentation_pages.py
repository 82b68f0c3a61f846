"""Held-out exam pages for question_segmentation: NOT the tuning generator (tests/jobs/segmentation/seg_pages.py).

Different rendering code (PIL text with real TrueType/OpenType fonts from the Debian packages fonts-nanum,
fonts-noto-cjk and fonts-dejavu; Korean and English), different page geometry (A4 at 200 or 150 dpi) and different
layouts: printed labels `1.`, `2)`, `문 3.`, `Q4.`, `[5]`, boxed and circled numbers; hanging or flush indent;
section headings such as `[1~3] 다음 물음에 답하시오.`; with or without a header; one or two columns; figures, tables,
choice rows and answer boxes; numbering that does not start at 1; scans that are grey, bilevel, skewed or JPEG.

Truth per question: tight ink box (number, stem, figure/table, choices, answer box) on the clean page, the printed
number and label, the column. Nothing here is used to tune the segmenter: look at it only to evaluate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/nanum", "/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/dejavu")
KOREAN_FONTS = ("NanumGothic.ttf", "NanumMyeongjo.ttf", "NanumBarunGothic.ttf", "NotoSansCJK-Regular.ttc",
                "NotoSerifCJK-Regular.ttc")  # fmt: skip
LATIN_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansCondensed.ttf")
STYLES = ("dot", "paren", "mun", "q", "bracket", "boxed", "circled")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
KO_WORDS = (
    "다음", "그림과", "같이", "함수", "그래프", "에서", "값을", "구하시오", "옳은", "것은", "보기", "학생이",
    "삼각형", "넓이는", "직선", "위의", "점", "사이의", "거리를", "나타낸", "것이다", "자연수", "의", "합은",
    "얼마인가", "물음에", "답하시오", "모두", "고른", "표는", "조사한", "결과", "이때", "상수", "실수",
)  # fmt: skip
EN_WORDS = (
    "the", "value", "of", "find", "which", "graph", "shows", "function", "below", "choose", "correct", "answer",
    "triangle", "area", "line", "point", "distance", "between", "students", "table", "result", "when", "constant",
    "real", "number", "sum", "is", "equal", "to", "what", "following", "statements", "true", "if", "and",
)  # fmt: skip


def font_path(name: str) -> str | None:
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.is_file():
            return str(path)
    return None


def fonts_available() -> bool:
    return any(font_path(n) for n in KOREAN_FONTS) and any(font_path(n) for n in LATIN_FONTS)


@dataclass
class Question:
    number: int
    label: str
    column: int
    box: tuple[int, int, int, int]


@dataclass
class HeldoutPage:
    image: np.ndarray
    questions: list[Question]
    columns: int
    tags: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.tags.get("scan") == "jpeg":
            ok, buf = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, int(self.tags.get("quality", "80"))])
        else:
            ok, buf = cv2.imencode(".png", self.image)
        assert ok
        return buf.tobytes()


class Writer:
    def __init__(self, rng: random.Random, korean: bool, size: int) -> None:
        names = [n for n in (KOREAN_FONTS if korean else LATIN_FONTS + KOREAN_FONTS) if font_path(n)]
        path = font_path(rng.choice(names))
        assert path is not None
        self.font = ImageFont.truetype(path, size)
        self.symbols = ImageFont.truetype(font_path("NanumGothic.ttf") or path, size)  # circled numbers
        self.size = size
        self.korean = korean
        self.rng = rng
        asc, desc = self.font.getmetrics()
        self.line = asc + desc
        self.space = int(self.font.getlength(" "))

    def width(self, text: str) -> int:
        return int(self.font.getlength(text))

    def text(self, draw: ImageDraw.ImageDraw, x: int, y: int, text: str, symbols: bool = False) -> int:
        font = self.symbols if symbols else self.font
        draw.text((x, y), text, font=font, fill=0)
        return x + int(font.getlength(text))

    def sentence(self, limit: int) -> str:
        words = KO_WORDS if self.korean else EN_WORDS
        out: list[str] = []
        while True:
            word = self.rng.choice(words) if self.rng.random() > 0.1 else str(self.rng.randint(2, 99))
            trial = " ".join([*out, word])
            if self.width(trial) > limit:
                return " ".join(out) or word
            out.append(word)


def _label(style: str, number: int) -> str:
    return {
        "dot": f"{number}.",
        "paren": f"{number})",
        "mun": f"문 {number}.",
        "q": f"Q{number}.",
        "bracket": f"[{number}]",
        "boxed": f"{number}",
        "circled": CIRCLED[number - 1] if number <= len(CIRCLED) else f"{number}.",
    }[style]


def _draw_label(draw: ImageDraw.ImageDraw, w: Writer, style: str, label: str, x: int, y: int) -> int:
    """Draw a question label at (x, y); return the x where the label's ink ends."""
    if style == "boxed":
        tw = w.width(label)
        pad = max(3, w.size // 5)
        asc, _ = w.font.getmetrics()
        top = y + int(asc * 0.15) - pad
        draw.rectangle((x, top, x + tw + 2 * pad, y + asc + pad), outline=0, width=max(1, w.size // 14))
        w.text(draw, x + pad, y, label)
        return x + tw + 2 * pad
    return w.text(draw, x, y, label, symbols=style == "circled")


def _figure(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int, width: int, height: int) -> None:
    kind = rng.choice(("plot", "shape"))
    draw.rectangle((x, y, x + width, y + height), outline=0, width=2) if rng.random() < 0.5 else None
    if kind == "plot":
        draw.line((x + 10, y + height - 10, x + width - 10, y + height - 10), fill=0, width=2)
        draw.line((x + 20, y + 8, x + 20, y + height - 4), fill=0, width=2)
        pts = [(x + 20 + i * (width - 40) // 8, y + 10 + rng.randint(0, height - 30)) for i in range(9)]
        draw.line(pts, fill=0, width=2)
    else:
        cx, cy, r = x + width // 2, y + height // 2, min(width, height) // 3
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], outline=0, width=2)
        draw.ellipse((cx - r // 2, cy - r // 3, cx + r // 2, cy + 2 * r // 3), outline=0, width=2)


def _table(draw: ImageDraw.ImageDraw, w: Writer, x: int, y: int, width: int, rows: int) -> int:
    cols = w.rng.randint(3, 5)
    cell_w, cell_h = width // cols, w.line + 12
    for r in range(rows + 1):
        draw.line((x, y + r * cell_h, x + cols * cell_w, y + r * cell_h), fill=0, width=1)
    for c in range(cols + 1):
        draw.line((x + c * cell_w, y, x + c * cell_w, y + rows * cell_h), fill=0, width=1)
    for r in range(rows):
        for c in range(cols):
            w.text(draw, x + c * cell_w + 8, y + r * cell_h + 5, str(w.rng.randint(1, 99)))
    return y + rows * cell_h + 1


def _question_body(draw: ImageDraw.ImageDraw, w: Writer, style: str, x: int, y: int, width: int) -> int:
    """Stem, optional figure/table, choices and answer box from (x, y); return the y below the last row."""
    rng = w.rng
    pitch = int(w.line * rng.uniform(1.35, 1.7))
    for _ in range(rng.randint(1, 3)):
        w.text(draw, x, y, w.sentence(int(width * rng.uniform(0.55, 0.98))))
        y += pitch
    extra = rng.random()
    if extra < 0.2:
        fh = rng.randint(3 * w.line, 7 * w.line)
        _figure(draw, rng, x + rng.randint(0, 40), y + 4, rng.randint(width // 3, int(width * 0.8)), fh)
        y += fh + pitch - w.line + 10
    elif extra < 0.3:
        y = _table(draw, w, x, y + 4, int(width * rng.uniform(0.5, 0.9)), rng.randint(2, 3)) + pitch - w.line + 6
    if rng.random() < 0.65:
        marks = ["(1)", "(2)", "(3)", "(4)", "(5)"] if style == "circled" else list(CIRCLED[:5])
        items = [f"{m} {rng.randint(1, 60)}" for m in marks]
        per_row = 5 if width > 900 or rng.random() < 0.4 else rng.choice((1, 3))
        widest = max(w.width(item) for item in items) + w.size
        step = (width - widest) // (per_row - 1) if per_row > 1 else 0
        for i, item in enumerate(items):
            col = i % per_row
            w.text(draw, x + col * step, y, item, symbols=style != "circled")
            if col == per_row - 1 or i == len(items) - 1:
                y += pitch
    elif rng.random() < 0.3:
        bw, bh = int(width * rng.uniform(0.3, 0.6)), int(w.line * 1.8)
        bx = x + width - bw if rng.random() < 0.5 else x
        draw.rectangle((bx, y, bx + bw, y + bh), outline=0, width=2)
        w.text(draw, bx + 8, y + (bh - w.line) // 2, "답:" if w.korean else "Answer:")
        y += bh + pitch - w.line
    return y - pitch + w.line


def render_page(seed: int) -> HeldoutPage:
    """A held-out exam page, fully determined by `seed`."""
    rng = random.Random(seed * 7919 + 17)
    dpi = rng.choice((200, 200, 150))
    page_w, page_h = round(8.27 * dpi), round(11.69 * dpi)
    korean = rng.random() < 0.6
    size = round(rng.uniform(10.0, 12.5) / 72 * dpi)  # 10-12.5 pt
    w = Writer(rng, korean, size)
    style = rng.choice(STYLES)
    flush = rng.random() < 0.45
    two = rng.random() < 0.5
    header = rng.random() < 0.65
    headings = rng.random() < 0.35
    margin = round(0.6 * dpi)
    gutter = round(rng.uniform(0.25, 0.45) * dpi)
    columns = (
        [(margin, (page_w - gutter) // 2), ((page_w + gutter) // 2, page_w - margin)]
        if two
        else [(margin, page_w - margin)]
    )
    img = Image.new("L", (page_w, page_h), 255)
    draw = ImageDraw.Draw(img)
    top = round(0.55 * dpi)
    if header:
        title = "2학기 중간고사 수학" if korean else "Mathematics Mid-term Test"
        w.text(draw, (page_w - w.width(title)) // 2, top, title)
        sub = "이름: ________   반: ____" if korean else "Name: ________  Class: ____"
        w.text(draw, page_w - margin - w.width(sub), top + int(1.8 * w.line), sub)
        rule_y = top + int(3.3 * w.line)
        draw.line((margin, rule_y, page_w - margin, rule_y), fill=0, width=rng.choice((1, 2, 3)))
        top = rule_y + int(1.5 * w.line)
    if two and rng.random() < 0.5:
        draw.line((page_w // 2, top, page_w // 2, page_h - round(0.7 * dpi)), fill=0, width=1)
    bottom = page_h - round(0.75 * dpi)
    number = rng.choice((1, 1, 1, rng.randint(2, 15)))
    if style == "circled":
        number = min(number, 6)
    questions: list[Question] = []
    for col, (x0, x1) in enumerate(columns):
        y = top + rng.randint(0, w.line)
        gap = int(w.line * rng.uniform(1.6, 3.2))
        while True:
            if headings and rng.random() < 0.3:
                span = rng.randint(2, 4)
                text = (
                    f"[{number}~{number + span - 1}] 다음 물음에 답하시오."
                    if korean
                    else f"[{number}-{number + span - 1}] Answer the following questions."
                )
                if y + 3 * w.line > bottom:
                    break
                w.text(draw, x0, y, text)
                y += int(w.line * 2.2)
            label = _label(style, number)
            clean = img.copy()
            trial = ImageDraw.Draw(img)
            end = _draw_label(trial, w, style, label, x0, y)
            indent = (end - x0) + w.space + (0 if flush else rng.randint(0, w.size // 2))
            sx = x0 + indent
            first = w.sentence(int((x1 - sx) * rng.uniform(0.6, 0.98)))
            w.text(trial, sx, y, first)
            body_x = x0 if flush else sx
            y_end = _question_body(trial, w, style, body_x, y + int(w.line * rng.uniform(1.35, 1.7)), x1 - body_x)
            if y_end > bottom:
                img.paste(clean)
                break
            diff = np.asarray(clean, np.int16) - np.asarray(img, np.int16)
            ys, xs = np.nonzero(np.abs(diff) > 40)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            questions.append(Question(number, label, col, box))
            number += 1
            y = y_end + gap
            if style == "circled" and number > 20:
                break
    if rng.random() < 0.7:
        footer = f"- {rng.randint(1, 9)} -"
        w.text(draw, (page_w - w.width(footer)) // 2, page_h - round(0.5 * dpi), footer)
    gray = np.asarray(img, np.uint8).copy()
    tags = {
        "style": style,
        "indent": "flush" if flush else "hanging",
        "columns": "2" if two else "1",
        "header": "header" if header else "no_header",
        "headings": "headings" if headings else "no_headings",
        "lang": "ko" if korean else "en",
    }
    boxes = [q.box for q in questions]
    angle = rng.uniform(-2.5, 2.5) if rng.random() < 0.4 else 0.0
    tags["skew"] = "skewed" if angle else "level"
    if angle:
        gray, boxes = _rotate(gray, boxes, angle)
    scan = rng.choice(("grey", "bilevel", "jpeg"))
    tags["scan"] = scan
    tags["quality"] = str(rng.randint(55, 90))
    gray = _scan(rng, gray, scan)
    for q, b in zip(questions, boxes, strict=True):
        q.box = b
    return HeldoutPage(gray, questions, 2 if two else 1, tags)


def _rotate(gray: np.ndarray, boxes: list, angle: float) -> tuple[np.ndarray, list]:
    """Rotate the page; truth boxes become the tight box of each question's rotated ink (not of the rotated box)."""
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    new = []
    ink = gray < 128
    for x0, y0, x1, y1 in boxes:
        ys, xs = np.nonzero(ink[y0:y1, x0:x1])
        pts = np.stack([xs + x0, ys + y0, np.ones_like(xs)], axis=1).astype(np.float64) @ m.T
        new.append((int(pts[:, 0].min()), int(pts[:, 1].min()), int(np.ceil(pts[:, 0].max())) + 1,
                    int(np.ceil(pts[:, 1].max())) + 1))  # fmt: skip
    return out, new


def _scan(rng: random.Random, gray: np.ndarray, scan: str) -> np.ndarray:
    h, w = gray.shape
    nrng = np.random.default_rng(rng.randrange(2**32))
    if scan == "bilevel":
        img = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), rng.uniform(0.5, 1.0))
        img += nrng.normal(0, 18, img.shape).astype(np.float32)
        out = np.where(img < rng.uniform(110, 170), 0, 255).astype(np.uint8)
        for _ in range(rng.randint(50, 400)):  # salt-and-pepper dust
            out[rng.randrange(h), rng.randrange(w)] = 0
        return out
    paper = rng.uniform(200, 250)
    ink = rng.uniform(0, 80)
    img = ink + gray.astype(np.float32) / 255.0 * (paper - ink)
    img += np.linspace(rng.uniform(-20, 0), rng.uniform(0, 20), h, dtype=np.float32)[:, None]
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    img += nrng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def not_a_page(seed: int) -> tuple[str, np.ndarray]:
    """Inputs that are not exam pages: a photograph-like scene, a tiny image, a very low-resolution page."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    kind = ("photo", "tiny", "lowres")[seed % 3]
    if kind == "photo":
        h, w = 1200, 1600
        small = nrng.uniform(30, 220, (6, 8)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(12):
            cv2.ellipse(img, (rng.randrange(w), rng.randrange(h)), (rng.randint(40, 300), rng.randint(40, 300)),
                        rng.uniform(0, 180), 0, 360, rng.uniform(0, 255), -1)  # fmt: skip
        img += nrng.normal(0, 6, img.shape).astype(np.float32)
        return kind, np.clip(img, 0, 255).astype(np.uint8)
    if kind == "tiny":
        return kind, render_page(seed).image[:40:, :60].copy()
    page = render_page(seed).image
    return kind, cv2.resize(page, (page.shape[1] // 12, page.shape[0] // 12), interpolation=cv2.INTER_AREA)
