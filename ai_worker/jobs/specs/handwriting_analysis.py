"""handwriting_analysis: whether, and how much, a page carries handwriting."""

from __future__ import annotations

from typing import Any

from ai_worker.config import Settings, VisionSettings
from ai_worker.jobs.spec import JobSpec, Sample


def sample(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_handwritten_page

    def summarize(r: dict[str, Any]) -> str:
        present = "writing present" if r["writing_present"] else "no writing"
        return f"{present}, writing score {r['writing_score']:.2f}, {r['handwritten_lines']} handwritten line(s)"

    return Sample(
        {}, sample_handwritten_page(), "answered-page.png", truth="writing present, 6 lines", summarize=summarize
    )


SPEC = JobSpec(
    name="handwriting_analysis",
    handler="ai_worker.jobs.handwriting:handle",
    tiers=("premium",),
    description="handwriting on a page: present or not, how much, how many lines",
    settings=VisionSettings,
    sample=sample,
)
