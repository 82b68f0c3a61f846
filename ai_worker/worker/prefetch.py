"""Prefetch: how many messages the worker may hold beyond its slots, sized from recent job times.

Receiving only for free slots costs one ReceiveMessage per job or two when jobs are short. Holding a few more
messages lets each receive take a full batch of ten, but a held message waits for a slot, and a long job type must
not sit behind nine others while another worker idles. So the buffer is sized from how long jobs have recently
kept a slot busy (an exponentially weighted average per job type, the slowest type seen in the last few minutes
deciding): a buffered message should wait at most `target_wait_s` (by default 2 s, and never more than a quarter
of the lease) before a slot takes it. Short jobs (tens of milliseconds) get the whole `max_extra`; a 30 s job type
gets none. Until a job type has been timed, nothing is prefetched. Buffered messages are leased and renewed like
running ones and are released at once on drain.

A batchable job type (`JobSpec(batch=N)`) needs more: the engine forms its batches from the messages it holds, so
to hand every slot a full batch while the next one waits, the worker must hold `(slots + 1) * N` of them. While
such a type was seen recently, the limit is raised to that (`max_extra` stays the limit for everything else); the
wait bound above still applies, so a batch is held only while its jobs are short.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.slots = slots
        self.max_extra = max_extra
        self.batch_sizes = {t: n for t, n in (batch_sizes or {}).items() if n > 1}
        self.target_wait_s = min(target_wait_s, visibility_s / 4)
        self._clock = clock
        self._times: dict[str, tuple[float, float]] = {}  # job type -> (average busy seconds, last seen)

    def record(self, job_type: str, busy_s: float) -> None:
        """A job of `job_type` kept a slot busy for `busy_s` (dispatch to report)."""
        previous = self._times.get(job_type)
        average = busy_s if previous is None else (1 - EWMA_WEIGHT) * previous[0] + EWMA_WEIGHT * busy_s
        self._times[job_type] = (average, self._clock())

    def _recent(self) -> dict[str, float]:
        now = self._clock()
        return {t: avg for t, (avg, seen) in self._times.items() if now - seen <= MEMORY_S}

    def _limit(self, recent: Mapping[str, float]) -> int:
        """The most messages held beyond the slots: `max_extra`, or what keeps full batches coming for a batchable
        job type seen recently (one batch per slot running and one waiting)."""
        batches = [(self.slots + 1) * n - self.slots for t, n in self.batch_sizes.items() if t in recent]
        return max([self.max_extra, *batches])

    def extra(self) -> int:
        """Messages to hold beyond the slots now."""
        recent = self._recent()
        if not recent or self.max_extra <= 0:
            return 0
        # A message behind `extra` others waits about extra * slowest / slots (for batched jobs, the slowest is
        # the time per job in a batch, so the same holds).
        fits = int(self.target_wait_s * self.slots / max(max(recent.values()), 1e-3))
        return max(0, min(self._limit(recent), fits))
