"""question_segmentation: exam pages split into question regions in reading order."""

from __future__ import annotations

from ai_worker.config import Settings, VisionSettings
from ai_worker.jobs.spec import JobSpec, Sample


def sample(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_exam_page

    return Sample(
        {},
        sample_exam_page(),
        "exam-page.png",
        truth="6 questions, 2 columns",
        summarize=lambda r: f"{len(r['questions'])} questions, {r['columns']} column(s) ({r['method']})",
    )


SPEC = JobSpec(
    name="question_segmentation",
    handler="ai_worker.jobs.segmentation:handle",
    tiers=("basic", "premium"),
    description="question regions of exam pages, in reading order",
    settings=VisionSettings,
    sample=sample,
)
