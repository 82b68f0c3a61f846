"""Small, deterministic sample inputs for the vision jobs, for `ai-worker demo` and smoke checks.

- `sample_exam_page()`: PNG of a two-column exam page with six numbered questions (question_segmentation).
- `sample_handwritten_page()`: PNG of a printed question sheet with pen strokes in two answer spaces
  (handwriting_analysis).
- `sample_homework_video()`: MP4 (360x480, 8 s) of three pages held 2.5 s each, the second written on
  (homework_video_analysis); made with the environment's ffmpeg and its built-in MPEG-4 encoder (LGPL builds such
  as conda-forge's have no H.264 encoder) in a temporary directory that is removed.

cv2 and numpy are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

A4_150DPI = (1240, 1754)  # width, height in pixels
VIDEO_SIZE = (360, 480)
VIDEO_FPS = 10
VIDEO_HOLD_S = 2.5
VIDEO_TURN_S = 0.3
VIDEO_WORDS = ("solve", "find", "the", "area", "of", "each", "shape", "then", "check", "sum", "write", "your")


def _text(page: np.ndarray, text: str, x: int, y: int, scale: float = 0.6) -> None:
    import cv2

    cv2.putText(page, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, 1, cv2.LINE_AA)


def _question(page: np.ndarray, number: int, x: int, y: int, lines: list[str]) -> int:
    """Draw a numbered question with a hanging indent; return the y below it."""
    _text(page, f"{number}.", x, y)
    for line in lines:
        _text(page, line, x + 40, y)
        y += 30
    return y


def _pen(page: np.ndarray, x: int, y: int, width: int, amplitude: int = 9) -> None:
    """A joined-up line of pen writing from (x, y) on a slightly rising baseline."""
    import cv2
    import numpy as np

    t = np.linspace(0, width / 14, width)
    xs = x + t * 14 + 6 * np.sin(t * 2 * np.pi)
    ys = y - amplitude * (1 - np.cos(t * 2 * np.pi)) * (1 + 0.3 * np.sin(t * 0.7)) - t * 0.6
    cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, 40, 2, cv2.LINE_AA)


def _png(page: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", page)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(buf.tobytes())


def sample_exam_page() -> bytes:
    import cv2
    import numpy as np

    width, height = A4_150DPI
    page = np.full((height, width), 250, np.uint8)
    _text(page, "Mid-term Exam: Mathematics", 440, 70, 0.8)
    cv2.line(page, (80, 110), (width - 80, 110), 0, 2)
    body = ["Solve the equation below and choose", "the value of x that satisfies it.", "(1) 2   (2) 3   (3) 5   (4) 7"]
    for column, x in enumerate((80, width // 2 + 30)):
        y = 170
        for k in range(3):
            y = _question(page, column * 3 + k + 1, x, y, body[: 2 + k % 2]) + 60
    return _png(page)


def sample_handwritten_page() -> bytes:
    import numpy as np

    width, height = A4_150DPI
    page = np.full((height, width), 245, np.uint8)
    y = 120
    for number in (1, 2, 3):
        y = _question(page, number, 90, y, ["Show your working for the sum below.", "Write the answer in the space."])
        if number < 3:
            for line in range(3):
                _pen(page, 140, y + 50 + line * 55, 700 - line * 120)
        y += 300
    return _png(page)


def sample_homework_video() -> bytes:
    import cv2
    import numpy as np

    from ai_worker.jobs.video import ffmpeg_exe

    width, height = VIDEO_SIZE
    pages = []
    for number in (1, 2, 3):
        sheet = np.full((440, 320), 235, np.uint8)
        for line in range(12):  # each page has problems of its own: pages of one homework differ in their text
            words = VIDEO_WORDS[(number * 5 + line) % len(VIDEO_WORDS) :] + VIDEO_WORDS
            _text(sheet, f"{number}.{line + 1} " + " ".join(words[: 2 + (number + line) % 3]), 14, 30 + line * 32, 0.4)
        if number == 2:
            for line in range(5):
                _pen(sheet, 30, 70 + line * 70, 240, amplitude=6)
        pages.append(sheet)
    frames = []
    for index, sheet in enumerate(pages):
        steps = round((VIDEO_HOLD_S + (VIDEO_TURN_S if index < len(pages) - 1 else 0)) * VIDEO_FPS)
        for step in range(steps):
            frame = np.full((height, width), 70, np.uint8)
            t = step / VIDEO_FPS
            shift = 0 if t < VIDEO_HOLD_S else int((t - VIDEO_HOLD_S) / VIDEO_TURN_S * width)
            x0, y0 = 20 - shift + int(2 * np.sin(step * 0.7)), 20 + int(2 * np.cos(step * 0.5))  # hand shake
            left, right = max(0, x0), min(width, x0 + sheet.shape[1])
            if right > left:
                frame[y0 : y0 + sheet.shape[0], left:right] = sheet[:, left - x0 : right - x0]
            frames.append(cv2.GaussianBlur(frame, (3, 3), 0))
    with tempfile.TemporaryDirectory(prefix="ai-worker-sample-") as tmp:
        out = Path(tmp) / "sample.mp4"
        command = [
            ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}",
            "-r", str(VIDEO_FPS), "-i", "pipe:0", "-c:v", "mpeg4", "-q:v", "4", "-pix_fmt", "yuv420p",
            str(out),
        ]  # fmt: skip
        subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True, capture_output=True)
        return out.read_bytes()
