"""CloudWatch embedded-metric-format (EMF) records, written as JSON log lines.

CloudWatch Logs turns each such line into metrics without any API call from the worker (no extra latency, no
credentials for PutMetricData). One record per job outcome: a count for the outcome (JobsDone, JobsFailed,
JobsRetried, JobsDead, JobsReleased) plus RunTime and QueueWait in seconds, dimensioned by JobType and Tier.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

log = logging.getLogger(__name__)

OUTCOME_METRICS: Final[dict[str, str]] = {
    "done": "JobsDone",
    "failed": "JobsFailed",
    "retry": "JobsRetried",
    "dead": "JobsDead",
    "released": "JobsReleased",
}


def emf_document(
    namespace: str, dimensions: dict[str, str], counts: dict[str, float], seconds: dict[str, float]
) -> dict[str, Any]:
    """An EMF document: the `_aws` metadata block plus one top-level key per dimension and metric."""
    metrics = [{"Name": n, "Unit": "Count"} for n in counts] + [{"Name": n, "Unit": "Seconds"} for n in seconds]
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [list(dimensions)], "Metrics": metrics}],
        },
        **dimensions,
        **counts,
        **{n: round(v, 3) for n, v in seconds.items()},
    }


def record_outcome(
    namespace: str,
    outcome: str,
    *,
    job_type: str | None,
    tier: str | None,
    run_s: float | None = None,
    queued_s: float | None = None,
) -> None:
    """Log one EMF record for a job outcome (see `OUTCOME_METRICS`)."""
    seconds = {k: v for k, v in (("RunTime", run_s), ("QueueWait", queued_s)) if v is not None}
    doc = emf_document(
        namespace,
        {"JobType": job_type or "unknown", "Tier": tier or "unknown"},
        {OUTCOME_METRICS[outcome]: 1},
        seconds,
    )
    log.info("metrics %s", outcome, extra={"emf": doc})
