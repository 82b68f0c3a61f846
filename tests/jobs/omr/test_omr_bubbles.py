"""The bubble decisions (adaptive threshold, dominance, confidence) and the ring-based position refinement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ai_worker.jobs.omr import bubbles
from ai_worker.jobs.omr.align import align
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.refine import ring_offsets
from ai_worker.jobs.omr.sheet import render_sheet


def _sheet(marks: float, blanks: int = 200, residue: float | None = None) -> np.ndarray:
    fills = [marks] * 30 + [0.02] * blanks + ([residue] * 5 if residue is not None else [])
    return np.array(fills)


def test_threshold_follows_light_pencil_but_never_drops_below_the_floor() -> None:
    assert bubbles.sheet_threshold(_sheet(0.5)) == pytest.approx(0.25)
    assert bubbles.sheet_threshold(_sheet(0.3)) == bubbles.FLOOR


def test_threshold_on_a_pen_sheet_ignores_faint_smudges() -> None:
    threshold = bubbles.sheet_threshold(_sheet(0.9, residue=0.3))
    assert threshold == bubbles.CEILING
    assert bubbles.decide(np.array([0.3, 0.02, 0.01, 0.03]), threshold).status == "blank"


def test_blank_sheet_has_the_floor_as_threshold() -> None:
    assert bubbles.sheet_threshold(np.full(50, 0.05)) == bubbles.FLOOR


@pytest.mark.parametrize(
    ("fills", "status", "marked"),
    [
        ([0.9, 0.02, 0.03, 0.01], "marked", (0,)),
        ([0.02, 0.03, 0.01, 0.05], "blank", ()),
        ([0.5, 0.45, 0.02, 0.03], "multiple", (0, 1)),
        ([0.5, 0.25, 0.02, 0.03], "marked", (0,)),  # 0.25 < 0.6 * 0.5: an erasure leftover next to a firm mark
        ([0.05, 0.4, 0.38, 0.41, 0.02], "multiple", (1, 2, 3)),
    ],
)
def test_row_decisions(fills: list[float], status: str, marked: tuple[int, ...]) -> None:
    reading = bubbles.decide(np.array(fills), threshold=0.2)
    assert (reading.status, reading.marked) == (status, marked)


def test_confidence_is_low_near_the_threshold_and_full_far_from_it() -> None:
    near = bubbles.decide(np.array([0.22, 0.01, 0.02, 0.0]), threshold=0.2)
    far = bubbles.decide(np.array([0.8, 0.01, 0.02, 0.0]), threshold=0.2)
    assert near.status == far.status == "marked"
    assert 0.5 <= near.confidence < 0.6 and far.confidence == 1.0


@pytest.fixture(scope="module")
def aligned_blank() -> tuple[np.ndarray, np.ndarray, float]:
    template = standard_template(50, 5)
    alignment = align(np.asarray(render_sheet(template, dpi=150)), template)
    centres = [p for q in template.questions for p in q.bubbles] + [p for c in template.identifier for p in c]
    points = np.array([alignment.canvas_point(u, v) for u, v in centres])
    return alignment.canvas, points, template.bubble_radius * alignment.frame_px


def test_refinement_leaves_a_well_aligned_page_alone(aligned_blank: tuple[np.ndarray, np.ndarray, float]) -> None:
    canvas, points, radius = aligned_blank
    offsets = ring_offsets(canvas, points, radius)
    assert np.abs(offsets).max() < 0.75


def test_refinement_finds_rings_that_moved(aligned_blank: tuple[np.ndarray, np.ndarray, float]) -> None:
    canvas, points, radius = aligned_blank
    shift = np.array([3.0, -4.0])
    moved = cv2.warpAffine(canvas, np.array([[1, 0, shift[0]], [0, 1, shift[1]]]), canvas.shape[::-1], borderValue=255)
    offsets = ring_offsets(moved, points, radius)
    assert np.abs(offsets - shift).max() < 0.75
