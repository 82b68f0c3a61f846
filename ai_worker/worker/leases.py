"""Leases on received messages, and the retry backoff that is also expressed as a visibility timeout.

A message stays invisible to other consumers while the worker holds it: the lease (`visibility_timeout_s`) is
renewed, in batches, once half of it has passed, so a job longer than the queue's visibility timeout is never
handed to a second worker. SQS refuses visibility reaching past 12 h from the receive, so renewals are capped
there (a job's time limit is far below it). A retry is "leave it invisible for the backoff", never a re-send:
the receive count keeps growing and SQS's redrive policy moves the message to the DLQ after maxReceiveCount.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ai_worker.broker import Message

MAX_VISIBILITY_S: Final = 43_200  # SQS: visibility may not extend past 12 h from the receive
CAP_MARGIN_S: Final = 30  # stay clear of the 12 h cap: clocks and request latency
RETRY_JITTER: Final = 0.25  # a retry waits 75-100 % of its backoff: spreads a burst, keeps each step longer


def visibility_left(message: Message, now: float) -> int:
    """The most visibility SQS will still accept for this receive of the message."""
    return max(0, int(MAX_VISIBILITY_S - CAP_MARGIN_S - (now - message.received_at)))


def retry_delay(
    receive_count: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: Callable[[], float] = random.random,
) -> int:
    """Seconds to keep a failed message invisible: exponential in the receive count, jittered, capped; a
    downstream's Retry-After hint is honoured when it asks for longer."""
    delay: float = min(max_s, base_s * 2.0 ** max(0, receive_count - 1)) * (1 - RETRY_JITTER * rng())
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return min(MAX_VISIBILITY_S, math.ceil(delay))


@dataclass
class Lease:
    message: Message
    expires_at: float  # epoch seconds at which the message becomes visible again


class Leases:
    """The leases the worker holds, keyed by receipt handle."""

    def __init__(self, visibility_s: int, clock: Callable[[], float] = time.time) -> None:
        self.visibility_s = visibility_s
        self._clock = clock
        self._leases: dict[str, Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, receipt_handle: object) -> bool:
        return receipt_handle in self._leases

    def messages(self) -> list[Message]:
        """Every message still held (received, not yet settled)."""
        return [lease.message for lease in self._leases.values()]

    def add(self, message: Message) -> None:
        # The receive itself asked for `visibility_s`, counted from the receive.
        self._leases[message.receipt_handle] = Lease(message, message.received_at + self.visibility_s)

    def drop(self, message: Message) -> None:
        self._leases.pop(message.receipt_handle, None)

    def due(self) -> list[tuple[Message, int]]:
        """Renewals to send now: leases past half their life, each extended by `visibility_s` (capped)."""
        now = self._clock()
        renewals: list[tuple[Message, int]] = []
        for lease in self._leases.values():
            if lease.expires_at - now > self.visibility_s / 2:
                continue
            extension = min(self.visibility_s, visibility_left(lease.message, now))
            if extension <= lease.expires_at - now:
                continue  # at the 12 h cap: nothing more SQS would accept
            lease.expires_at = now + extension
            renewals.append((lease.message, extension))
        return renewals
