"""omr_grading through its handler: reading, orientation, grading, templates from the payload, and every failure."""

from __future__ import annotations

import io
import tracemalloc
from typing import Any

import numpy as np
import pytest
from omr_synth import lens_distortion
from PIL import Image, ImageDraw

from ai_worker.config import Settings, VisionSettings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.omr import handle
from ai_worker.jobs.omr.align import ALIGNMENT_FAILED
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import Placement, render_sheet
from ai_worker.jobs.omr.template import Label, Question, Template

ANSWERS = {1: "A", 2: "D", 3: ["B", "C"], 5: "B", 7: "C", 26: "A", 30: "D"}  # 4, 6, 8-25, 27-29 blank
STUDENT = "20261127"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _run(payload: dict[str, Any], data: bytes | None, settings: Settings | None = None) -> dict[str, Any]:
    return handle(JobContext.for_test("omr_grading", payload, data, settings=settings))


def _failure(payload: dict[str, Any], data: bytes | None, settings: Settings | None = None) -> PermanentError:
    with pytest.raises(PermanentError) as info:
        _run(payload, data, settings)
    return info.value


@pytest.fixture(scope="module")
def filled() -> Image.Image:
    return render_sheet(standard_template(30, 4), dpi=150, answers=ANSWERS, identifier=STUDENT)


def _expected(question: int) -> tuple[str, list[str]]:
    chosen = ANSWERS.get(question)
    if chosen is None:
        return "blank", []
    marks = [chosen] if isinstance(chosen, str) else list(chosen)
    return ("marked" if len(marks) == 1 else "multiple"), marks


def _assert_reads_filled(result: dict[str, Any]) -> None:
    assert result["aligned"] is True and result["alignment_method"] == "fiducials"
    assert result["identifier"] == {
        "value": STUDENT,
        "digits": list(STUDENT),
        "status": "read",
        "confidence": 1.0,
        "needs_review": False,
    }
    assert result["needs_review"] is False and result["review_questions"] == []
    assert [a["question"] for a in result["answers"]] == list(range(1, 31))
    for answer in result["answers"]:
        status, marks = _expected(answer["question"])
        assert (answer["status"], answer["marked"]) == (status, marks), answer
        assert answer["choice"] == (marks[0] if status == "marked" else None)
        assert 0.9 <= answer["confidence"] <= 1.0 and answer["needs_review"] is False


def test_clean_scan_is_read_exactly(filled: Image.Image) -> None:
    result = _run({"question_count": 30, "n_choices": 4}, _png(filled))
    _assert_reads_filled(result)
    assert result["mode"] == "scan" and result["orientation_deg"] == 0 and result["template"] == "standard"
    assert "score" not in result


@pytest.mark.parametrize(("turn_ccw", "orientation"), [(180, 180), (90, 270), (-90, 90), (3, 0)])
def test_any_rotation_is_undone(filled: Image.Image, turn_ccw: int, orientation: int) -> None:
    turned = filled.rotate(turn_ccw, expand=True, fillcolor=255, resample=Image.Resampling.BILINEAR)
    result = _run({"question_count": 30, "n_choices": 4}, _png(turned))
    _assert_reads_filled(result)
    assert result["orientation_deg"] == orientation


def test_bubbles_are_found_on_a_distorted_page(filled: Image.Image) -> None:
    # Strong barrel distortion bends the grid by millimetres between the fiducials: no homography follows it,
    # and without locating the rings this page fails alignment.
    distorted = lens_distortion(np.asarray(filled, dtype=np.float32) / 255.0, 0.05)
    photo = Image.fromarray(np.clip(distorted * 255.0, 0, 255).astype(np.uint8), "L")
    _assert_reads_filled(_run({"question_count": 30, "n_choices": 4}, _png(photo)))


def test_reading_fewer_questions_than_printed(filled: Image.Image) -> None:
    result = _run({"question_count": 5, "n_choices": 4}, _png(filled))
    assert [a["status"] for a in result["answers"]] == ["marked", "marked", "multiple", "blank", "marked"]


def test_answer_key_list_grades_and_scores(filled: Image.Image) -> None:
    # Right on 1, 2, 7; wrong on 5; multiple on 3; blank on 4; question 6 has no key (None).
    key: list[Any] = ["A", "D", "B", "C", "C", None, "C"]
    result = _run({"question_count": 30, "n_choices": 4, "answer_key": key}, _png(filled))
    assert result["score"] == {"correct": 3, "incorrect": 1, "blank": 1, "multiple": 1, "graded": 6, "percent": 50.0}
    graded = {a["question"]: a.get("correct") for a in result["answers"]}
    assert graded[1] is True and graded[5] is False and graded[3] is False and graded[6] is None


def test_answer_key_object_accepts_indices_and_lower_case(filled: Image.Image) -> None:
    key = {"1": 0, 2: "d", "26": "A", 30: 1}
    result = _run({"question_count": 30, "n_choices": 4, "answer_key": key}, _png(filled))
    assert result["score"]["correct"] == 3 and result["score"]["incorrect"] == 1
    assert result["score"]["percent"] == 75.0


def _quiz_template() -> Template:
    """A landscape quiz of 12 questions with choices 1-3 in two columns and no identifier."""
    questions = tuple(
        Question(k + 1, tuple((0.12 + 0.45 * (k // 6) + 0.08 * c, 0.15 + 0.14 * (k % 6)) for c in range(3)))
        for k in range(12)
    )
    labels = tuple(Label(str(q.number), q.bubbles[0][0] - 0.05, q.bubbles[0][1], 0.025) for q in questions)
    return Template(
        frame_width=180.0,
        frame_height=110.0,
        fiducial_size=8.0 / 180.0,
        bubble_radius=2.5 / 180.0,
        choices=("1", "2", "3"),
        questions=questions,
        labels=labels,
    )


def test_template_from_the_payload_describes_another_layout() -> None:
    template = _quiz_template()
    marks = {1: "3", 2: "1", 8: "2", 12: ["1", "3"]}
    image = render_sheet(template, dpi=150, answers=marks).rotate(180)
    result = _run({"template": template.to_dict(), "answer_key": ["3", "2"]}, _png(image))
    assert result["template"] == "payload" and result["identifier"] is None and result["n_choices"] == 3
    read = {a["question"]: a["marked"] for a in result["answers"] if a["status"] != "blank"}
    assert read == {1: ["3"], 2: ["1"], 8: ["2"], 12: ["1", "3"]}
    assert result["score"]["correct"] == 1 and result["score"]["incorrect"] == 1


def test_template_that_does_not_match_the_print_fails_alignment(filled: Image.Image) -> None:
    # Same fiducials, but the bubbles moved onto paper where nothing is printed (the empty 2nd column).
    moved = standard_template(25, 4).to_dict()
    for question in moved["questions"]:
        question["bubbles"] = [[x + 0.5, y] for x, y in question["bubbles"]]
    error = _failure({"template": moved}, _png(render_sheet(standard_template(25, 4), dpi=150)))
    assert error.code == ALIGNMENT_FAILED and "no printed bubbles" in error.message


def _clutter(rng: np.random.Generator) -> Image.Image:
    """A busy non-sheet image: dark rectangles of fiducial size, discs and lines on a gradient."""
    image = Image.fromarray(np.tile(np.linspace(120, 240, 1200, dtype=np.uint8), (1600, 1)).T.copy(), "L")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, 1600)), int(rng.integers(0, 1200))
        size = int(rng.integers(20, 60))
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle((x, y, x + size, y + size), fill=int(rng.integers(0, 60)))
        elif shape == 1:
            draw.ellipse((x, y, x + size, y + size), fill=int(rng.integers(0, 60)))
        else:
            draw.line((x, y, x + 5 * size, y + size), fill=0, width=3)
    return image


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_non_sheet_image_fails_alignment(seed: int) -> None:
    error = _failure({"question_count": 20}, _png(_clutter(np.random.default_rng(seed))))
    assert error.code == ALIGNMENT_FAILED


@pytest.mark.parametrize("size", [(1240, 1754), (8, 8)], ids=["a4", "tiny"])
def test_blank_paper_fails_alignment(size: tuple[int, int]) -> None:
    error = _failure({"question_count": 20}, _png(Image.new("L", size, 250)))
    assert error.code == ALIGNMENT_FAILED and "0 of the 4" in error.message


def test_covered_fiducial_fails_alignment(filled: Image.Image) -> None:
    covered = filled.copy()
    place = Placement(standard_template(30, 4), 150)
    x, y = place.point(1.0, 1.0)
    ImageDraw.Draw(covered).rectangle((x - 40, y - 40, x + 40, y + 40), fill=255)
    error = _failure({"question_count": 30, "n_choices": 4}, _png(covered))
    assert error.code == ALIGNMENT_FAILED


def test_missing_orientation_mark_fails_alignment(filled: Image.Image) -> None:
    solid = filled.copy()
    place = Placement(standard_template(30, 4), 150)
    x, y = place.point(0.0, 0.0)
    half = place.length(standard_template(30, 4).fiducial_size) / 2
    ImageDraw.Draw(solid).rectangle((x - half, y - half, x + half, y + half), fill=0)
    error = _failure({"question_count": 30, "n_choices": 4}, _png(solid))
    assert error.code == ALIGNMENT_FAILED and "orientation" in error.message


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"],
    ids=["empty", "text", "truncated-png", "pdf"],
)
def test_unreadable_input_is_invalid(data: bytes) -> None:
    assert _failure({"question_count": 20}, data).code == INVALID_INPUT


def test_truncated_jpeg_is_invalid(filled: Image.Image) -> None:
    buf = io.BytesIO()
    filled.save(buf, "JPEG")
    assert _failure({"question_count": 20}, buf.getvalue()[:2000]).code == INVALID_INPUT


def test_pixel_cap_is_checked_before_decoding(filled: Image.Image) -> None:
    settings = Settings(vision=VisionSettings(max_pixels=1_000_000))
    assert _failure({"question_count": 20}, _png(filled), settings).code == INPUT_TOO_LARGE


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "question_count is required"),
        ({"question_count": 0}, "positive integer"),
        ({"question_count": "20"}, "positive integer"),
        ({"question_count": 101}, "between 1 and 100"),
        ({"question_count": 20, "n_choices": 3}, "4 or 5"),
        ({"question_count": 20, "answer_key": ["A", "F"]}, "'F'"),
        ({"question_count": 2, "answer_key": ["A", "B", "C"]}, "3 entries"),
        ({"question_count": 20, "answer_key": {"21": "A"}}, "not on the sheet"),
        ({"question_count": 20, "answer_key": {"one": "A"}}, "not a question number"),
        ({"question_count": 20, "answer_key": "ABCD"}, "must be a list"),
        ({"template": {"schema": "other"}}, "template.schema"),
        ({"template": "standard"}, "JSON object"),
    ],
)
def test_bad_payload_is_refused_before_the_input_is_read(payload: dict[str, Any], fragment: str) -> None:
    def never() -> bytes:
        raise AssertionError("the input must not be fetched for an invalid payload")

    ctx = JobContext.for_test("omr_grading", payload)
    ctx.load_input = never
    with pytest.raises(PermanentError) as info:
        handle(ctx)
    assert info.value.code == INVALID_INPUT and fragment in info.value.message


def test_payload_template_counts_must_fit_it() -> None:
    template = _quiz_template().to_dict()
    for payload, fragment in (
        ({"template": template, "n_choices": 4}, "has 3 choices"),
        ({"template": template, "question_count": 13}, "has 12 questions"),
    ):
        error = _failure(payload, None)
        assert error.code == INVALID_INPUT and fragment in error.message


def test_a4_at_300_dpi_stays_far_under_the_memory_bound() -> None:
    data = _png(render_sheet(standard_template(100, 5), dpi=300, answers={1: "C"}, identifier=STUDENT))
    tracemalloc.start()
    try:
        result = _run({"question_count": 100}, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["answers"][0]["choice"] == "C" and result["identifier"]["value"] == STUDENT
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # the job budget is 1 GiB
