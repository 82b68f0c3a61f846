"""The broker interface: what the worker needs from a queue service, and nothing else.

Following dramatiq's separation, the engine only sees `Broker` and `Message`, and is handed a broker when it is
built: `ai_worker.broker.sqs.SqsBroker` is the production backend (SQS through boto3; moto's server and
LocalStack speak the same API), `ai_worker.broker.memory.MemoryBroker` an in-process one with SQS's semantics
for tests. Every operation SQS can batch is batched, so the engine hands over whole lists per loop turn.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

MAX_BATCH: Final = 10  # SQS's limit for ReceiveMessage and every *Batch call; brokers accept no more per call


class BrokerError(Exception):
    """The broker cannot serve a queue (missing, access denied); the message names it."""


@dataclass(frozen=True)
class Message:
    """One received message and what the worker needs to settle it."""

    queue: str  # queue name, as in settings.queue_names
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int  # ApproximateReceiveCount, 1 on first delivery
    sent_at: float  # epoch seconds the producer sent it
    received_at: float  # epoch seconds this worker received it
    attributes: Mapping[str, Any] = field(default_factory=dict)  # message attributes, kept for the DLQ


class Broker(Protocol):
    """Receive, settle and forward messages on named queues."""

    max_batch: int  # most messages per receive and per batched call

    def check(self, queues: Collection[str]) -> None:
        """Raise BrokerError naming the queues that cannot be used (looked up once; later calls reuse it)."""
        ...

    def receive(self, queue: str, *, max_messages: int, wait_time_s: int, visibility_s: int) -> list[Message]:
        """Up to `max_messages` messages, invisible to others for `visibility_s`; waits up to `wait_time_s`."""
        ...

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete the messages; return those the service refused (batched per queue)."""
        ...

    def change_visibility(self, changes: Sequence[tuple[Message, int]]) -> list[Message]:
        """Set each message's visibility timeout (seconds from now); return those refused (batched per queue)."""
        ...

    def send(self, queue: str, body: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Send one message, keeping its message attributes."""
        ...

    def send_many(self, queue: str, bodies: Sequence[str]) -> list[int]:
        """Send several small messages (batched); return the indices of those not sent (refused, or not tried
        because the service failed), never raising."""
        ...
