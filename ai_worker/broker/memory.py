"""An in-process `Broker` with SQS's semantics, for tests and tools that need no network.

What it keeps of SQS (standard queues): a received message is invisible for the visibility timeout the receive
asked for, then visible again; each receive gets a new receipt handle and increments the receive count; a queue
with a redrive policy moves a message to its DLQ when a receive would exceed `max_receive_count`; at most 10
messages per receive and per batch; a receive waits up to its wait time for a message (long poll) and returns as
soon as one is visible. Deleting or changing the visibility of a message through a stale receipt handle (the
message was received again since) is refused, as SQS refuses it. Ordering is best-effort (oldest first).

Faults can be injected: `fail_sends` holds queue names whose sends fail (as a failing SendMessageBatch would).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ai_worker.broker import MAX_BATCH, BrokerError, Message


@dataclass
class _Stored:
    message_id: str
    body: str
    attributes: Mapping[str, Any]
    sent_at: float
    receive_count: int = 0
    visible_at: float = 0.0
    receipt_handle: str | None = None


@dataclass
class _Queue:
    name: str
    visibility_timeout_s: int
    dlq: str | None
    max_receive_count: int
    messages: dict[str, _Stored] = field(default_factory=dict)  # by message id, in send order


class MemoryBroker:
    """Queues in a dict, guarded by one lock; thread-safe (the poller and the loop share it)."""

    max_batch = MAX_BATCH

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self.fail_sends: set[str] = set()
        self.calls: dict[str, int] = {}  # operation -> count, like a botocore event hook would count
        self.receives: dict[str, int] = {}  # queue -> ReceiveMessage calls on it

    # --- provisioning and inspection (not part of `Broker`) -------------------------------------------

    def create_queue(
        self, name: str, *, visibility_timeout_s: int = 30, dlq: str | None = None, max_receive_count: int = 5
    ) -> None:
        with self._cond:
            if dlq is not None and dlq not in self._queues:
                self._queues[dlq] = _Queue(dlq, visibility_timeout_s, None, 0)
            self._queues.setdefault(name, _Queue(name, visibility_timeout_s, dlq, max_receive_count))

    def counts(self, queue: str) -> tuple[int, int]:
        """(visible, in flight), like ApproximateNumberOfMessages[NotVisible]."""
        with self._cond:
            now = self._clock()
            stored = self._queue(queue).messages.values()
            visible = sum(1 for m in stored if m.visible_at <= now)
            return visible, len(stored) - visible

    def bodies(self, queue: str) -> list[str]:
        """Every message body on a queue, visible or not, without receiving them."""
        with self._cond:
            return [m.body for m in self._queue(queue).messages.values()]

    def purge(self, queue: str) -> list[str]:
        """Remove and return every message body on a queue."""
        with self._cond:
            q = self._queue(queue)
            bodies = [m.body for m in q.messages.values()]
            q.messages.clear()
            return bodies

    # --- Broker ---------------------------------------------------------------------------------------

    def check(self, queues: Collection[str]) -> None:
        missing = [q for q in queues if q not in self._queues]
        if missing:
            raise BrokerError(f"cannot use queue(s): {', '.join(sorted(missing))} (no such queue)")

    def receive(self, queue: str, *, max_messages: int, wait_time_s: int, visibility_s: int) -> list[Message]:
        self._count("ReceiveMessage")
        with self._cond:
            self.receives[queue] = self.receives.get(queue, 0) + 1
        deadline = time.monotonic() + wait_time_s
        with self._cond:
            q = self._queue(queue)
            while True:
                got = self._take(q, max(1, min(self.max_batch, max_messages)), visibility_s)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                self._cond.wait(min(left, self._next_visible_in(q)))

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        self._count("DeleteMessageBatch", len(messages))
        with self._cond:
            refused = []
            for message in messages:
                q = self._queue(message.queue)
                stored = q.messages.get(message.message_id)
                if stored is None:
                    continue  # already gone: SQS answers a repeated delete with success
                if stored.receipt_handle != message.receipt_handle:
                    refused.append(message)
                    continue
                del q.messages[message.message_id]
            return refused

    def change_visibility(self, changes: Sequence[tuple[Message, int]]) -> list[Message]:
        self._count("ChangeMessageVisibilityBatch", len(changes))
        with self._cond:
            now = self._clock()
            refused = []
            for message, seconds in changes:
                stored = self._queue(message.queue).messages.get(message.message_id)
                if stored is None or stored.receipt_handle != message.receipt_handle or stored.visible_at <= now:
                    refused.append(message)  # gone, received again since, or its lease already ran out
                    continue
                stored.visible_at = now + seconds
            self._cond.notify_all()
            return refused

    def send(self, queue: str, body: str, attributes: Mapping[str, Any] | None = None) -> None:
        self._count("SendMessage")
        if queue in self.fail_sends:
            raise BrokerError(f"send to {queue} failed (injected)")
        with self._cond:
            self._put(self._queue(queue), body, dict(attributes or {}))

    def send_many(self, queue: str, bodies: Sequence[str]) -> list[int]:
        self._count("SendMessageBatch", len(bodies))
        if queue in self.fail_sends or queue not in self._queues:
            return list(range(len(bodies)))
        with self._cond:
            for body in bodies:
                self._put(self._queues[queue], body, {})
        return []

    # --- internals ------------------------------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise BrokerError(f"no such queue: {name}") from None

    def _put(self, q: _Queue, body: str, attributes: dict[str, Any]) -> None:
        message_id = f"m-{next(self._ids)}"
        q.messages[message_id] = _Stored(message_id, body, attributes, sent_at=self._clock())
        self._cond.notify_all()

    def _take(self, q: _Queue, most: int, visibility_s: int) -> list[Message]:
        now = self._clock()
        got: list[Message] = []
        for stored in list(q.messages.values()):
            if len(got) >= most:
                break
            if stored.visible_at > now:
                continue
            if q.dlq is not None and stored.receive_count >= q.max_receive_count:
                del q.messages[stored.message_id]  # the redrive policy: this receive would exceed the count
                self._queues[q.dlq].messages[stored.message_id] = _Stored(
                    stored.message_id, stored.body, stored.attributes, stored.sent_at
                )
                continue
            stored.receive_count += 1
            stored.visible_at = now + visibility_s
            stored.receipt_handle = f"{stored.message_id}#{stored.receive_count}"
            got.append(
                Message(
                    queue=q.name,
                    message_id=stored.message_id,
                    receipt_handle=stored.receipt_handle,
                    body=stored.body,
                    receive_count=stored.receive_count,
                    sent_at=stored.sent_at,
                    received_at=now,
                    attributes=stored.attributes,
                )
            )
        return got

    def _next_visible_in(self, q: _Queue) -> float:
        now = self._clock()
        waits = [m.visible_at - now for m in q.messages.values() if m.visible_at > now]
        return max(0.01, min(waits, default=1.0))

    def _count(self, operation: str, n: int = 1) -> None:
        if n:
            self.calls[operation] = self.calls.get(operation, 0) + 1
