"""Receiving: which queue to poll next, and a poller thread that never takes more than the worker may hold.

Weights (basic:lite 3:1 by default) are applied with smooth weighted round-robin, so every queue gets its share
in every cycle: lite is never starved, basic is favoured. Queues that just came back empty are skipped (short
polls go to the others) until every queue has been seen empty; then the worker long-polls, rotating through the
queues so an idle queue waits at most one long poll. Each receive asks for at most the free places (slots, plus the
prefetch buffer of `prefetch.py` when jobs are short) and reserves them before the call, so the worker never holds
more than it may.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Collection, Mapping
from typing import Final

from ai_worker.broker import Broker, Message

log = logging.getLogger(__name__)

RESERVE_WAIT_S: Final = 0.5  # how long the poller waits for a free slot before re-checking for shutdown
ERROR_PAUSE_S: Final = 1.0  # after a failed receive, before the next one
STALL_MARGIN_S: Final = 5.0  # a long poll may take its wait time plus this before it counts as stalled


class WeightedSchedule:
    """Smooth weighted round-robin over queue names (nginx's algorithm): for 3:1 it yields b, b, l, b, ..."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        if not weights:
            raise ValueError("at least one queue is needed")
        self.weights = dict(weights)
        self._current = dict.fromkeys(self.weights, 0)
        self._last_polled = dict.fromkeys(self.weights, 0.0)

    def next(self, skip: Collection[str] = ()) -> str:
        candidates = [q for q in self.weights if q not in skip] or list(self.weights)
        total = sum(self.weights[q] for q in candidates)
        for q in candidates:
            self._current[q] += self.weights[q]
        chosen = max(candidates, key=lambda q: self._current[q])
        self._current[chosen] -= total
        return self._note(chosen)

    def least_recent(self) -> str:
        """The queue polled longest ago (for long polls while every queue is idle)."""
        return self._note(min(self.weights, key=lambda q: self._last_polled[q]))

    def _note(self, chosen: str) -> str:
        self._last_polled[chosen] = time.monotonic()
        return chosen


class Capacity:
    """How many messages the worker may hold (its slots, plus a prefetch buffer when jobs are short), shared by the
    poller (which reserves before receiving) and the loop (which frees one per settled message)."""

    def __init__(self, total: int) -> None:
        self.slots = total  # below this many held messages a slot may idle: take whatever is free at once
        self.total = total
        self.used = 0
        self._cond = threading.Condition()

    def reserve(self, most: int, timeout: float) -> int:
        """Reserve up to `most` free places, waiting up to `timeout`; 0 if none became free. Beyond the slots
        (prefetch) it waits until a whole batch fits, so receives stay full instead of taking one message each
        time one place frees up."""

        def ready() -> bool:
            if self.used >= self.total:
                return False
            return self.used < self.slots or self.total - self.used >= min(most, self.total - self.slots)

        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                return 0
            n = min(most, self.total - self.used)
            self.used += n
            return n

    def set_total(self, total: int) -> None:
        """Change how many messages may be held (slots plus prefetch); held ones are never taken back."""
        with self._cond:
            if total != self.total:
                self.total = total
                self._cond.notify_all()

    def release(self, n: int) -> None:
        if n <= 0:
            return
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class Inbox:
    """Batches handed from the poller to the loop, with a pipe the loop waits on together with its job
    processes, so a received message is dispatched at once rather than on the next tick."""

    def __init__(self) -> None:
        self._batches: queue.SimpleQueue[list[Message]] = queue.SimpleQueue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)

    def fileno(self) -> int:
        return self._read

    def put(self, batch: list[Message]) -> None:
        self._batches.put(batch)
        os.write(self._write, b"!")

    def take(self) -> list[Message]:
        """Everything received so far (empty when nothing is waiting)."""
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass  # the wake-up pipe is drained
        messages: list[Message] = []
        while not self._batches.empty():
            messages += self._batches.get_nowait()
        return messages

    def empty(self) -> bool:
        return self._batches.empty()

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Poller(threading.Thread):
    """Receives into `inbox` (lists of messages) until `stop_receiving` is set."""

    def __init__(
        self,
        broker: Broker,
        weights: Mapping[str, int],
        capacity: Capacity,
        inbox: Inbox,
        *,
        wait_time_s: int,
        visibility_s: int,
    ) -> None:
        super().__init__(name="ai-worker-poller", daemon=True)
        self.broker = broker
        self.schedule = WeightedSchedule(weights)
        self.capacity = capacity
        self.inbox = inbox
        self.wait_time_s = wait_time_s
        self.visibility_s = visibility_s
        self.stop_receiving = threading.Event()
        # Epoch seconds of the last time receiving was fine: a receive completed, or none was wanted (no free
        # slot). The health probe calls the poller stalled when this is older than `stall_after_s`.
        self.progress_at = time.time()
        self.failures = 0  # consecutive failed receives

    @property
    def stall_after_s(self) -> float:
        """A receive ends within its read timeout (wait + margin); allow one failed attempt and the pause."""
        return 2 * (self.wait_time_s + STALL_MARGIN_S) + ERROR_PAUSE_S

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds since receiving last made progress (0 while it is fine)."""
        return max(0.0, (time.time() if now is None else now) - self.progress_at)

    def run(self) -> None:
        queues = set(self.schedule.weights)
        empty: set[str] = set()
        while not self.stop_receiving.is_set():
            free = self.capacity.reserve(self.broker.max_batch, RESERVE_WAIT_S)
            if free == 0:
                self.progress_at = time.time()  # every slot is busy: nothing to receive, nothing stalled
                continue
            idle = empty >= queues
            name = self.schedule.least_recent() if idle and len(queues) > 1 else self.schedule.next(skip=empty)
            wait = self.wait_time_s if idle or len(queues) == 1 else 0
            try:
                messages = self.broker.receive(
                    name, max_messages=free, wait_time_s=wait, visibility_s=self.visibility_s
                )
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "receive from %s failed (%s: %s); no receive completed for %.0fs",
                    name,
                    type(exc).__name__,
                    exc,
                    self.stalled_for(),
                    extra={"queue": name, "failures": self.failures, "stalled_s": round(self.stalled_for(), 1)},
                )
                self.capacity.release(free)
                self.stop_receiving.wait(ERROR_PAUSE_S)
                continue
            if self.failures:
                log.info("receiving from %s again after %d failed receive(s)", name, self.failures)
                self.failures = 0
            self.progress_at = time.time()
            self.capacity.release(free - len(messages))
            if messages:
                empty.clear()  # new work may be arriving everywhere: give every queue its turn again
                self.inbox.put(messages)
            else:
                empty.add(name)
