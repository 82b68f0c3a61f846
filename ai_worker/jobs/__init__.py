"""Job handlers, one module per job type, resolved lazily by dotted path.

A handler is `handle(ctx: JobContext) -> dict` (the JSON-serialisable `result`). It raises
`PermanentError` / `TransientError` (ai_worker.errors) for failures. Handlers import their heavy libraries
(torch, cv2, google-cloud, openai, ...) inside the module that needs them, never at package import, so a lite
worker never imports torch. Models are cached at module level: handler modules live in long-running job
processes and stay warm between jobs.

The registry maps job type -> "module:function"; tests pass their own registry to the worker so the engine can
be tested without AI models.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ai_worker.jobs.context import JobContext

Handler = Callable[[JobContext], dict[str, Any]]

REGISTRY: Mapping[str, str] = {
    "ocr": "ai_worker.jobs.ocr:handle",
    "omr_grading": "ai_worker.jobs.omr:handle",
    "question_segmentation": "ai_worker.jobs.segmentation:handle",
    "handwriting_analysis": "ai_worker.jobs.handwriting:handle",
    "homework_video_analysis": "ai_worker.jobs.video:handle",
    "embedding": "ai_worker.jobs.embedding:handle",
    "problem_generation": "ai_worker.jobs.problem_generation:handle",
}


def resolve(path: str) -> Handler:
    """Import "package.module:function" and return the function."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"handler path {path!r} must look like 'package.module:function'")
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler
