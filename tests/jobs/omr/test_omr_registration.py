"""Registration of the bubble grid: a shaded patch at the page's edge must never be taken for a corner fiducial.

The fiducial detector's ink mask is relative to a wide neighbourhood mean, so next to bright paper a grey table
reads as ink, and a noisy fragment of it can pass every shape test as a small square. Taken as the top-right
corner, it made a larger page than the true fiducial did and won: the homography was then some 45 canvas pixels
off at that corner and the ring refinement locked whole columns one row off (61 of 100 answers wrong, no
identifier). Printed fiducials are black; such a patch is only shaded, and is now rejected on its tone; and
each corner mark's size must fit the perspective the four centres define, which the stray blob's did not.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
import omr_synth
import pytest
from omr_synth import Sheet, make_sheet
from PIL import Image, ImageDraw

from ai_worker.jobs.context import JobContext
from ai_worker.jobs.omr import handle
from ai_worker.jobs.omr.align import align
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import Placement, render_sheet

# The generator's state before sheet 23 of the acceptance seed when every sheet's sensor noise comes from OpenCV's
# stream (seeded from the sheet's rng) instead of numpy's: that capture of a phone photo had the shaded patch.
OTHER_STREAM_STATE = {
    "bit_generator": "PCG64",
    "state": {"state": 332428632600253327293940579726811201820, "inc": 30715098197490589729107799354177433159},
    "has_uint32": 1,
    "uinteger": 3489120270,
}


def _opencv_noise(img: np.ndarray, sigma_levels: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise of the same strength as the generator's, drawn from another stream."""
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    cv2.randn(noise, 0.0, sigma_levels / 255.0)
    return img + noise


def _wrong(result: dict[str, Any], sheet: Sheet) -> int:
    letters = "ABCDE"
    return sum(
        a["marked"] != [letters[i] for i in marked]
        for a, marked in zip(result["answers"], sheet.truth.answers, strict=True)
    )


def test_photo_with_a_shaded_table_fragment_reads_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omr_synth, "_noise", _opencv_noise)
    rng = np.random.default_rng()
    rng.bit_generator.state = OTHER_STREAM_STATE
    sheet = make_sheet(rng, "photo")
    monkeypatch.undo()
    payload = {"question_count": sheet.questions, "n_choices": sheet.choices}
    result = handle(JobContext.for_test("omr_grading", payload, sheet.data))
    assert result["mode"] == "photo"
    assert _wrong(result, sheet) == 0
    assert result["identifier"]["value"] == sheet.truth.identifier


@pytest.mark.parametrize(
    ("tone", "scale"),
    [
        (120, 0.8),  # grey, of fiducial size: rejected on its tone
        (0, 0.5),  # black but a quarter of a fiducial's area: rejected by the perspective fit of the sizes
    ],
)
def test_square_beyond_a_corner_is_not_a_fiducial(tone: int, scale: float) -> None:
    """A scan on a white bed with a square sticker out past the top-right fiducial: it is square, solid, within
    the size spread allowed between corners and on clear paper, and with it the page would be larger; the true
    corner must still win."""
    template = standard_template(25, 4)
    answers = {q: "ABCD"[q % 4] for q in range(1, 26)}
    page = render_sheet(template, dpi=100, answers=answers, identifier="12345678")
    bed = Image.new("L", (page.width + 200, page.height + 200), 255)
    bed.paste(page, (100, 100))
    place = Placement(template, 100)
    x, y = place.point(1.0, 0.0)
    side = place.length(template.fiducial_size) * scale
    cx, cy = x + 100 + 70, y + 100  # to the right of the true top-right fiducial, beyond the page
    ImageDraw.Draw(bed).rectangle((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), fill=tone)
    buf = io.BytesIO()
    bed.save(buf, "PNG")

    gray = np.asarray(bed)
    alignment = align(gray, template)
    # The true fiducial lands where the template puts the top-right corner (to a pixel), not 70 px off.
    corner = alignment.canvas_point(1.0, 0.0)
    half = round(place.length(template.fiducial_size) * alignment.frame_px / place.length(1.0) * 0.3)
    cx_c, cy_c = round(corner[0]), round(corner[1])
    assert alignment.canvas[cy_c - half : cy_c + half, cx_c - half : cx_c + half].mean() < 60

    result = handle(JobContext.for_test("omr_grading", {"question_count": 25, "n_choices": 4}, buf.getvalue()))
    assert [a["choice"] for a in result["answers"]] == [answers[q] for q in range(1, 26)]
    assert result["identifier"]["value"] == "12345678"
