"""The coloured-pen cue on a rectified sheet: colour fringes a camera puts on black print are not pen ink."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ai_worker.jobs import video

PAPER = (228, 233, 236)  # BGR
WORDS = ("find the value of each number below", "write the answer in the box", "how many pieces are left")


def _print(sheet: np.ndarray, ink: tuple[int, int, int] = (25, 25, 25)) -> None:
    for k in range(18):
        cv2.putText(sheet, WORDS[k % 3], (60, 80 + 48 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.0, ink, 2, cv2.LINE_AA)
    cv2.putText(sheet, "Math practice 7", (60, 40), cv2.FONT_HERSHEY_DUPLEX, 1.3, ink, 4, cv2.LINE_AA)
    cv2.rectangle(sheet, (400, 900), (700, 960), ink, 3)


def _handwriting(sheet: np.ndarray, pen: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(3)
    for k in range(6):  # a short answer in the box and a few scribbled words, one crossing the box's border
        x0, y0 = 420 + 45 * k, 945
        pts = np.cumsum(rng.normal(0, 6, (8, 2)), axis=0) + np.array([x0, y0 - 20])
        cv2.polylines(sheet, [pts.astype(np.int32)], False, pen, 3, cv2.LINE_AA)
    cv2.line(sheet, (650, 930), (760, 915), pen, 3, cv2.LINE_AA)


def _camera(sheet: np.ndarray, shift: float) -> np.ndarray:
    """What the rectified sheet shows through a phone: blur, the red and blue images shifted against the green one
    (lateral chromatic aberration: a frame's 0.3-1 px, rectified), sharpening, 4:2:0 chroma, noise."""
    img = cv2.GaussianBlur(sheet.astype(np.float32), (0, 0), 1.2)
    for channel, (dx, dy) in ((2, (shift, 0.4 * shift)), (0, (-0.8 * shift, -0.3 * shift))):
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        img[..., channel] = cv2.warpAffine(np.ascontiguousarray(img[..., channel]), m, img.shape[1::-1],
                                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    img = cv2.addWeighted(img, 1.4, cv2.GaussianBlur(img, (0, 0), 2.0), -0.4, 0)
    ycc = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2YCrCb)
    h, w = ycc.shape[:2]
    ycc[..., 1:] = cv2.resize(cv2.resize(ycc[..., 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h))
    out = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR).astype(np.float32)
    out += np.random.default_rng(5).normal(0, 2.5, out.shape[:2])[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _pen_share(color: np.ndarray) -> tuple[float, float]:
    """The pen ink found, and the ink whose pixels alone show a hue (the cue before a mark's colour was weighed)."""
    ink, _ = video._ink(cv2.cvtColor(color, cv2.COLOR_BGR2GRAY))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (video.SHEET_CLOSE, video.SHEET_CLOSE))
    passed = color.astype(np.float32) / (cv2.morphologyEx(color, cv2.MORPH_CLOSE, kernel).astype(np.float32) + 1)
    hued = video._speckless(ink & (passed.max(axis=2) - passed.min(axis=2) >= video.PEN_HUE))
    return float(video._pen_ink(color, ink).mean()), float(hued.mean())


@pytest.mark.parametrize("shift", [0.8, 1.5, 2.5])
def test_colour_fringes_on_black_print_are_not_pen_ink(shift: float) -> None:
    sheet = np.full((1000, 760, 3), PAPER, np.uint8)
    _print(sheet)
    pen, hued = _pen_share(_camera(sheet, shift))
    assert hued >= video.PEN_INK_MIN  # the fringes alone pass the per-pixel hue test ...
    assert pen < video.PEN_INK_MIN / 4  # ... but no mark keeps a colour over all of it


@pytest.mark.parametrize("ink", [(150, 60, 25), (110, 40, 40), (40, 40, 170), (60, 120, 30)])  # blue, navy, red, green
def test_pen_ink_next_to_print_is_found_through_the_same_camera(ink: tuple[int, int, int]) -> None:
    sheet = np.full((1000, 760, 3), PAPER, np.uint8)
    _print(sheet)
    _handwriting(sheet, ink)
    pen, _ = _pen_share(_camera(sheet, 1.5))
    assert pen >= 2 * video.PEN_INK_MIN


# Print whose black is not neutral: its channels lose 15-30 % unequally over every mark (BGR): dark-blue, brown-black
# and greenish composite black print.
TINTED_PRINT = [(75, 40, 20), (20, 40, 80), (30, 70, 25)]
PENS_ON_TINT = [(150, 60, 25), (40, 40, 170), (150, 60, 25)]  # blue, red, blue


@pytest.mark.parametrize("print_ink", TINTED_PRINT)
def test_tinted_print_is_not_pen_ink(print_ink: tuple[int, int, int]) -> None:
    sheet = np.full((1000, 760, 3), PAPER, np.uint8)
    _print(sheet, print_ink)
    pen, hued = _pen_share(_camera(sheet, 1.0))
    assert hued >= video.PEN_INK_MIN  # the print's pixels show a hue ...
    assert pen < video.PEN_INK_MIN / 4  # ... which every mark of the page shares: it is the print's


@pytest.mark.parametrize(("print_ink", "ink"), list(zip(TINTED_PRINT, PENS_ON_TINT, strict=True)))
def test_pen_ink_on_tinted_print_is_found(print_ink: tuple[int, int, int], ink: tuple[int, int, int]) -> None:
    """Blue pen on dark-blue print, red pen on brown-black print, blue pen on greenish print."""
    sheet = np.full((1000, 760, 3), PAPER, np.uint8)
    _print(sheet, print_ink)
    _handwriting(sheet, ink)
    pen, _ = _pen_share(_camera(sheet, 1.0))
    assert pen >= 2 * video.PEN_INK_MIN
