"""Second tuning generator: exam pages set in TrueType fonts (bold and rounded Nanum/Noto/DejaVu faces), Korean and
English, at 180-240 dpi, for tuning question_segmentation on real glyphs without touching the held-out set.

It shares no code with bench/heldout/segmentation_pages.py: other faces, other page geometry, other scan model
(Otsu-thresholded bilevel, photocopy speckle, faded copies with grey ink on grey paper, JPEG through PIL) and other
layouts (choices one per line, ruled tables, hairline or dotted column rules, labels `문제 N.`-free, headings with ※,
double rules, headers with no rule under them; `문 N.` in a Latin face draws its missing-glyph box). Truth: the tight
box of each question's ink, its number and label.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FACES = (
    "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumSquareR.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothicBold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumMyeongjoBold.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumMyeongjo.ttf",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
)
SYMBOL_FACE = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"
LABELS = ("dot", "paren", "mun", "q", "bracket", "boxed", "circled")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
HANGUL = "가나다라마바사아자차카타파하고노도로모보소오조초코토포호구누두루무부수우주추쿠투푸후그느드르므브스으즈"


def faces() -> list[str]:
    return [f for f in FACES if Path(f).is_file()]


@dataclass(frozen=True)
class FontPage:
    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    numbers: list[int]
    labels: list[str]
    columns: int
    kind: str
    tags: dict[str, str] = field(default_factory=dict)  # lang, style, indent, columns, scan, skew: for breakdowns

    def encode(self) -> bytes:
        if "jpeg" in self.kind:
            buf = io.BytesIO()
            Image.fromarray(self.image).save(buf, format="JPEG", quality=70)
            return buf.getvalue()
        ok, png = cv2.imencode(".png", self.image)
        assert ok
        return png.tobytes()


def _word(rng: random.Random, korean: bool) -> str:
    if rng.random() < 0.08:
        return str(rng.randint(1, 500))
    if korean:
        return "".join(rng.choice(HANGUL) for _ in range(rng.randint(1, 4)))
    return "".join(rng.choice("etaoinshrdlucmfwypvbgk") for _ in range(rng.randint(1, 9)))


def _line(rng: random.Random, font: ImageFont.FreeTypeFont, width: float, korean: bool) -> str:
    words = [_word(rng, korean)]
    while True:
        word = _word(rng, korean)
        if font.getlength(" ".join([*words, word])) > width:
            return " ".join(words)
        words.append(word)


def render_font_page(seed: int) -> FontPage:
    rng = random.Random(seed * 31 + 5)
    dpi = rng.choice((150, 180, 200, 220, 240))
    w, h = int(8.27 * dpi), int(11.69 * dpi)
    pt = rng.uniform(9.5, 12.0)
    px = int(pt * dpi / 72)
    face = rng.choice(faces())
    font = ImageFont.truetype(face, px)
    symbols = ImageFont.truetype(SYMBOL_FACE if Path(SYMBOL_FACE).is_file() else face, px)
    korean = "DejaVu" not in face and rng.random() < 0.7
    style = rng.choice(LABELS)
    frame_width = rng.choice((1, 2, 2))  # boxed labels: a hairline or a 2 px frame
    flush = rng.random() < 0.5
    two = rng.random() < 0.5
    lead = int(px * rng.uniform(1.5, 1.9))
    extra = random.Random(seed * 131 + 17)  # tables and column rules: a stream of their own (the rest stays as it was)
    tables, column_rule = 0, "none"
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    side = int(0.7 * dpi)
    y_top = int(0.5 * dpi)
    if rng.random() < 0.6:
        d.text((side, y_top), "수학 영역" if korean else "MATH SECTION", font=font, fill=0)
        who = "성명 ________ 번호 ____" if korean else "Name ________ No. ____"
        d.text((w - side - int(font.getlength(who)), y_top + lead), who, font=font, fill=0)
        y_top += 3 * lead
        ruled = seed % 10 != 9  # a tenth of the headers have no rule under them (title and name field only)
        if rng.random() < 0.5 and ruled:
            d.line((side, y_top, w - side, y_top), fill=0, width=3)
            d.line((side, y_top + 5, w - side, y_top + 5), fill=0, width=1)
        elif ruled:
            d.line((side, y_top, w - side, y_top), fill=0, width=1)
        y_top += lead
    gut = int(0.35 * dpi)
    cols = [(side, w // 2 - gut // 2), (w // 2 + gut // 2, w - side)] if two else [(side, w - side)]
    n = rng.choice((1, 1, rng.randint(1, 12)))
    n = min(n, 8) if style == "circled" else n
    boxes, numbers, labels = [], [], []
    owner = np.zeros((h, w), np.uint8)  # which question each ink pixel belongs to (1-based), for skewed truth
    for x0, x1 in cols:
        y = y_top
        while y < h - 1.5 * dpi:
            if rng.random() < 0.15:
                ask = "다음을 읽고 물음에 답하시오." if korean else "Read and answer."
                d.text((x0, y), f"※ [{n}~{n + 1}] {ask}",
                       font=font, fill=0)  # fmt: skip
                y += lead * 2
            before = np.asarray(img).copy()
            label = {"dot": f"{n}.", "paren": f"{n})", "mun": f"문 {n}.", "q": f"Q{n}.", "bracket": f"[{n}]"}.get(
                style, str(n) if style == "boxed" else CIRCLED[min(n, 20) - 1]
            )
            if style == "boxed":
                tw = int(font.getlength(label))
                d.rectangle((x0, y - 2, x0 + tw + 10, y + px + 4), outline=0, width=frame_width)
                d.text((x0 + 5, y), label, font=font, fill=0)
                lw = tw + 10
            else:
                f = symbols if style == "circled" else font
                d.text((x0, y), label, font=f, fill=0)
                lw = int(f.getlength(label))
            indent = lw + int(font.getlength(" ")) * (1 if flush else rng.randint(2, 3))
            d.text((x0 + indent, y), _line(rng, font, (x1 - x0 - indent) * rng.uniform(0.5, 1.0), korean), font=font,
                   fill=0)  # fmt: skip
            bx = x0 if flush else x0 + indent
            for _ in range(rng.randint(0, 3)):
                y += lead
                d.text((bx, y), _line(rng, font, (x1 - bx) * rng.uniform(0.4, 1.0), korean), font=font, fill=0)
            if rng.random() < 0.25:
                y += lead
                fw, fh = int((x1 - bx) * rng.uniform(0.3, 0.7)), rng.randint(3 * px, 8 * px)
                arr = np.asarray(img).copy()
                if extra.random() < 0.4:  # a table as wide as the text or most of it, ruled across
                    # (in the figure's height: the page's layout, and so its random stream, stays as it was)
                    fw, rows = int((x1 - bx) * extra.uniform(0.7, 1.0)), max(2, fh // int(lead * 1.2))
                    pitch = fh // rows
                    tables += 1
                    for r in range(rows + 1):
                        cv2.line(arr, (bx, y + r * pitch), (bx + fw, y + r * pitch), 0, extra.choice((1, 2)))
                    if extra.random() < 0.5:
                        for c in range(4):
                            cv2.line(arr, (bx + c * fw // 3, y), (bx + c * fw // 3, y + fh), 0, 1)
                    img.paste(Image.fromarray(arr))
                    d = ImageDraw.Draw(img)
                    for r in range(rows):
                        for c in range(3):
                            cell = str(extra.randint(1, 99))
                            d.text((bx + c * fw // 3 + px // 2, y + r * pitch + (pitch - px) // 2), cell, font=font,
                                   fill=0)  # fmt: skip
                else:
                    cv2.rectangle(arr, (bx, y), (bx + fw, y + fh), 0, 2)
                    cv2.line(arr, (bx + 5, y + fh - 5), (bx + fw - 5, y + 5), 0, 2)
                    img.paste(Image.fromarray(arr))
                    d = ImageDraw.Draw(img)
                y += fh - lead + px
            if rng.random() < 0.6:
                marks = ["ㄱ", "ㄴ", "ㄷ", "ㄹ", "ㅁ"] if style == "circled" else list(CIRCLED[:5])
                per_line = rng.choice((1, 5)) if x1 - bx > 25 * px else 1
                for k, m in enumerate(marks):
                    if k % per_line == 0:
                        y += lead
                    step = (x1 - bx) // per_line
                    d.text((bx + (k % per_line) * step, y), f"{m} {rng.randint(1, 99)}", font=symbols, fill=0)
            y += lead
            if y > h - 1.2 * dpi:
                img.paste(Image.fromarray(before))
                d = ImageDraw.Draw(img)
                break
            ys, xs = np.nonzero(np.asarray(img) != before)
            owner[ys, xs] = len(boxes) + 1
            boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
            numbers.append(n)
            labels.append(label)
            n += 1
            y += int(lead * rng.uniform(0.8, 2.5))
            if style == "circled" and n > 20:
                break
    d.text((w // 2 - px, h - int(0.5 * dpi)), str(rng.randint(1, 20)), font=font, fill=0)
    if two and extra.random() < 0.5:  # a column rule down the gutter: a hairline, or dotted
        arr = np.asarray(img).copy()
        step = extra.choice((1, 4, 6))
        column_rule = "hairline" if step == 1 else "dotted"
        for yy in range(y_top - lead // 2, int(h - 1.4 * dpi), step):
            arr[yy : yy + max(1, step // 2), w // 2 : w // 2 + 1] = 0
        img = Image.fromarray(arr)
    page = np.asarray(img).copy()
    # The page is skewed as it lies on the scanner, before the scan: a black-and-white scan stays black and white.
    skewed = rng.random() < 0.35
    if skewed:
        angle = rng.uniform(-2.0, 2.0)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        page = cv2.warpAffine(page, m, (w, h), borderValue=255)
        owner = cv2.warpAffine(owner, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        boxes = [_tight(owner == k + 1) or b for k, b in enumerate(boxes)]
    kind = rng.choice(("otsu", "photocopy", "jpeg", "clean", "harsh", "bilevel"))
    if (kind == "photocopy" and seed % 2) or (kind == "clean" and seed % 3 == 2):
        kind = "faded"  # (own random stream below: the other pages of a seed stay as they were)
    if kind == "otsu":
        noisy = cv2.GaussianBlur(page, (3, 3), 0).astype(np.int16) + np.random.default_rng(seed).integers(
            -40, 40, page.shape
        )
        _, page = cv2.threshold(np.clip(noisy, 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    elif kind == "harsh":  # a fax-like bilevel: noisy, thresholded light or dark, with pepper
        noisy = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.6, 1.2)).astype(np.float32)
        noisy += np.random.default_rng(seed).normal(0, 22, page.shape).astype(np.float32)
        page = np.where(noisy < rng.uniform(100, 180), 0, 255).astype(np.uint8)
        page[np.random.default_rng(seed + 1).random(page.shape) < 0.0004] = 0
    elif kind == "bilevel":  # an office scanner's black-and-white mode: optics blur, a fixed threshold, little noise
        soft = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.4, 1.0)).astype(np.float32)
        soft += np.random.default_rng(seed).normal(0, 6, page.shape).astype(np.float32)
        page = np.where(soft < rng.uniform(90, 190), 0, 255).astype(np.uint8)
    elif kind == "faded":  # a pale copy: grey ink on grey paper, thin strokes under half the usual contrast
        fade = random.Random(seed * 7 + 1)
        paper, ink = fade.uniform(185, 225), fade.uniform(95, 140)
        soft = cv2.GaussianBlur(page.astype(np.float32), (0, 0), fade.uniform(0.5, 1.1))
        soft = ink + soft / 255.0 * (paper - ink)
        soft += np.random.default_rng(seed).normal(0, fade.uniform(3, 7), page.shape).astype(np.float32)
        _, buf = cv2.imencode(".jpg", np.clip(soft, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 60])
        page = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    elif kind == "photocopy":
        page = cv2.GaussianBlur(page, (0, 0), 1.0)
        mask = np.random.default_rng(seed).random(page.shape) < 0.0015
        page[mask] = 30
        page = cv2.addWeighted(page, 0.85, np.full_like(page, 230), 0.15, 0)
    if skewed:
        kind += "+skew"
    tags = {
        "lang": "ko" if korean else "en",
        "style": style,
        "indent": "flush" if flush else "hanging",
        "columns": str(2 if two else 1),
        "scan": kind.removesuffix("+skew"),
        "skew": "skewed" if skewed else "level",
        "face": Path(face).stem,
        "tables": str(tables),
        "column_rule": column_rule,
    }
    return FontPage(page, boxes, numbers, labels, 2 if two else 1, kind, tags)


def _tight(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
