"""What declares a job type: `JobSpec`, and the demo `Sample` it can build.

A declaration is light by contract: it names its handler by path ("package.module:function") and builds its demo
sample in a function, so reading every declaration imports no model, OpenCV or cloud client library (a lite worker
never imports torch). `ai_worker.jobs` collects the declarations and derives the registry, the tier rules, the CLI
choices and the demo from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ai_worker.config import Settings

NAME = re.compile(r"[a-z][a-z0-9_]*")  # job types are message fields and CLI choices: lower_snake_case
HANDLER_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class Unavailable(Exception):
    """This environment cannot run the demo sample; the message says why (shown as `skipped`)."""


@dataclass(frozen=True)
class Sample:
    """A demo job with a known truth: its payload, its input file, and how to summarise the result in one line."""

    payload: dict[str, Any]
    input: bytes | None = None
    filename: str = "input.bin"
    truth: str = ""  # what a correct result looks like, printed beside the summary
    summarize: Callable[[dict[str, Any]], str] | None = None  # short view of the result; generic when None
    settings: Callable[[Settings], Settings] | None = None  # what the worker needs changed to run it


@dataclass(frozen=True)
class JobSpec:
    """One job type, declared once.

    `tiers`: the tiers whose queues may carry it (a message of another tier fails as a tier violation).
    `settings`: the settings section its handler reads (`ctx.settings.section(cls)`), if any: a frozen dataclass of
    `ai_worker.config` style with its `ENV_PREFIX`. `Settings.from_env` reads it with the rest, so a job type brings
    its own variables (docs/configuration.md lists the built-in ones).
    `timeout_s` / `memory_mb`: the job's own limits; None means the worker-wide AI_WORKER_JOB_TIMEOUT_S /
    AI_WORKER_JOB_MEMORY_MB, which also cap them (see `limits`).
    `sample`: builds the demo's input (importing what it needs when called), or raises `Unavailable`.
    `batch`: how many pending jobs of this type the engine may hand a job process in one call; above 1 the
    handler's module must also have `handle_batch(contexts)` (each job keeps its own outcome; docs/engine.md).
    """

    name: str
    handler: str
    tiers: tuple[str, ...]
    description: str
    settings: type | None = None
    timeout_s: float | None = None
    memory_mb: int | None = None
    sample: Callable[[Settings], Sample] | None = None
    batch: int = 1

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"job type {self.name!r} must be lower_snake_case")
        if not HANDLER_PATH.fullmatch(self.handler):
            raise ValueError(f"handler of {self.name!r} must look like 'package.module:function', not {self.handler!r}")
        if not self.tiers:
            raise ValueError(f"job type {self.name!r} must name the tiers that may run it")
        if self.batch < 1:
            raise ValueError(f"batch of {self.name!r} must be at least 1")

    def limits(self, settings: Settings) -> tuple[float, int]:
        """(time limit in seconds, memory limit in MB) of one job of this type under `settings`."""
        timeout_s = min(self.timeout_s or settings.job_timeout_s, settings.job_timeout_s)
        memory_mb = min(self.memory_mb or settings.job_memory_mb, settings.job_memory_mb)
        return timeout_s, memory_mb
