"""A toy job type, declared the way a real one is: this module plus one `register(SPEC)` line (see the test)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ai_worker.jobs.spec import JobSpec, Sample

if TYPE_CHECKING:
    from ai_worker.config import Settings
    from ai_worker.jobs.context import JobContext


def handle(ctx: JobContext) -> dict[str, Any]:
    """Echoes the payload's `text`, reversed."""
    return {"echo": str(ctx.payload.get("text", ""))[::-1]}


def sample(settings: Settings) -> Sample:
    return Sample({"text": "stressed"}, truth="desserts", summarize=lambda result: result["echo"])


SPEC = JobSpec(
    name="toy_echo",
    handler=f"{__name__}:handle",
    tiers=("lite", "premium"),
    description="the payload's text, reversed",
    sample=sample,
)
