"""The SQS backend of `ai_worker.broker.Broker`, over boto3 clients (`ai_worker.aws.make_clients`).

Deletes, visibility changes and notifications are sent in batches of up to 10 (the SQS batch limit). Long polls
go through their own client (`Clients.sqs_receive`) whose read timeout is sized to the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from ai_worker.aws import Clients
from ai_worker.broker import MAX_BATCH, BrokerError, Message

log = logging.getLogger(__name__)

SYSTEM_ATTRIBUTES: Final = ["ApproximateReceiveCount", "SentTimestamp"]
_ATTRIBUTE_VALUE_KEYS: Final = ("DataType", "StringValue", "BinaryValue")  # what SendMessage accepts back


class SqsBroker:
    """`Broker` over an SQS client; queue URLs are looked up once per name and cached."""

    max_batch = MAX_BATCH

    def __init__(self, sqs: Any, receive_sqs: Any = None) -> None:
        self.sqs = sqs
        self.receive_sqs = receive_sqs or sqs
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_clients(cls, clients: Clients) -> SqsBroker:
        return cls(clients.sqs, clients.sqs_receive)

    def check(self, queues: Collection[str]) -> None:
        missing: list[str] = []
        for queue in queues:
            try:
                self.url(queue)
            except Exception as exc:
                missing.append(f"{queue} ({exc})")
        if missing:
            raise BrokerError(f"cannot use queue(s): {'; '.join(missing)}")

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
            for start in range(0, len(queue_items), MAX_BATCH):
                chunk = queue_items[start : start + MAX_BATCH]
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
