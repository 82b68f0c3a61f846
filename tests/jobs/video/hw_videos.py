"""Seeded generator of homework videos: a hand-held phone filming pages being turned, with known page changes.

Each video shows 3-10 distinct pages (printed lines at random places, some with written strokes), each held 1-6 s
while the camera shakes (a smooth random walk of a few pixels and a fraction of a degree), with sensor noise and
exposure flicker. Pages change by sliding out while the next slides in, with a hand crossing the frame; some holds
are briefly occluded by a passing hand (0.3-0.6 s). Frames are encoded by the environment's ffmpeg with its built-in
MPEG-4 encoder: LGPL builds (conda-forge's) have no H.264 encoder, and every build has this one.
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ai_worker.jobs.video import ffmpeg_exe

FRAME_W, FRAME_H = 360, 480
PAGE_W, PAGE_H = 320, 440
FPS = 15
TURN_S = 0.5


@dataclass(frozen=True)
class Clip:
    data: bytes
    pages: int
    written: list[bool]
    duration_s: float


def _page(rng: random.Random, written: bool) -> np.ndarray:
    page = np.full((PAGE_H, PAGE_W), 235, np.uint8)
    y = rng.randint(18, 40)
    while y < PAGE_H - 30:
        if rng.random() < 0.7:
            x = rng.randint(12, 40)
            text = " ".join(
                "".join(rng.choice("abcdefghiklmnoprstu") for _ in range(rng.randint(2, 7))) for _ in range(6)
            )
            cv2.putText(page, text[: rng.randint(12, 40)], (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, 30, 1, cv2.LINE_AA)
            y += rng.randint(14, 22)
        else:
            box = rng.randint(40, 90)
            if rng.random() < 0.5:
                cv2.rectangle(page, (14, y), (PAGE_W - 14, y + box), 60, 1)
            y += box + 12
    if written:
        for _ in range(rng.randint(3, 7)):
            x, base = rng.uniform(20, 80), rng.uniform(60, PAGE_H - 40)
            t = np.linspace(0, rng.uniform(6, 14), 160)
            pts = np.stack(
                [x + t * 13 + 5 * np.sin(t * math.tau), base - 6 * (1 - np.cos(t * math.tau)) + 2 * np.sin(t)], 1
            )
            cv2.polylines(page, [pts.astype(np.int32)], False, rng.randint(20, 90), 2, cv2.LINE_AA)
    return page


def _hand(frame: np.ndarray, cx: float, cy: float, rng: np.random.Generator) -> None:
    cv2.ellipse(frame, (int(cx), int(cy)), (70, 110), 25, 0, 360, 150, -1, cv2.LINE_AA)
    cv2.ellipse(frame, (int(cx) - 40, int(cy) - 90), (18, 50), 10, 0, 360, 140, -1, cv2.LINE_AA)


def render_clip(seed: int, workdir: Path, pages: int | None = None) -> Clip:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    count = pages or rng.randint(3, 10)
    written = [rng.random() < 0.5 for _ in range(count)]
    sheets = [_page(rng, w) for w in written]
    holds = [rng.uniform(1.0, 6.0) for _ in range(count)]
    desk = np.clip(nrng.normal(80, 12, (FRAME_H, FRAME_W)), 0, 255).astype(np.float32)
    frames: list[np.ndarray] = []
    shake = np.zeros(3)
    for p in range(count):
        occlusion = (
            (rng.uniform(0.3, holds[p] - 0.8), rng.uniform(0.3, 0.6)) if holds[p] > 2 and rng.random() < 0.5 else None
        )
        steps = round((holds[p] + (TURN_S if p < count - 1 else 0)) * FPS)
        for k in range(steps):
            t = k / FPS
            shake = 0.85 * shake + nrng.normal(0, [0.9, 0.9, 0.08])  # pixels, pixels, degrees
            frame = desk.copy()
            turning = t > holds[p]
            slide = (t - holds[p]) / TURN_S if turning else 0.0
            for idx, offset in ((p, -slide), (p + 1, 1 - slide)) if turning else ((p, 0.0),):
                x0 = (FRAME_W - PAGE_W) / 2 + offset * FRAME_W + shake[0]
                y0 = (FRAME_H - PAGE_H) / 2 + shake[1]
                m = cv2.getRotationMatrix2D((PAGE_W / 2, PAGE_H / 2), shake[2], 1.0)
                m[:, 2] += (x0, y0)
                cv2.warpAffine(
                    sheets[idx].astype(np.float32), m, (FRAME_W, FRAME_H), dst=frame, borderMode=cv2.BORDER_TRANSPARENT
                )
            if turning:
                _hand(frame, FRAME_W * (1.2 - 1.4 * slide), FRAME_H * 0.6, nrng)
            elif occlusion and occlusion[0] <= t < occlusion[0] + occlusion[1]:
                _hand(frame, FRAME_W * (1.1 - (t - occlusion[0]) / occlusion[1] * 0.5), FRAME_H * 0.7, nrng)
            frame = frame * rng.uniform(0.96, 1.04) + nrng.normal(0, 4, frame.shape)
            frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    path = workdir / f"clip{seed}.mp4"
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{FRAME_W}x{FRAME_H}",
        "-r", str(FPS), "-i", "pipe:0", "-c:v", "mpeg4", "-q:v", "4", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
    return Clip(path.read_bytes(), count, written, len(frames) / FPS)
