"""DLQ tools: look at dead-lettered messages and move them back.

Guarantee: `redrive_dlq` never loses a message: a DLQ message is deleted only after the source queue accepted its
copy (body and message attributes unchanged). A crash in between leaves a duplicate, which the worker's
idempotency absorbs. It uses receive → send → delete rather than StartMessageMoveTask, so it works on moto and on
AWS alike. `describe_message` shows any body (however deep, large or malformed: the DLQ holds exactly those).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ai_worker.broker import MAX_BATCH, Message
from ai_worker.broker.sqs import SqsBroker
from ai_worker.config import Settings
from ai_worker.envelope import UnparseableMessage, loads_strict
from ai_worker.provisioning import AdminError, Client, queue_specs

PEEK_HIDE_S = 30  # `dlq list` hides what it has read so one listing never shows a message twice
REDRIVE_HIDE_S = 60  # long enough to copy and delete one batch; an interrupted batch reappears in the DLQ
EMPTY_RECEIVE_WAIT_S = 1  # long poll (all SQS hosts) so an empty answer means the queue really is empty
PREVIEW_CHARS = 80  # of a DLQ body or id shown by `dlq list`


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
    """Peek at up to `limit` messages per DLQ; each is made visible again right after.

    Each message is listed once, by message id: SQS may deliver a message twice (a standard queue's duplicate, or
    a peek slower than PEEK_HIDE_S), and a receive that brings nothing new ends that DLQ's listing.
    """
    broker = SqsBroker(sqs)
    found: list[Message] = []
    for spec in queue_specs(settings, tier):
        seen: dict[str, Message] = {}  # message id -> its latest delivery (only its receipt handle is current)
        while len(seen) < limit:
            batch = _receive(broker, spec.dlq_name, limit - len(seen), PEEK_HIDE_S)
            new = [m for m in batch if m.message_id not in seen]
            seen.update((m.message_id, m) for m in batch)
            if not new:
                break
        broker.change_visibility([(m, 0) for m in seen.values()])
        found.extend(seen.values())
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
