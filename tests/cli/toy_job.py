"""A toy job type, declared the way a real one is: this one module, registered by one line (see the test).

It brings its own settings section: `AI_WORKER_TOY_TIMES` (how many times to echo), read by `Settings.from_env`
with the built-in ones once the job type is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from ai_worker.jobs.spec import JobSpec, Sample

if TYPE_CHECKING:
    from pydantic import Field  # annotations stay strings until the settings are read, as in ai_worker.config

    from ai_worker.config import Settings
    from ai_worker.jobs.context import JobContext


@dataclass(frozen=True)
class ToySettings:
    ENV_PREFIX: ClassVar[str] = "AI_WORKER_TOY_"

    times: Annotated[int, Field(ge=1, le=3, description="How many times the text is echoed.")] = 1


def handle(ctx: JobContext) -> dict[str, Any]:
    """Echoes the payload's `text`, reversed, `times` times."""
    times = ctx.settings.section(ToySettings).times
    return {"echo": " ".join([str(ctx.payload.get("text", ""))[::-1]] * times)}


def sample(settings: Settings) -> Sample:
    return Sample({"text": "stressed"}, truth="desserts", summarize=lambda result: result["echo"])


SPEC = JobSpec(
    name="toy_echo",
    handler=f"{__name__}:handle",
    tiers=("lite", "premium"),
    description="the payload's text, reversed",
    settings=ToySettings,
    sample=sample,
)
