"""The result document (docs/design.md, "Result documents"), its key, and the notice that points at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ai_worker import __version__
from ai_worker.config import Settings
from ai_worker.envelope import Envelope

Status = Literal["done", "failed"]


def result_key(settings: Settings, tenant: str, job_id: str) -> str:
    """The object key of a job's result document."""
    return f"{settings.results_prefix}{tenant}/{job_id}.json"


def build_document(
    env: Envelope,
    *,
    status: Status,
    kind: str,
    settings: Settings,
    attempts: int,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    queued_s: float | None = None,
    run_s: float | None = None,
) -> dict[str, Any]:
    """The result document of docs/design.md (`result` when done, `error` {code, message, retryable} when failed)."""
    doc: dict[str, Any] = {
        "job_id": env.job_id,
        "job_type": env.job_type,
        "tier": env.tier,
        "tenant_id": env.tenant,
        "status": status,
    }
    if status == "done":
        doc["result"] = result if result is not None else {}
    else:
        doc["error"] = error
    doc["worker"] = {"version": __version__, "image": settings.image, "device": kind}
    doc["timings"] = {
        "queued_s": None if queued_s is None else round(queued_s, 3),
        "run_s": None if run_s is None else round(run_s, 3),
    }
    doc["attempts"] = attempts
    return doc


def notice(env: Envelope, ref: ResultRef) -> dict[str, Any]:
    """The small message sent on the results queue: enough to route it, and where to read the document.

    Notices are at-least-once (a crash or a failed send re-sends them on the message's redelivery); `notice_id`
    is the same on every re-send for a job, so consumers deduplicate on it (or on `key`)."""
    return {
        "notice_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{ref.bucket}/{ref.key}")),
        "job_id": env.job_id,
        "job_type": env.job_type,
        "tenant_id": env.tenant,
        "status": ref.status,
        "bucket": ref.bucket,
        "key": ref.key,
        "s3_uri": f"s3://{ref.bucket}/{ref.key}",
    }


@dataclass(frozen=True)
class ResultRef:
    bucket: str
    key: str
    created: bool  # False: a result was already there (another delivery of the same job wrote it first)
    status: str | None = None  # the stored document's status ("done" / "failed"); None when unreadable
