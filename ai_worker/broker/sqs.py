"""The SQS backend of `ai_worker.broker.Broker`, on boto3.

AWS settings come only from the SDK's own chain (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL[_SQS|_S3]`), and
AWS calls are retried by botocore's `standard` retry mode (or whatever `AWS_RETRY_MODE` says), never by loops of
our own. Deletes, visibility changes and notifications are sent in batches of up to 10 (the SQS batch limit).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config

from ai_worker.broker import Message
from ai_worker.config import Settings

log = logging.getLogger("ai_worker.broker.sqs")

MAX_BATCH: Final = 10  # SQS ReceiveMessage / *Batch limit
# Every call is bounded by what it waits for, so a connection that stops answering without being closed (a
# silent drop) costs seconds, not botocore's 60 s default. SQS answers a plain call in milliseconds; a long poll
# answers within its wait time; S3 reads of inputs stream, and the read timeout bounds each socket read.
CONNECT_TIMEOUT_S: Final = 3
SQS_READ_TIMEOUT_S: Final = 5
S3_READ_TIMEOUT_S: Final = 15
RECEIVE_MARGIN_S: Final = 5  # a long poll's read timeout is its wait time plus this
RETENTION_S: Final = 14 * 24 * 3600  # SQS maximum: a backlog survives a two-week outage
SYSTEM_ATTRIBUTES: Final = ["ApproximateReceiveCount", "SentTimestamp"]
_ATTRIBUTE_VALUE_KEYS: Final = ("DataType", "StringValue", "BinaryValue")  # what SendMessage accepts back


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the worker uses; thread-safe, shared by the loop and the poller.

    `sqs_receive` serves long polls only: its read timeout is the poll's wait plus a margin and botocore does
    not retry it (the poller does, logging each failure), so a stalled poll is noticed within one read timeout."""

    sqs: Any
    s3: Any
    sqs_receive: Any = None


def client_config(read_timeout_s: float = SQS_READ_TIMEOUT_S, attempts: int | None = None) -> Config:
    """Bounded timeouts; botocore's standard retries unless AWS_RETRY_MODE chooses otherwise."""
    retries: Any = None if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
    if attempts is not None:
        retries = {**(retries or {}), "total_max_attempts": attempts}
    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=read_timeout_s, retries=retries)


def receive_timeout_s(wait_time_s: int) -> float:
    """The read timeout of a long poll of `wait_time_s`: past it, the connection is taken as dead."""
    return wait_time_s + RECEIVE_MARGIN_S


def make_clients(
    settings: Settings, session: boto3.session.Session | None = None, endpoint_url: str | None = None
) -> Clients:
    """SQS and S3 clients from the SDK chain. Pass a `session` to hook botocore events (e.g. to count calls);
    `endpoint_url` overrides the SQS endpoint (tests route it through a fault-injecting proxy)."""
    session = session or boto3.session.Session()
    sqs_kw: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return Clients(
        sqs=session.client("sqs", config=client_config(), **sqs_kw),
        s3=session.client("s3", config=client_config(S3_READ_TIMEOUT_S)),
        sqs_receive=session.client(
            "sqs", config=client_config(receive_timeout_s(settings.wait_time_s), attempts=1), **sqs_kw
        ),
    )


def _chunks(items: Sequence[Any], size: int = MAX_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqsBroker:
    """`Broker` over an SQS client; queue URLs are looked up once per name and cached."""

    def __init__(self, sqs: Any, receive_sqs: Any = None) -> None:
        self.sqs = sqs
        self.receive_sqs = receive_sqs or sqs
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def url(self, queue: str) -> str:
        with self._lock:
            if queue not in self._urls:
                self._urls[queue] = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            return self._urls[queue]

    def receive(self, queue: str, *, max_messages: int, wait_time_s: int, visibility_s: int) -> list[Message]:
        response = self.receive_sqs.receive_message(
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=max(1, min(MAX_BATCH, max_messages)),
            WaitTimeSeconds=wait_time_s,
            VisibilityTimeout=visibility_s,
            MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
            MessageAttributeNames=["All"],
        )
        now = time.time()
        return [
            Message(
                queue=queue,
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw["Body"],
                receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                sent_at=int(raw.get("Attributes", {}).get("SentTimestamp", now * 1000)) / 1000,
                received_at=now,
                attributes=raw.get("MessageAttributes", {}),
            )
            for raw in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        return self._batched("delete_message_batch", [(m, {}) for m in messages])

    def change_visibility(self, changes: Sequence[tuple[Message, int]]) -> list[Message]:
        return self._batched("change_message_visibility_batch", [(m, {"VisibilityTimeout": s}) for m, s in changes])

    def _batched(self, operation: str, items: Sequence[tuple[Message, dict[str, Any]]]) -> list[Message]:
        by_queue: dict[str, list[tuple[Message, dict[str, Any]]]] = defaultdict(list)
        for message, extra in items:
            by_queue[message.queue].append((message, extra))
        refused: list[Message] = []
        for queue, queue_items in by_queue.items():
            for chunk in _chunks(queue_items):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, **extra} for i, (m, extra) in enumerate(chunk)
                ]
                response = getattr(self.sqs, operation)(QueueUrl=self.url(queue), Entries=entries)
                for failure in response.get("Failed", []):
                    message = chunk[int(failure["Id"])][0]
                    log.warning(
                        "%s refused for message %s on %s: %s %s",
                        operation,
                        message.message_id,
                        queue,
                        failure.get("Code"),
                        failure.get("Message"),
                    )
                    refused.append(message)
        return refused

    def send(self, queue: str, body: str, attributes: Mapping[str, Any] | None = None) -> None:
        clean = {
            name: {k: v for k, v in value.items() if k in _ATTRIBUTE_VALUE_KEYS}
            for name, value in (attributes or {}).items()
        }
        self.sqs.send_message(
            QueueUrl=self.url(queue), MessageBody=body, **({"MessageAttributes": clean} if clean else {})
        )

    def send_many(self, queue: str, bodies: Sequence[str]) -> list[int]:
        refused: list[int] = []
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.url(queue), Entries=entries)
            except Exception as exc:
                log.error("send to %s failed: %s", queue, exc)
                refused.extend(range(start, len(bodies)))
                return refused
            for failure in response.get("Failed", []):
                log.error("send to %s refused: %s %s", queue, failure.get("Code"), failure.get("Message"))
                refused.append(start + int(failure["Id"]))
        return refused


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
