"""Operator and producer tools, by concern: `provisioning` (queues, DLQs, buckets), `dlq` (list, redrive) and
`producer` (submit, wait for results). This module gathers them for the CLI."""

from __future__ import annotations

from ai_worker.dlq import describe_message, dlq_depths, list_dlq, redrive_dlq
from ai_worker.producer import submit, wait_for_results
from ai_worker.provisioning import (
    MAX_RECEIVE_COUNT,
    VISIBILITY_BY_TIER,
    AdminError,
    QueueSpec,
    create_buckets,
    create_queues,
    queue_specs,
)

__all__ = [
    "MAX_RECEIVE_COUNT",
    "VISIBILITY_BY_TIER",
    "AdminError",
    "QueueSpec",
    "create_buckets",
    "create_queues",
    "describe_message",
    "dlq_depths",
    "list_dlq",
    "queue_specs",
    "redrive_dlq",
    "submit",
    "wait_for_results",
]
