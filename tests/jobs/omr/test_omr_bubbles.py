"""The filled-fraction measure, the bubble decisions (threshold, confidence, needs_review) and the ring refinement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ai_worker.jobs.omr import bubbles
from ai_worker.jobs.omr.align import align
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.refine import ring_offsets
from ai_worker.jobs.omr.sheet import render_sheet


def _interior(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of a bubble's counted interior and which of them lie in the edge annulus."""
    offsets = bubbles._disc(0.0, bubbles.INTERIOR * radius)
    return offsets, np.hypot(offsets[:, 0], offsets[:, 1]) >= bubbles.EDGE * radius


def _fills(masks: list[np.ndarray], darkness: float, edge: np.ndarray) -> np.ndarray:
    inner = np.array([m * darkness for m in masks], dtype=np.float32)
    return bubbles._filled(inner, edge, bubbles.ink_level(inner))


@pytest.mark.parametrize("darkness", [0.9, 0.35], ids=["pen", "light-pencil"])
def test_filled_fraction_counts_area_not_darkness(darkness: float) -> None:
    offsets, edge = _interior(12.0)
    x, y = offsets[:, 0].astype(float), offsets[:, 1].astype(float)
    full = np.ones(len(offsets))
    half_moon = (x <= 0).astype(float)  # a chord through the centre: half the bubble
    crescent = (np.hypot(x - 6, y) >= 8).astype(float)  # hugs one side of the ring
    dot = (np.hypot(x - 3, y + 2) <= 3).astype(float)  # a stray dot
    fills = _fills([full, half_moon, crescent, dot, np.zeros(len(offsets))], darkness, edge)
    assert fills[0] == pytest.approx(1.0)
    assert fills[1] == pytest.approx(0.5, abs=0.05)
    assert 0.4 <= fills[2] <= 0.8
    assert fills[3] < 0.15
    assert fills[4] == 0.0


def test_erasure_residue_is_not_ink_on_a_pencil_sheet() -> None:
    offsets, edge = _interior(12.0)
    full = np.ones(len(offsets))
    masks = [full] * 20 + [full * 0.25]  # 20 pencil marks at 0.5, one rubbed down to a quarter of their darkness
    fills = _fills(masks, 0.5, edge)
    assert fills[0] == pytest.approx(1.0) and fills[-1] == 0.0


def test_ink_level_of_a_blank_sheet_is_the_default() -> None:
    assert bubbles.ink_level(np.full((50, 100), 0.03, np.float32)) == bubbles.DEFAULT_INK_LEVEL


@pytest.mark.parametrize(
    ("fills", "status", "marked"),
    [
        ([0.9, 0.02, 0.03, 0.01], "marked", (0,)),
        ([0.02, 0.03, 0.01, 0.05], "blank", ()),
        ([0.95, 0.5, 0.02, 0.03], "multiple", (0, 1)),  # a half-filled second choice is a mark too
        ([0.55, 0.12, 0.02, 0.03], "marked", (0,)),  # a half fill alone; a dot next to it is not a mark
        ([0.05, 0.6, 0.45, 0.9, 0.02], "multiple", (1, 2, 3)),
    ],
)
def test_row_decisions(fills: list[float], status: str, marked: tuple[int, ...]) -> None:
    reading = bubbles.decide(np.array(fills), mark_fill=0.4)
    assert (reading.status, reading.marked) == (status, marked)


def test_confidence_is_low_near_the_threshold_and_full_far_from_it() -> None:
    near = bubbles.decide(np.array([0.44, 0.01, 0.02, 0.0]), mark_fill=0.4)
    far = bubbles.decide(np.array([0.9, 0.01, 0.02, 0.0]), mark_fill=0.4)
    assert near.status == far.status == "marked"
    assert 0.5 <= near.confidence < 0.6 and near.needs_review
    assert far.confidence == 1.0 and not far.needs_review


def test_a_reading_that_depends_on_the_ink_level_needs_review() -> None:
    fills = np.array([0.9, 0.05, 0.05])
    unstable = bubbles.decide(fills, 0.4, low=np.array([0.9, 0.05, 0.05]), high=np.array([0.9, 0.45, 0.05]))
    stable = bubbles.decide(fills, 0.4, low=fills, high=fills)
    assert unstable.needs_review and unstable.confidence <= bubbles.UNSTABLE_CONFIDENCE
    assert not stable.needs_review


def test_the_threshold_is_the_setting() -> None:
    fills = np.array([0.55, 0.02, 0.01])
    assert bubbles.decide(fills, mark_fill=0.4).status == "marked"
    assert bubbles.decide(fills, mark_fill=0.6).status == "blank"


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
