"""homework_video_analysis: the pages shown in a homework video, and which of them were written on."""

from __future__ import annotations

from typing import Any

from ai_worker.config import Settings, VisionSettings
from ai_worker.jobs.spec import JobSpec, Sample


def sample(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_homework_video

    def summarize(r: dict[str, Any]) -> str:
        written = [i for i, page in enumerate(r["pages"], start=1) if page["written"]]
        return f"{r['pages_detected']} pages in {r['duration_s']:.1f}s, written on: {written or 'none'}"

    return Sample({}, sample_homework_video(), "homework.mp4", truth="3 pages, written on: [2]", summarize=summarize)


SPEC = JobSpec(
    name="homework_video_analysis",
    handler="ai_worker.jobs.video:handle",
    tiers=("basic", "premium"),
    description="pages shown in a homework video and whether each was written on",
    settings=VisionSettings,
    sample=sample,
)
