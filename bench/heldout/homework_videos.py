"""Held-out homework videos: rendering code of its own, never used to choose a threshold (bench/bench_video.py).

Independent of tests/jobs/video/hw_videos.py (the tuning generator) in every part:
- pages: A4 worksheets typeset with PIL in real Debian fonts (fonts-nanum, fonts-noto-cjk, fonts-dejavu), Korean or
  English; all pages of one homework share the title block, the problem numbering style and the answer lines or
  boxes, and differ in the problems' text;
- handwriting: glyphs of 1-3 jittered pen strokes on a drifting, slanted baseline, in blue, black or pencil grey;
- scene: colour desks (wood grain, plain with a light gradient, fabric weave), the sheet seen in perspective,
  vignetting, a colour cast, exposure drift, defocus, sensor noise; H.264 (libx264) at 24 fps, 640x480 to
  1280x720;
- camera: the whole view shakes (shift, roll, zoom breathing), not only the sheet;
- transitions: a plain cut (same framing or slightly reframed), a slide (the sheet is pulled out by a hand, then the
  next one pushed in, with some rotation), a page turn (the sheet folds over its left edge in perspective, showing
  its back with faint show-through, and is taken away);
- hands: skin-coloured palm, fingers and arm reaching in from an edge and pausing over the page; a pen hand while
  writing appears stroke by stroke during a hold.

    render_video(seed, workdir) -> Video  (fonts missing: FontsMissing, so a test can skip with the reason)
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ai_worker.jobs.video import ffmpeg_exe

FONT_FILES = {
    "ko": [
        "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
        "/usr/share/fonts/truetype/nanum/NanumMyeongjo.ttf",
        "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    ],
    "en": [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    ],
}
SHEET_W, SHEET_H = 900, 1273  # A4 proportions
SIZES = ((640, 480), (854, 480), (960, 540), (1280, 720))
FPS = 24
KO_WORDS = [
    "다음",
    "식을",
    "계산하시오",
    "알맞은",
    "수를",
    "쓰시오",
    "그림을",
    "보고",
    "답하시오",
    "넓이를",
    "구하시오",
    "이유를",
    "설명하시오",
    "문제",
    "값",
    "길이",
    "삼각형",
    "분수",
]
EN_WORDS = [
    "find",
    "the",
    "value",
    "of",
    "solve",
    "each",
    "equation",
    "explain",
    "why",
    "area",
    "length",
    "triangle",
    "fraction",
    "what",
    "is",
    "compute",
    "show",
    "work",
]
INKS = ((30, 50, 150), (25, 25, 30), (95, 95, 100))  # blue ballpoint, black gel, pencil (RGB)


class FontsMissing(RuntimeError):
    """The Debian font packages are not installed (apt-get install fonts-nanum fonts-noto-cjk fonts-dejavu)."""


@dataclass(frozen=True)
class Video:
    data: bytes
    duration_s: float
    starts: list[float]
    ends: list[float]
    written: list[bool]
    progressive: list[bool]
    transitions: list[str]
    events: list[tuple[str, float, float]] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)

    @property
    def pages(self) -> int:
        return len(self.starts)


def fonts_available() -> bool:
    return all(any(Path(f).exists() for f in files) for files in FONT_FILES.values())


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _pick_font(rng: random.Random, lang: str) -> str:
    present = [f for f in FONT_FILES[lang] if Path(f).exists()]
    if not present:
        raise FontsMissing(f"no {lang} font among {FONT_FILES[lang]}")
    return rng.choice(present)


def _sentence(rng: random.Random, lang: str) -> str:
    words = KO_WORDS if lang == "ko" else EN_WORDS
    text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return f"{text} ({a} {rng.choice('+-x÷')} {b})"


@dataclass
class _Homework:
    lang: str
    font: str
    title: str
    problems_per_page: int
    answer: str  # "line" | "box"
    paper: tuple[int, int, int]


def _homework(rng: random.Random) -> _Homework:
    lang = rng.choice(("ko", "en"))
    title = (
        f"{rng.randint(3, 6)}학년 수학 숙제 {rng.randint(1, 12)}단원"
        if lang == "ko"
        else f"Math homework, unit {rng.randint(1, 12)}"
    )
    paper = rng.choice(((250, 250, 246), (244, 240, 228), (238, 240, 242)))
    return _Homework(lang, _pick_font(rng, lang), title, rng.randint(3, 5), rng.choice(("line", "box")), paper)


def _sheet(rng: random.Random, hw: _Homework, number: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A page of the homework, and the answer areas (x0, y0, x1, y1) where a student writes."""
    img = Image.new("RGB", (SHEET_W, SHEET_H), hw.paper)
    draw = ImageDraw.Draw(img)
    ink = (20, 20, 25)
    draw.text((70, 60), hw.title, font=_font(hw.font, 38), fill=ink)
    label = "이름: ________   반: ____" if hw.lang == "ko" else "Name: ____________  Class: ____"
    draw.text((70, 118), label, font=_font(hw.font, 24), fill=ink)
    draw.text((SHEET_W - 150, 66), f"- {number} -", font=_font(hw.font, 28), fill=ink)
    draw.line((60, 165, SHEET_W - 60, 165), fill=ink, width=3)
    areas = []
    slot = (SHEET_H - 230) // hw.problems_per_page
    body = _font(hw.font, 25)
    for k in range(hw.problems_per_page):
        top = 200 + k * slot
        q = (number - 1) * hw.problems_per_page + k + 1
        lines = rng.randint(1, 3)
        for line in range(lines):
            text = (f"{q}. " if line == 0 else "    ") + _sentence(rng, hw.lang)
            draw.text((70, top + line * 38), text[: rng.randint(26, 44)], font=body, fill=ink)
        answer_top = top + lines * 38 + 20
        bottom = top + slot - 30
        if hw.answer == "box":
            draw.rectangle((90, answer_top, SHEET_W - 90, bottom), outline=(60, 60, 70), width=2)
        else:
            for y in range(answer_top + 45, bottom, 50):
                draw.line((90, y, SHEET_W - 90, y), fill=(150, 150, 160), width=1)
        areas.append((110, answer_top + 10, SHEET_W - 110, bottom - 10))
    return img, areas


def _handwriting(rng: random.Random, areas: list[tuple[int, int, int, int]]) -> list[tuple[np.ndarray, int]]:
    """Pen strokes (sheet pixels) answering some problems: glyphs of 1-3 jittered strokes on a slanted baseline."""
    strokes: list[tuple[np.ndarray, int]] = []
    width = rng.choice((3, 4))
    answered = [a for a in areas if rng.random() < 0.8] or areas[:1]
    for x0, y0, x1, y1 in answered:
        rows = max(1, min(3, (y1 - y0) // 60))
        for row in range(rng.randint(1, rows)):
            base = y0 + 45 + row * 55
            x = x0 + rng.uniform(0, 60)
            end = x + rng.uniform(0.3, 0.9) * (x1 - x0 - 60)
            slope = rng.uniform(-0.04, 0.04)
            size = rng.uniform(28, 40)
            slant = rng.uniform(-0.3, 0.1)
            while x < end:
                y = base + slope * (x - x0) + rng.gauss(0, 2.5)
                for _ in range(rng.randint(1, 3)):
                    n = rng.randint(3, 6)
                    pts = []
                    for _ in range(n):
                        v = rng.uniform(-size, 0)
                        pts.append((x + rng.uniform(0, size * 0.7) - slant * v, y + v))
                    curve = np.array(pts, np.float64)
                    t = np.linspace(0, n - 1, n * 6)
                    smooth = np.stack([np.interp(t, range(n), curve[:, 0]), np.interp(t, range(n), curve[:, 1])], 1)
                    strokes.append((smooth.astype(np.int32), width))
                x += size * rng.uniform(0.75, 1.05)
                if rng.random() < 0.15:
                    x += size * 0.7  # a space between words
    return strokes


def _with_writing(sheet: np.ndarray, strokes: list[tuple[np.ndarray, int]], ink: tuple[int, int, int]) -> np.ndarray:
    out = sheet.copy()
    for pts, width in strokes:
        cv2.polylines(out, [pts], False, ink, width, cv2.LINE_AA)
    return out


def _back(sheet: np.ndarray) -> np.ndarray:
    """The back of a sheet: paper a little darker, the print showing through faintly, mirrored."""
    paper = np.median(sheet.reshape(-1, 3), axis=0)
    return (0.92 * (0.9 * paper + 0.1 * sheet[:, ::-1].astype(np.float32))).astype(np.uint8)


def _desk(rng: random.Random, w: int, h: int) -> np.ndarray:
    kind = rng.choice(("wood", "plain", "fabric"))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        base = np.array([rng.randint(90, 150), rng.randint(60, 95), rng.randint(30, 60)], np.float32)
        grain = np.sin(yy / rng.uniform(6, 14) + 3 * np.sin(xx / rng.uniform(80, 200))) * 14
        img = base[None, None] + grain[..., None]
    elif kind == "plain":
        base = np.array([rng.randint(40, 200) for _ in range(3)], np.float32)
        img = base[None, None] * (0.8 + 0.3 * xx[..., None] / w)
    else:
        base = np.array([rng.randint(50, 140) for _ in range(3)], np.float32)
        weave = ((np.sin(xx / 2.5) > 0) ^ (np.sin(yy / 2.5) > 0)).astype(np.float32) * 12
        img = base[None, None] + weave[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _pose(rng: random.Random, w: int, h: int) -> np.ndarray:
    """Where the sheet's corners fall in the frame: the sheet fills 75-95 % of the height, seen a little obliquely."""
    sheet_h = h * rng.uniform(0.75, 0.95)
    sheet_w = sheet_h * SHEET_W / SHEET_H
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.03, 0.03) * h
    tilt = rng.uniform(-0.06, 0.06) * sheet_w  # the top edge narrower or wider than the bottom
    corners = np.array(
        [
            [cx - sheet_w / 2 + tilt, cy - sheet_h / 2],
            [cx + sheet_w / 2 - tilt, cy - sheet_h / 2],
            [cx + sheet_w / 2, cy + sheet_h / 2],
            [cx - sheet_w / 2, cy + sheet_h / 2],
        ],
        np.float32,
    )
    angle = math.radians(rng.uniform(-6, 6))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
    return (corners - (cx, cy)) @ rot.T + (cx, cy)


SHEET_CORNERS = np.array([[0, 0], [SHEET_W, 0], [SHEET_W, SHEET_H], [0, SHEET_H]], np.float32)


def _paste(frame: np.ndarray, image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """Warp `image` so the points `src` land on `dst`, over `frame` (in place)."""
    h, w = frame.shape[:2]
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    warped = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full(image.shape[:2], 255, np.uint8), m, (w, h))
    np.copyto(frame, warped, where=mask[..., None] > 128)


def _hand(frame: np.ndarray, tip: tuple[float, float], edge: str, skin: tuple[int, int, int], scale: float) -> None:
    """A hand whose fingertips reach `tip`, its arm coming in from `edge` of the frame."""
    h, w = frame.shape[:2]
    tx, ty = tip
    origin = {"right": (w + 50, ty + 0.3 * h), "bottom": (tx + 0.2 * w, h + 50), "left": (-50, ty + 0.2 * h)}[edge]
    direction = np.array([tx - origin[0], ty - origin[1]], np.float32)
    direction /= max(1e-6, float(np.linalg.norm(direction)))
    normal = np.array([-direction[1], direction[0]])
    palm = np.array([tx, ty]) - direction * 70 * scale
    arm_w = 55 * scale
    arm = np.array(
        [
            palm + normal * arm_w,
            palm - normal * arm_w,
            np.array(origin) - normal * arm_w * 1.2,
            np.array(origin) + normal * arm_w * 1.2,
        ],
        np.int32,
    )
    shade = tuple(int(c * 0.85) for c in skin)
    cv2.fillPoly(frame, [arm], shade, cv2.LINE_AA)
    angle = math.degrees(math.atan2(direction[1], direction[0]))
    cv2.ellipse(
        frame, (int(palm[0]), int(palm[1])), (int(75 * scale), int(60 * scale)), angle, 0, 360, skin, -1, cv2.LINE_AA
    )
    for k in range(4):
        base = palm + normal * (k - 1.5) * 26 * scale
        end = base + direction * (70 + 12 * (k % 3)) * scale
        cv2.line(frame, (int(base[0]), int(base[1])), (int(end[0]), int(end[1])), skin, int(20 * scale), cv2.LINE_AA)


def render_video(
    seed: int,
    workdir: Path,
    pages: int | None = None,
    size: tuple[int, int] | None = None,
    transitions: tuple[str, ...] | None = None,
    max_hold_s: float = 5.5,
) -> Video:
    """One video; the page count, frame size and `transitions` (one per page change) are drawn unless given;
    each page is held 1.8 s to `max_hold_s`."""
    rng = random.Random(seed * 7919 + 13)
    nrng = np.random.default_rng(seed + 10_000)
    w, h = SIZES[rng.randrange(len(SIZES))]
    if size:
        w, h = size
    count = pages or rng.randint(3, 10)
    hw = _homework(rng)
    ink = rng.choice(INKS)
    skin = (rng.randint(170, 235), rng.randint(120, 180), rng.randint(95, 150))
    scale = h / 720
    sheets, writing = [], []
    written = [rng.random() < 0.55 for _ in range(count)]
    progressive = [wr and rng.random() < 0.35 for wr in written]
    for n in range(count):
        img, areas = _sheet(rng, hw, n + 1)
        sheets.append(np.asarray(img))
        writing.append(_handwriting(rng, areas) if written[n] else [])
    holds = [rng.uniform(1.8, max(1.8, max_hold_s)) for _ in range(count)]
    drawn_kinds = [rng.choice(("cut", "slide", "turn")) for _ in range(count - 1)]
    kinds = list(transitions) if transitions else drawn_kinds
    durations = {"cut": 0.0, "slide": rng.uniform(0.8, 1.3), "turn": rng.uniform(0.9, 1.4)}
    desk = _desk(rng, w, h)
    pose = _pose(rng, w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = (1 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2)[..., None]
    cast = np.array([rng.uniform(0.92, 1.05), 1.0, rng.uniform(0.9, 1.08)], np.float32)
    light = np.ascontiguousarray(vignette * cast, np.float32)
    blur = rng.uniform(0.0, 1.0)
    noise = rng.uniform(1.5, 5.0)
    grain = [nrng.normal(0, noise, (h, w, 3)).astype(np.float32) for _ in range(6)]  # sensor noise, reused

    path = workdir / f"heldout{seed}.mp4"
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS),
        "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(rng.randint(21, 28)),
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    frame_no = 0
    shake = np.zeros(4)  # dx, dy (px), roll (deg), zoom
    exposure = 1.0
    starts, ends, events = [], [], []

    def emit(content: np.ndarray, hand: tuple[tuple[float, float], str] | None = None) -> None:
        nonlocal frame_no, shake, exposure
        shake = 0.9 * shake + nrng.normal(0, [0.6 * scale, 0.6 * scale, 0.05, 0.0008])
        exposure = float(np.clip(exposure + nrng.normal(0, 0.006), 0.8, 1.15))
        m = cv2.getRotationMatrix2D((w / 2, h / 2), shake[2], 1 + shake[3])
        m[:, 2] += shake[:2]
        frame = content
        if hand is not None:
            frame = content.copy()
            _hand(frame, hand[0], hand[1], skin, scale)
        frame = cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        if blur > 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), blur)
        out = cv2.multiply(frame.astype(np.float32), light, scale=exposure)
        out += grain[int(nrng.integers(len(grain)))]
        encoder.stdin.write(cv2.convertScaleAbs(out).tobytes())  # type: ignore[union-attr]
        frame_no += 1

    def scene(page_img: np.ndarray, corners: np.ndarray) -> np.ndarray:
        frame = desk.copy()
        _paste(frame, page_img, SHEET_CORNERS, corners)
        return frame

    def shown(n: int, strokes_done: int | None = None) -> np.ndarray:
        strokes = writing[n]
        if progressive[n]:
            strokes = strokes[: strokes_done or 0]
        return _with_writing(sheets[n], strokes, ink)

    for n in range(count):
        starts.append(frame_no / FPS)
        hold_frames = round(holds[n] * FPS)
        occlusion = None
        if holds[n] > 2.5 and rng.random() < 0.4:
            length = rng.uniform(0.6, 1.4)
            begin = rng.uniform(0.3, holds[n] - length - 0.3)
            occlusion = (begin, length, rng.choice(("right", "bottom", "left")))
            events.append(("hand", starts[-1] + begin, starts[-1] + begin + length))
        pen = (0.15 * holds[n], 0.75 * holds[n]) if progressive[n] else None
        if pen:
            events.append(("writing", starts[-1] + pen[0], starts[-1] + pen[1]))
        static = scene(shown(n), pose) if not progressive[n] else None
        centre = pose.mean(axis=0)
        for k in range(hold_frames):
            t = k / FPS
            hand = None
            if pen and pen[0] <= t < pen[1]:
                done = int(len(writing[n]) * (t - pen[0]) / (pen[1] - pen[0]))
                content = scene(shown(n, done), pose)
                last = writing[n][max(0, done - 1)][0][-1] if writing[n] else (SHEET_W / 2, SHEET_H / 2)
                m = cv2.getPerspectiveTransform(SHEET_CORNERS, pose.astype(np.float32))
                tip = cv2.perspectiveTransform(np.array([[last]], np.float32), m)[0, 0]
                hand = ((float(tip[0]), float(tip[1])), "right")
            elif progressive[n]:
                content = scene(shown(n, len(writing[n]) if t >= pen[1] else 0), pose)  # type: ignore[index]
            else:
                content = static  # type: ignore[assignment]
            if occlusion and occlusion[0] <= t < occlusion[0] + occlusion[1]:
                phase = (t - occlusion[0]) / occlusion[1]
                reach = min(1.0, 3 * phase, 3 * (1 - phase))  # in, pause, out
                far = {"right": (w * 1.3, centre[1]), "bottom": (centre[0], h * 1.3), "left": (-0.3 * w, centre[1])}[
                    occlusion[2]
                ]
                tip = (far[0] + (centre[0] - far[0]) * reach * 0.9, far[1] + (centre[1] - far[1]) * reach * 0.9)
                hand = (tip, occlusion[2])
            emit(content, hand)
        ends.append(frame_no / FPS)
        if n == count - 1:
            break
        kind = kinds[n]
        final = shown(n, len(writing[n]))
        incoming = shown(n + 1)
        if kind == "cut":
            if rng.random() < 0.4:  # reframed a little between the two takes
                pose = pose + np.array([rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.02, 0.02) * h], np.float32)
            continue
        steps = round(durations[kind] * FPS)
        for k in range(steps):
            p = (k + 0.5) / steps
            if kind == "slide":
                half = p < 0.5
                q = p * 2 if half else 2 - p * 2  # out, then in
                shift = np.array([q * 1.1 * w, -q * 0.1 * h], np.float32)
                angle = math.radians(8 * q)
                c = pose.mean(axis=0)
                rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
                corners = (pose - c) @ rot.T + c + shift
                content = scene(final if half else incoming, corners)
                emit(content, ((float(corners[:, 0].mean()), float(corners[:, 1].mean())), "right"))
            else:
                theta = math.pi * min(1.0, p / 0.75)  # the fold, then the turned sheet is taken away
                frame_img = scene(incoming, pose)
                u = SHEET_W * math.cos(theta)
                lift = 1 + 0.12 * math.sin(theta)
                quad_sheet = np.array(
                    [
                        [0, 0],
                        [u, SHEET_H / 2 - lift * SHEET_H / 2],
                        [u, SHEET_H / 2 + lift * SHEET_H / 2],
                        [0, SHEET_H],
                    ],
                    np.float32,
                )
                if p >= 0.75:
                    quad_sheet[:, 0] -= (p - 0.75) / 0.25 * 1.5 * SHEET_W
                    quad_sheet[0, 0] = quad_sheet[3, 0] = quad_sheet[1, 0] + SHEET_W
                m = cv2.getPerspectiveTransform(SHEET_CORNERS, pose.astype(np.float32))
                quad = cv2.perspectiveTransform(quad_sheet[None], m)[0]
                face = final if theta < math.pi / 2 else _back(final)
                if abs(u) > 8:
                    src = SHEET_CORNERS if theta < math.pi / 2 else SHEET_CORNERS[[1, 0, 3, 2]]
                    _paste(frame_img, face, src, quad)
                tip = quad[1:3].mean(axis=0)
                emit(frame_img, ((float(tip[0]), float(tip[1])), "right"))
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError(f"ffmpeg failed encoding {path}")
    return Video(path.read_bytes(), frame_no / FPS, starts, ends, written, progressive, kinds, events, (w, h))
