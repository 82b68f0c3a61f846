"""problem_generation: a multiple-choice problem written by an OpenAI model from a source text."""

from __future__ import annotations

import os

from ai_worker.config import LlmSettings, Settings
from ai_worker.jobs.spec import JobSpec, Sample, Unavailable


def sample(settings: Settings) -> Sample:
    if not os.environ.get("OPENAI_API_KEY"):
        raise Unavailable("OPENAI_API_KEY is not set (problem generation calls the OpenAI API)")
    return Sample(
        {"text": "Solve for x: 2x + 3 = 11.", "language": "en"},
        truth="a five-choice problem",
        summarize=lambda r: f"{r['body']} ({len(r['choices'])} choices, answer {r['answer']}, {r['model']})",
    )


SPEC = JobSpec(
    name="problem_generation",
    handler="ai_worker.jobs.problem_generation:handle",
    tiers=("premium",),
    description="a multiple-choice problem generated from a text (OpenAI)",
    settings=LlmSettings,
    sample=sample,
)
