"""omr_grading: answer sheets read by their corner fiducials, graded against an optional key."""

from __future__ import annotations

import io
from typing import Any

from ai_worker.config import Settings, VisionSettings
from ai_worker.jobs.spec import JobSpec, Sample

QUESTIONS = 20
LETTERS = "ABCDE"
DPI = 150  # small A4 render (1240x1754): fast to upload and to read, bubbles still ~20 px wide
STUDENT = "20261234"


def sample(settings: Settings) -> Sample:
    from ai_worker.jobs.omr.layout import standard_template
    from ai_worker.jobs.omr.sheet import render_sheet

    key = [LETTERS[(i * 3) % 5] for i in range(QUESTIONS)]
    marked = dict(enumerate(key, start=1))
    marked[4] = LETTERS[(LETTERS.index(key[3]) + 1) % 5]  # two wrong answers: the truth is 18 of 20
    marked[11] = LETTERS[(LETTERS.index(key[10]) + 2) % 5]
    template = standard_template(QUESTIONS, len(LETTERS), "ai-worker demo")
    png = io.BytesIO()
    render_sheet(template, dpi=DPI, answers=marked, identifier=STUDENT).save(png, format="PNG")

    def summarize(result: dict[str, Any]) -> str:
        score = result["score"]
        return f"{score['correct']}/{score['graded']} correct, student id {result['identifier']['value']}"

    return Sample(
        {"question_count": QUESTIONS, "n_choices": len(LETTERS), "answer_key": key},
        png.getvalue(),
        "answer-sheet.png",
        truth=f"{QUESTIONS - 2}/{QUESTIONS}, id {STUDENT}",
        summarize=summarize,
    )


SPEC = JobSpec(
    name="omr_grading",
    handler="ai_worker.jobs.omr:handle",
    tiers=("basic", "premium"),
    description="marks of an answer sheet, graded against an answer key",
    settings=VisionSettings,
    sample=sample,
)
