"""Provisioning: the tier queues with their DLQs and redrive policy, the results queue and the buckets.

Guarantees: `create_queues` is idempotent and convergent: each tier queue and its DLQ exist afterwards with the
attributes below, whether they were missing, already right, or made by hand with other values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from ai_worker.config import Settings
from ai_worker.tiers import TIERS, Tier

Client = Any  # boto3 clients are generated at run time and carry no static types

MAX_RECEIVE_COUNT = 5  # deliveries before SQS's redrive policy moves a message to the DLQ
# The queue's default lease, for consumers that do not ask for their own (this worker sets one on every receive
# and extends it): sized to the typical job of each tier, so a consumer that never extends (a console, an older
# platform worker) does not see a running job delivered twice, yet a crashed one is retried within minutes.
VISIBILITY_BY_TIER: dict[Tier, int] = {"lite": 60, "basic": 180, "premium": 600}
RESULTS_VISIBILITY_S = 30  # SQS's default; the results queue is consumed by the platform, not by this worker
RETENTION_S: Final = 14 * 24 * 3600  # SQS maximum: a backlog survives a two-week outage


class AdminError(Exception):
    """A command-line request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class QueueSpec:
    """One job queue (serving one tier, or all of them on a shared queue) and its DLQ."""

    name: str
    dlq_name: str
    tiers: tuple[Tier, ...]

    @property
    def visibility_timeout_s(self) -> int:
        return max(VISIBILITY_BY_TIER[t] for t in self.tiers)


def queue_specs(settings: Settings, tier: str | None = None) -> list[QueueSpec]:
    """The distinct job queues of the layout (one per tier, or one shared), optionally those serving `tier`."""
    if tier is not None and tier not in TIERS:
        raise AdminError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
    by_name: dict[str, list[Tier]] = {}
    for t in TIERS:
        by_name.setdefault(settings.queue_names[t], []).append(t)
    return [
        QueueSpec(name=name, dlq_name=name + settings.dlq_suffix, tiers=tuple(tiers))
        for name, tiers in by_name.items()
        if tier is None or tier in tiers
    ]


def create_queues(sqs: Client, settings: Settings) -> list[dict[str, Any]]:
    """Create or converge every job queue with its DLQ, and the results queue; return one row per queue."""
    rows: list[dict[str, Any]] = []
    for spec in queue_specs(settings):
        url = ensure_queue(
            sqs,
            spec.name,
            dlq_name=spec.dlq_name,
            visibility_timeout_s=spec.visibility_timeout_s,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        rows.append({"queue": spec.name, "tiers": list(spec.tiers), "dlq": spec.dlq_name, "url": url})
    if settings.results_queue:
        url = ensure_queue(sqs, settings.results_queue, dlq_name=None, visibility_timeout_s=RESULTS_VISIBILITY_S)
        rows.append({"queue": settings.results_queue, "tiers": [], "dlq": None, "url": url})
    return rows


def create_buckets(s3: Client, settings: Settings) -> list[str]:
    """Create the results bucket (and a separate input bucket, if configured) when missing; for local setups."""
    names = sorted({settings.results_bucket, settings.inputs.bucket or settings.results_bucket})
    region = s3.meta.region_name
    for name in names:
        try:
            s3.head_bucket(Bucket=name)
        except s3.exceptions.ClientError:
            # us-east-1 is the one region that refuses an explicit LocationConstraint.
            location = {} if region in (None, "us-east-1") else {"LocationConstraint": region}
            s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
    return names


def ensure_queue(
    sqs: Any,
    name: str,
    *,
    dlq_name: str | None,
    visibility_timeout_s: int,
    max_receive_count: int = 5,
    retention_s: int = RETENTION_S,
) -> str:
    """Create (or bring into line) a queue and its DLQ with a redrive policy; idempotent. Returns the queue URL."""
    attributes = {"VisibilityTimeout": str(visibility_timeout_s), "MessageRetentionPeriod": str(retention_s)}
    if dlq_name:
        dlq_url = _create_or_update(sqs, dlq_name, {"MessageRetentionPeriod": str(retention_s)})
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    return _create_or_update(sqs, name, attributes)


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        # CreateQueue refuses differing attributes on an existing queue; converge them instead.
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url
