"""Queue administration and job submission, against AWS or any SQS/S3-compatible endpoint (the local backend).

Guarantees:
- `create_queues` is idempotent and convergent: each tier queue and its DLQ exist afterwards with the attributes
  below, whether they were missing, already right, or made by hand with other values.
- `redrive_dlq` never loses a message: a DLQ message is deleted only after the source queue accepted its copy
  (body and message attributes unchanged). A crash in between leaves a duplicate, which the worker's idempotency
  absorbs. It uses receive → send → delete rather than StartMessageMoveTask, so it works on moto and on AWS alike.
- `submit` refuses a job the contract refuses (tier not allowing the job type, tenant mismatch) before anything is
  uploaded or sent.

Clients are plain boto3 clients (`ai_worker.broker.sqs.make_clients`).
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ai_worker.broker import Message
from ai_worker.broker.sqs import MAX_BATCH, SqsBroker, ensure_queue
from ai_worker.config import Settings
from ai_worker.envelope import (
    Envelope,
    UnparseableMessage,
    loads_strict,
    valid_job_id,
    valid_tenant_id,
    validate_envelope,
)
from ai_worker.errors import PermanentError
from ai_worker.inputs import tenant_input_prefix
from ai_worker.results import read_result
from ai_worker.tiers import TIERS, Tier

Client = Any  # boto3 clients are generated at run time and carry no static types

MAX_RECEIVE_COUNT = 5  # deliveries before SQS's redrive policy moves a message to the DLQ
# The queue's default lease, for consumers that do not ask for their own (this worker sets one on every receive
# and extends it): sized to the typical job of each tier, so a consumer that never extends (a console, an older
# platform worker) does not see a running job delivered twice, yet a crashed one is retried within minutes.
VISIBILITY_BY_TIER: dict[Tier, int] = {"lite": 60, "basic": 180, "premium": 600}
RESULTS_VISIBILITY_S = 30  # SQS's default; the results queue is consumed by the platform, not by this worker
MAX_BODY_BYTES = 256 * 1024  # docs/design.md: bodies stay well under SQS's 1 MiB; inputs travel by reference
PEEK_HIDE_S = 30  # `dlq list` hides what it has read so one listing never shows a message twice
REDRIVE_HIDE_S = 60  # long enough to copy and delete one batch; an interrupted batch reappears in the DLQ
EMPTY_RECEIVE_WAIT_S = 1  # long poll (all SQS hosts) so an empty answer means the queue really is empty
PREVIEW_CHARS = 80  # of a DLQ body or id shown by `dlq list`
RESULT_POLL_S = 0.5  # one S3 GET per pending job per poll: cheap, and fast enough for an interactive wait


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


# --- DLQ -----------------------------------------------------------------------------------------------------


def describe_message(message: Message) -> dict[str, Any]:
    """The job identity when the body is an envelope; any other body (however deep, large or malformed: the DLQ
    holds exactly those) is shown as its size and a short preview, never raising."""
    try:
        data = loads_strict(message.body)
    except UnparseableMessage:
        data = None
    job: dict[str, Any] = {
        k: data[k][:PREVIEW_CHARS]
        for k in ("job_id", "job_type", "tier", "tenant_id")
        if isinstance(data, dict) and isinstance(data.get(k), str)
    }
    if not job:
        job = {"body_bytes": len(message.body.encode("utf-8", "replace")), "body_preview": message.body[:PREVIEW_CHARS]}
    return {
        "queue": message.queue,
        "message_id": message.message_id,
        "receive_count": message.receive_count,
        "sent_at": datetime.fromtimestamp(message.sent_at, UTC).isoformat(timespec="seconds"),
        **job,
    }


def dlq_depths(sqs: Client, settings: Settings, tier: str | None = None) -> dict[str, int]:
    """Approximate number of visible messages per DLQ."""
    broker = SqsBroker(sqs)
    return {
        spec.dlq_name: int(
            sqs.get_queue_attributes(
                QueueUrl=broker.url(spec.dlq_name), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for spec in queue_specs(settings, tier)
    }


def _receive(broker: SqsBroker, queue: str, count: int, hide_s: int) -> list[Message]:
    return broker.receive(queue, max_messages=count, wait_time_s=EMPTY_RECEIVE_WAIT_S, visibility_s=hide_s)


def list_dlq(sqs: Client, settings: Settings, tier: str | None = None, limit: int = 50) -> list[Message]:
    """Peek at up to `limit` messages per DLQ; each is made visible again right after."""
    broker = SqsBroker(sqs)
    found: list[Message] = []
    for spec in queue_specs(settings, tier):
        seen: list[Message] = []
        while len(seen) < limit:
            batch = _receive(broker, spec.dlq_name, limit - len(seen), PEEK_HIDE_S)
            if not batch:
                break
            seen.extend(batch)
        broker.change_visibility([(m, 0) for m in seen])
        found.extend(seen)
    return found


def redrive_dlq(
    sqs: Client, settings: Settings, tier: str | None = None, max_messages: int | None = None
) -> dict[str, int]:
    """Move messages from each DLQ back to its source queue; return how many moved per DLQ.

    Raises AdminError when a copy cannot be sent; that message and the rest of its batch stay in the DLQ.
    """
    broker = SqsBroker(sqs)
    moved: dict[str, int] = {}
    for spec in queue_specs(settings, tier):
        moved[spec.dlq_name] = 0
        while max_messages is None or moved[spec.dlq_name] < max_messages:
            want = MAX_BATCH if max_messages is None else max_messages - moved[spec.dlq_name]
            batch = _receive(broker, spec.dlq_name, want, REDRIVE_HIDE_S)
            if not batch:
                break
            copied: list[Message] = []
            try:
                for message in batch:
                    broker.send(spec.name, message.body, message.attributes)
                    copied.append(message)
            except ClientError as exc:
                raise AdminError(f"{spec.name} refused a message, left in {spec.dlq_name}: {exc}") from exc
            finally:
                # Only what the source queue accepted leaves the DLQ.
                broker.delete(copied)
                moved[spec.dlq_name] += len(copied)
    return moved


# --- submit --------------------------------------------------------------------------------------------------


def submit(
    sqs: Client,
    s3: Client,
    settings: Settings,
    *,
    job_type: str,
    tier: str,
    payload: dict[str, Any],
    file: Path | None = None,
    tenant_id: str | None = None,
    job_id: str | None = None,
) -> Envelope:
    """Enqueue one job on the queue of its tier, uploading `file` first and passing it as `payload.s3_key`."""
    envelope = Envelope(
        job_id=job_id or uuid.uuid4().hex,
        job_type=job_type,
        tier=tier,
        payload=dict(payload),
        tenant_id=tenant_id,
        created_at=datetime.now(UTC).isoformat(),
    )
    if not valid_job_id(envelope.job_id) or not valid_tenant_id(envelope.tenant):
        raise AdminError(
            "job_id (1-128 of A-Z a-z 0-9 . _ : -) or tenant_id (1-64 of A-Z a-z 0-9 . _ -) breaks the id rules"
        )
    try:
        validate_envelope(envelope)
    except PermanentError as exc:
        raise AdminError(exc.message) from exc
    if file is not None:
        if not file.is_file():
            raise AdminError(f"{file} is not a file")
        key = f"{tenant_input_prefix(envelope.tenant)}{envelope.job_id}/{file.name}"
        s3.put_object(
            Bucket=settings.inputs.bucket or settings.results_bucket,
            Key=key,
            Body=file.read_bytes(),
            ContentType=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        )
        envelope.payload["s3_key"] = key
    body = envelope.to_message()
    if len(body.encode()) > MAX_BODY_BYTES:
        raise AdminError(f"message is {len(body.encode())} bytes (limit {MAX_BODY_BYTES}): pass large data as --file")
    SqsBroker(sqs).send(settings.queue_names[tier], body)
    return envelope


def wait_for_results(
    s3: Client,
    settings: Settings,
    jobs: list[Envelope],
    timeout_s: float,
    poll_s: float = RESULT_POLL_S,
    worth_waiting: Callable[[], bool] = lambda: True,
) -> dict[str, dict[str, Any] | None]:
    """The result document of each job by job_id (None when missing), polling until all exist, `timeout_s`
    passes, or `worth_waiting()` turns false (e.g. the workers that would write them have stopped)."""
    found: dict[str, dict[str, Any] | None] = dict.fromkeys((job.job_id for job in jobs), None)
    deadline = time.monotonic() + timeout_s
    while True:
        for job in jobs:
            if found[job.job_id] is None:
                found[job.job_id] = read_result(s3, settings, job.tenant, job.job_id)
        if all(found.values()) or time.monotonic() >= deadline or not worth_waiting():
            return found
        time.sleep(poll_s)
