"""handwriting_analysis on pages with no handwriting at all: printed exams and answer sheets are not writing.

Covers the page kinds the homework-sheet generator does not draw: the bundled exam sample (a larger title, choice
rows like "(4) 7"), the OMR answer sheet blank and filled (bubbles, fiducials, labels; a filled bubble is a mark,
not writing), and the question-segmentation generator's exam pages (one or two columns, five Hershey fonts or PIL's,
figures, skewed scans) as scanned at other resolutions, rotated and JPEG-compressed.
"""

from __future__ import annotations

import importlib.util
import io
import random
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from ai_worker.jobs.context import JobContext
from ai_worker.jobs.handwriting import handle
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import render_sheet
from ai_worker.jobs.samples import sample_exam_page, sample_handwritten_page

PRINTED_SEEDS = range(40)  # question-segmentation exam pages, none written on
RESCAN_SEEDS = range(100, 120)
LOW_SCORE = 0.05  # the blank homework sheets' bound in test_handwriting.py


def run(data: bytes) -> dict:
    return handle(JobContext.for_test("handwriting_analysis", {}, data))


def _seg_pages() -> ModuleType:
    """The question-segmentation test generator (its folder is on sys.path only when its own tests are collected)."""
    if "seg_pages" not in sys.modules:
        path = Path(__file__).parents[1] / "segmentation" / "seg_pages.py"
        spec = importlib.util.spec_from_file_location("seg_pages", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["seg_pages"] = module  # before running it: its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["seg_pages"]


def _png(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _assert_not_writing(result: dict) -> None:
    assert not result["writing_present"], result
    assert result["writing_score"] < LOW_SCORE, result


def test_printed_exam_sample_is_not_writing() -> None:
    _assert_not_writing(run(sample_exam_page()))
    written = run(sample_handwritten_page())
    assert written["writing_present"] and written["writing_score"] > 0.2


@pytest.mark.parametrize("dpi", [100, 150, 200, 300])
def test_blank_answer_sheet_is_not_writing(dpi: int) -> None:
    _assert_not_writing(run(_png(render_sheet(standard_template(20, 5), dpi=dpi))))


@pytest.mark.parametrize("dpi", [100, 150, 300])
def test_filled_bubbles_are_not_writing(dpi: int) -> None:
    rng = random.Random(dpi)
    answers = {q: rng.choice("ABCDE") for q in range(1, 21)}
    sheet = render_sheet(standard_template(20, 5), dpi=dpi, answers=answers, identifier="20261234")
    _assert_not_writing(run(_png(sheet)))


def test_printed_exam_pages_are_not_writing() -> None:
    seg_pages = _seg_pages()
    present = [seed for seed in PRINTED_SEEDS if run(seg_pages.render_exam_page(seed).encode())["writing_present"]]
    print(f"writing reported on {len(present)}/{len(PRINTED_SEEDS)} printed pages: seeds {present}")
    assert len(present) / len(PRINTED_SEEDS) <= 0.02


def test_rescanned_printed_pages_are_not_writing() -> None:
    """100-300 dpi, turned up to 1.5 degrees more, JPEG quality 40-85: still no writing."""
    seg_pages = _seg_pages()
    present = []
    for seed in RESCAN_SEEDS:
        rng = random.Random(seed)
        page = seg_pages.render_exam_page(seed).image
        scale = rng.choice((100, 200, 300)) / 150
        page = cv2.resize(
            page, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        )
        height, width = page.shape
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-1.5, 1.5), 1.0)
        page = cv2.warpAffine(page, turn, (width, height), borderValue=int(np.median(page)))
        ok, jpeg = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 85)])
        assert ok
        if run(jpeg.tobytes())["writing_present"]:
            present.append(seed)
    print(f"writing reported on {len(present)}/{len(RESCAN_SEEDS)} rescanned printed pages: seeds {present}")
    assert not present
