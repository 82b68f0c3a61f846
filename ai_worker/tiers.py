"""Tiers: which job types each tier may run and which tiers each worker kind polls.

This table is the contract with producers; the worker enforces it on every message.
"""

from __future__ import annotations

from typing import Final, Literal

Tier = Literal["lite", "basic", "premium"]
WorkerKind = Literal["cpu", "gpu"]

TIERS: Final[tuple[Tier, ...]] = ("lite", "basic", "premium")

JOB_TYPES: Final[tuple[str, ...]] = (
    "ocr",
    "omr_grading",
    "question_segmentation",
    "homework_video_analysis",
    "handwriting_analysis",
    "embedding",
    "problem_generation",
)

_LITE: Final = frozenset({"ocr"})
_BASIC: Final = _LITE | {"omr_grading", "question_segmentation", "homework_video_analysis"}
_PREMIUM: Final = frozenset(JOB_TYPES)

ALLOWED_JOB_TYPES: Final[dict[Tier, frozenset[str]]] = {"lite": _LITE, "basic": _BASIC, "premium": _PREMIUM}

# Which tiers each worker kind polls, with the default poll weight of each (basic favoured, lite never starved).
WORKER_TIERS: Final[dict[WorkerKind, tuple[Tier, ...]]] = {"cpu": ("basic", "lite"), "gpu": ("premium",)}
DEFAULT_POLL_WEIGHTS: Final[dict[Tier, int]] = {"basic": 3, "lite": 1, "premium": 1}


def is_tier(value: object) -> bool:
    return value in TIERS


def allows(tier: Tier, job_type: str) -> bool:
    return job_type in ALLOWED_JOB_TYPES[tier]
