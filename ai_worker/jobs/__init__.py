"""Job types: one declaration each (`ai_worker.jobs.specs.<type>.SPEC`), registered below; handlers resolved lazily.

Everything that depends on the set of job types is derived here from the declarations, and stays in step when a
declaration is registered: `JOB_TYPES` (the contract's order), `REGISTRY` (type -> handler path, what the worker
runs), `ALLOWED_JOB_TYPES` / `allows` (the tier rules the worker enforces on every message), `lowest_tier`, and
through them the CLI's choices and the demo. Adding a job type is one module declaring `SPEC` and one line in
`DECLARED` (see docs/jobs/README.md).

A handler is `handle(ctx: JobContext) -> dict` (the JSON-serialisable `result`). It raises `PermanentError` /
`TransientError` (ai_worker.errors) for failures. Handlers import their heavy libraries (torch, cv2, google-cloud,
openai, ...) inside the module that needs them, never at package import, so a lite worker never imports torch.
Models are cached at module level: handler modules live in long-running job processes and stay warm between jobs.
Tests pass their own registry to the worker so the engine can be tested without AI models.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ai_worker.jobs.spec import JobSpec
from ai_worker.tiers import TIERS, Tier

if TYPE_CHECKING:
    from ai_worker.jobs.context import JobContext

Handler = Callable[["JobContext"], dict[str, Any]]

# The registration list: the module declaring each job type's `SPEC`, in the contract's order (the order of the
# demo table and of error messages). Modules, not imports: a bare `ocr` here would shadow `ai_worker.jobs.ocr`.
DECLARED: tuple[str, ...] = (
    "ai_worker.jobs.specs.ocr",
    "ai_worker.jobs.specs.omr_grading",
    "ai_worker.jobs.specs.question_segmentation",
    "ai_worker.jobs.specs.homework_video_analysis",
    "ai_worker.jobs.specs.handwriting_analysis",
    "ai_worker.jobs.specs.embedding",
    "ai_worker.jobs.specs.problem_generation",
)

# Derived views, updated in place by `register` (modules that imported them see a job type registered later).
SPECS: dict[str, JobSpec] = {}
JOB_TYPES: list[str] = []
REGISTRY: dict[str, str] = {}
ALLOWED_JOB_TYPES: dict[Tier, set[str]] = {tier: set() for tier in TIERS}


def register(spec: JobSpec) -> JobSpec:
    """Add a job type; every view above includes it from now on."""
    if spec.name in SPECS:
        raise ValueError(f"job type {spec.name!r} is declared twice")
    unknown = sorted(set(spec.tiers) - set(TIERS))
    if unknown:
        raise ValueError(f"job type {spec.name!r} names unknown tier(s) {unknown}; tiers: {', '.join(TIERS)}")
    SPECS[spec.name] = spec
    JOB_TYPES.append(spec.name)
    REGISTRY[spec.name] = spec.handler
    for tier in TIERS:
        if tier in spec.tiers:
            ALLOWED_JOB_TYPES[tier].add(spec.name)
    return spec


def unregister(name: str) -> None:
    """Remove a job type (tests that register a toy one clean up with this)."""
    del SPECS[name], REGISTRY[name]
    JOB_TYPES.remove(name)
    for allowed in ALLOWED_JOB_TYPES.values():
        allowed.discard(name)


def allows(tier: Tier, job_type: str) -> bool:
    return job_type in ALLOWED_JOB_TYPES[tier]


def lowest_tier(job_type: str) -> Tier:
    """The cheapest tier that runs `job_type` (lite, then basic, then premium)."""
    return next(tier for tier in TIERS if allows(tier, job_type))


def resolve(path: str) -> Handler:
    """Import "package.module:function" and return the function."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"handler path {path!r} must look like 'package.module:function'")
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler


def declaration(module: str) -> JobSpec:
    """The `SPEC` a declaration module defines."""
    spec = importlib.import_module(module).SPEC
    if not isinstance(spec, JobSpec):
        raise TypeError(f"{module}.SPEC is not a JobSpec")
    return spec


for _module in DECLARED:
    register(declaration(_module))
