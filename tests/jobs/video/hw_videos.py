"""Seeded generator of homework videos (the tuning set): a hand-held phone filming the pages of one homework.

Each video shows 3-10 pages of one homework: every page repeats the homework's header and box layout, only the
problem lines differ (pages of one homework look alike at a coarse scale). Some pages are written on before filming,
some while held (strokes appear one by one). Each page is held 1.5-6 s while the camera shakes (a smooth random walk
of a few pixels and a fraction of a degree), with sensor noise and exposure drift. Pages change by a plain cut (the
camera does not move), a slide (the next sheet slides in while a hand pushes the old one out) or a page turn (the
sheet folds over its left edge, showing its blank back, and is taken away); some holds are briefly crossed by a
hand (0.3-0.6 s). Frames are encoded by the environment's ffmpeg with its built-in MPEG-4 encoder: LGPL builds
(conda-forge's) have no H.264 encoder, and every build has this one.
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ai_worker.jobs.video import ffmpeg_exe

SIZES = ((360, 480), (480, 360), (640, 480))  # (width, height) of the frames
PAGE_W, PAGE_H = 320, 440
FPS = 15
TRANSITION_S = {"cut": 0.0, "slide": 0.8, "turn": 0.8}
PAPER = 235


@dataclass(frozen=True)
class Clip:
    data: bytes
    pages: int
    written: list[bool]
    duration_s: float
    starts: list[float] = field(default_factory=list)  # when each page is first shown whole and still
    transitions: list[str] = field(default_factory=list)  # how each page after the first arrives
    progressive: list[bool] = field(default_factory=list)  # written on while held
    ends: list[float] = field(default_factory=list)  # when each page's hold ends (its transition out begins)
    events: list[tuple[str, float, float]] = field(default_factory=list)  # ("hand" | "writing", from, to)


def _words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choice("abcdefghiklmnoprstu") for _ in range(rng.randint(2, 7))) for _ in range(count))


def _template(rng: random.Random) -> list[tuple[str, int, int]]:
    """The homework's shared layout: header lines and the y of each answer box, as (kind, y, height)."""
    layout = [("title", 26, 0), ("rule", 40, 0)]
    y = 60
    while y < PAGE_H - 70:
        lines = rng.randint(2, 4)
        box = rng.randint(30, 60) if rng.random() < 0.6 else 0
        layout.append(("problem", y, lines))
        y += lines * 16 + 6
        if box:
            layout.append(("box", y, box))
            y += box + 10
        y += 8
    return layout


def _pen_strokes(rng: random.Random, x: float, y: float, length: float) -> list[np.ndarray]:
    """A handwritten answer: loops of a cursive line, split into strokes so they can appear one by one."""
    strokes = []
    while length > 20:
        piece = rng.uniform(25, 60)
        t = np.linspace(0, piece / 13, max(8, round(piece)))
        pts = np.stack([x + t * 13 + 5 * np.sin(t * math.tau), y - 6 * (1 - np.cos(t * math.tau)) + 2 * np.sin(t)], 1)
        strokes.append(pts.astype(np.int32))
        x += piece + rng.uniform(6, 14)
        length -= piece
    return strokes


def _page(rng: random.Random, layout: list[tuple[str, int, int]], number: int, written: bool) -> tuple:
    """(blank page with print, list of handwritten strokes) for one page of the homework."""
    page = np.full((PAGE_H, PAGE_W), PAPER, np.uint8)
    strokes: list[tuple[np.ndarray, int]] = []
    ink = rng.randint(20, 90)
    problem = number * 10
    for kind, y, size in layout:
        if kind == "title":
            cv2.putText(page, "HOMEWORK 7  name ______", (14, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 30, 1, cv2.LINE_AA)
            cv2.putText(page, f"p.{number}", (PAGE_W - 44, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 30, 1, cv2.LINE_AA)
        elif kind == "rule":
            cv2.line(page, (14, y), (PAGE_W - 14, y), 60, 1)
        elif kind == "problem":
            problem += 1
            for line in range(size):
                text = (f"{problem}. " if line == 0 else "   ") + _words(rng, 6)
                cv2.putText(
                    page, text[: rng.randint(20, 42)], (14, y + line * 16), cv2.FONT_HERSHEY_SIMPLEX, 0.36, 30, 1,
                    cv2.LINE_AA,
                )  # fmt: skip
        elif kind == "box":
            cv2.rectangle(page, (14, y), (PAGE_W - 14, y + size), 70, 1)
            if written:
                for row in range(max(1, size // 24)):
                    base = y + 18 + row * 22
                    strokes += [(s, ink) for s in _pen_strokes(rng, rng.uniform(24, 60), base, rng.uniform(80, 220))]
    if written and not strokes:
        strokes = [(s, ink) for s in _pen_strokes(rng, 30, PAGE_H - 30, 200)]
    return page, strokes


def _draw(page: np.ndarray, strokes: list[tuple[np.ndarray, int]]) -> np.ndarray:
    out = page.copy()
    for pts, ink in strokes:
        cv2.polylines(out, [pts], False, ink, 2, cv2.LINE_AA)
    return out


def _hand(frame: np.ndarray, cx: float, cy: float) -> None:
    cv2.ellipse(frame, (int(cx), int(cy)), (70, 110), 25, 0, 360, 150, -1, cv2.LINE_AA)
    cv2.ellipse(frame, (int(cx) - 40, int(cy) - 90), (18, 50), 10, 0, 360, 140, -1, cv2.LINE_AA)


def _place(frame: np.ndarray, sheet: np.ndarray, x0: float, y0: float, angle: float, squash: float = 1.0) -> None:
    """Paste a sheet, rotated by `angle` degrees, its width scaled by `squash` about its left edge."""
    m = cv2.getRotationMatrix2D((0, PAGE_H / 2), angle, 1.0)
    m[:, 0] *= squash
    m[:, 2] += (x0, y0)
    cv2.warpAffine(sheet.astype(np.float32), m, frame.shape[::-1], dst=frame, borderMode=cv2.BORDER_TRANSPARENT)


def render_clip(seed: int, workdir: Path, pages: int | None = None, kinds: tuple[str, ...] | None = None) -> Clip:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    width, height = SIZES[seed % len(SIZES)]
    count = pages or rng.randint(3, 10)
    layout = _template(rng)
    written = [rng.random() < 0.5 for _ in range(count)]
    progressive = [w and rng.random() < 0.4 for w in written]
    drawn = [_page(rng, layout, n + 1, w) for n, w in enumerate(written)]
    holds = [rng.uniform(1.5, 6.0) for _ in range(count)]
    transitions = [rng.choice(kinds or ("cut", "slide", "turn")) for _ in range(count - 1)]
    camera_shake = seed % 2 == 1  # the phone shakes (the desk moves too), else the hand holding the sheet does
    if seed % 3 == 0:  # a light desk with a grain: bright and textured, but no ink on it
        stripes = np.sin(np.arange(height, dtype=np.float32)[:, None] / 5.0 + np.arange(width)[None] / 90.0)
        desk = np.clip(170 + 18 * stripes + nrng.normal(0, 4, (height, width)), 0, 255).astype(np.float32)
    else:
        desk = np.clip(nrng.normal(80, 12, (height, width)), 0, 255).astype(np.float32)
    back = np.full((PAGE_H, PAGE_W), PAPER - 15, np.uint8)
    path = workdir / f"clip{seed}.mp4"
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}",
        "-r", str(FPS), "-i", "pipe:0", "-c:v", "mpeg4", "-q:v", "4", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)  # frames are streamed: memory holds one
    frames = 0
    starts: list[float] = []
    events: list[tuple[str, float, float]] = []
    shake = np.zeros(3)
    gain = 1.0
    home_x, home_y = (width - PAGE_W) / 2, (height - PAGE_H) / 2
    for p in range(count):
        starts.append(frames / FPS)  # a page starts when its transition in has ended
        page, strokes = drawn[p]
        nxt = None
        if p < count - 1:  # the next page as it arrives: not yet written on if it is written while held
            nxt = (drawn[p + 1][0], [] if progressive[p + 1] else drawn[p + 1][1])
        kind = transitions[p] if p < count - 1 else "cut"
        occlusion = (
            (rng.uniform(0.3, holds[p] - 0.8), rng.uniform(0.3, 0.6)) if holds[p] > 2 and rng.random() < 0.4 else None
        )
        writing = (rng.uniform(0.2, 0.4) * holds[p], rng.uniform(0.5, 0.8) * holds[p]) if progressive[p] else None
        begin = frames / FPS
        if occlusion:
            events.append(("hand", begin + occlusion[0], begin + occlusion[0] + occlusion[1]))
        if writing:
            events.append(("writing", begin + writing[0], begin + writing[1]))
        steps = round((holds[p] + (TRANSITION_S[kind] if nxt else 0)) * FPS)
        for k in range(steps):
            t = k / FPS
            shake = 0.85 * shake + nrng.normal(0, [0.9, 0.9, 0.08])  # pixels, pixels, degrees
            gain = float(np.clip(gain + nrng.normal(0, 0.01), 0.85, 1.1))
            frame = desk.copy()
            if writing:
                shown = int(len(strokes) * np.clip((t - writing[0]) / (writing[1] - writing[0]), 0, 1))
                sheet = _draw(page, strokes[:shown])
            else:
                sheet = _draw(page, strokes)
            x0, y0 = (home_x, home_y) if camera_shake else (home_x + shake[0], home_y + shake[1])
            angle = 0.0 if camera_shake else shake[2]
            turning = nxt is not None and t > holds[p]
            progress = (t - holds[p]) / TRANSITION_S[kind] if turning and TRANSITION_S[kind] else 0.0
            if not turning:
                _place(frame, sheet, x0, y0, angle)
            elif kind == "slide" and p % 2:  # taken away upwards, the desk alone, the next one brought up
                away = 2 * progress if progress < 0.5 else 2 - 2 * progress
                _place(frame, sheet if progress < 0.5 else _draw(*nxt), x0, y0 - away * 1.2 * height, angle + 10 * away)
                _hand(frame, width * 0.5, y0 - away * 1.2 * height + PAGE_H)
            elif kind == "slide":
                _place(frame, sheet, x0 - progress * width, y0, angle)
                _place(frame, _draw(*nxt), x0 + (1 - progress) * width, y0, angle)
                _hand(frame, width * (1.2 - 1.4 * progress), height * 0.6)
            elif kind == "turn":
                _place(frame, _draw(*nxt), x0, y0, angle)
                if progress < 0.6:  # folding over: the front narrows, then the back widens to the left
                    fold = math.cos(math.pi * progress / 0.6)
                    _place(
                        frame,
                        sheet if fold > 0 else back,
                        x0,
                        y0,
                        angle,
                        squash=max(0.02, abs(fold)) * np.sign(fold),
                    )
                else:  # the turned sheet lies on the left and is taken away
                    _place(frame, back, x0 - (progress - 0.6) / 0.4 * width, y0, angle, squash=-1.0)
                _hand(frame, x0 + PAGE_W * math.cos(math.pi * min(progress, 0.6) / 0.6), height * 0.75)
            if occlusion and occlusion[0] <= t < occlusion[0] + occlusion[1]:
                _hand(frame, width * (1.1 - (t - occlusion[0]) / occlusion[1] * 0.5), height * 0.7)
            if writing and writing[0] <= t < writing[1]:
                _hand(
                    frame,
                    x0 + PAGE_W * 0.6 + 60,
                    y0 + PAGE_H * (0.3 + 0.4 * (t - writing[0]) / (writing[1] - writing[0])) + 80,
                )
            if camera_shake:
                m = cv2.getRotationMatrix2D((width / 2, height / 2), shake[2], 1.0)
                m[:, 2] += shake[:2]
                frame = cv2.warpAffine(frame, m, (width, height), borderMode=cv2.BORDER_REFLECT)
            frame = frame * gain + nrng.normal(0, 4, frame.shape)
            encoder.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())  # type: ignore[union-attr]
            frames += 1
    assert encoder.stdin is not None
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError(f"ffmpeg failed encoding {path}")
    ends = [start + hold for start, hold in zip(starts, holds, strict=True)]
    return Clip(path.read_bytes(), count, written, frames / FPS, starts, transitions, progressive, ends, events)
