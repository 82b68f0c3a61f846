"""Tiers (lite/basic/premium: the queues a message arrives on) and worker kinds (cpu/gpu: which tiers a worker
polls). Which job types a tier may run is declared by each job type (`JobSpec.tiers`); `ai_worker.jobs` derives
the per-tier rules (`ALLOWED_JOB_TYPES`, `allows`) from those declarations.
"""

from __future__ import annotations

from typing import Final, Literal

Tier = Literal["lite", "basic", "premium"]
WorkerKind = Literal["cpu", "gpu"]

TIERS: Final[tuple[Tier, ...]] = ("lite", "basic", "premium")
WORKER_KINDS: Final[tuple[WorkerKind, ...]] = ("cpu", "gpu")

# Which tiers each worker kind polls, with the default poll weight of each (basic favoured, lite never starved).
WORKER_TIERS: Final[dict[WorkerKind, tuple[Tier, ...]]] = {"cpu": ("basic", "lite"), "gpu": ("premium",)}
DEFAULT_POLL_WEIGHTS: Final[dict[Tier, int]] = {"basic": 3, "lite": 1, "premium": 1}
