"""The demo samples run through their handlers and give the answers they were drawn with."""

from __future__ import annotations

from ai_worker.jobs import handwriting, segmentation, video
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.samples import sample_exam_page, sample_handwritten_page, sample_homework_video


def test_sample_exam_page_has_six_questions_in_two_columns() -> None:
    result = segmentation.handle(JobContext.for_test("question_segmentation", {}, sample_exam_page()))
    assert result["columns"] == 2
    assert [q["number"] for q in result["questions"]] == [1, 2, 3, 4, 5, 6]
    xs = [q["bbox"][0] for q in result["questions"]]
    assert max(xs[:3]) < 620 < min(xs[3:])


def test_sample_handwritten_page_is_written() -> None:
    result = handwriting.handle(JobContext.for_test("handwriting_analysis", {}, sample_handwritten_page()))
    assert result["writing_present"] and result["writing_score"] > 0.3
    blank_third = handwriting.handle(
        JobContext.for_test("handwriting_analysis", {"bbox": [0, 1300, 1240, 1754]}, sample_handwritten_page())
    )
    assert not blank_third["writing_present"]


def test_sample_homework_video_shows_three_pages_one_written() -> None:
    result = video.handle(JobContext.for_test("homework_video_analysis", {}, sample_homework_video()))
    assert result["pages_detected"] == 3
    assert [p["written"] for p in result["pages"]] == [False, True, False]
    assert result["too_short"] is False
