"""Prefetch: how many messages the worker may hold beyond its slots, sized from recent job times.

Receiving only for free slots costs one ReceiveMessage per job or two when jobs are short. Holding a few more
messages lets each receive take a full batch of ten, but a held message waits for a slot, and a long job type must
not sit behind nine others while another worker idles. So the buffer is sized from how long jobs have recently
kept a slot busy (an exponentially weighted average per job type, the slowest type seen in the last few minutes
deciding): a buffered message should wait at most `target_wait_s` (by default 2 s, and never more than a quarter
of the lease) before a slot takes it. Short jobs (tens of milliseconds) get the whole `max_extra`; a 30 s job type
gets none. Until a job type has been timed, nothing is prefetched. Buffered messages are leased and renewed like
running ones and are released at once on drain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

EWMA_WEIGHT: Final = 0.2  # the newest time's share of the average
MEMORY_S: Final = 300.0  # a job type not seen for this long no longer shrinks the buffer
TARGET_WAIT_S: Final = 2.0


class Prefetch:
    def __init__(
        self,
        slots: int,
        max_extra: int,
        visibility_s: float,
        target_wait_s: float = TARGET_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self.max_extra = max_extra
        self.target_wait_s = min(target_wait_s, visibility_s / 4)
        self._clock = clock
        self._times: dict[str, tuple[float, float]] = {}  # job type -> (average busy seconds, last seen)

    def record(self, job_type: str, busy_s: float) -> None:
        """A job of `job_type` kept a slot busy for `busy_s` (dispatch to report)."""
        previous = self._times.get(job_type)
        average = busy_s if previous is None else (1 - EWMA_WEIGHT) * previous[0] + EWMA_WEIGHT * busy_s
        self._times[job_type] = (average, self._clock())

    def slowest_s(self) -> float | None:
        now = self._clock()
        recent = [avg for avg, seen in self._times.values() if now - seen <= MEMORY_S]
        return max(recent) if recent else None

    def extra(self) -> int:
        """Messages to hold beyond the slots now."""
        slowest = self.slowest_s()
        if slowest is None or self.max_extra <= 0:
            return 0
        # A message behind `extra` others waits about extra * slowest / slots.
        fits = int(self.target_wait_s * self.slots / max(slowest, 1e-3))
        return max(0, min(self.max_extra, fits))
