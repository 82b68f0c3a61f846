"""A circuit breaker for a paid API, shared by every job process of one worker through a small state file.

Why a file: a worker runs several job processes (and replaces them when they die); they share the task's
filesystem but no memory. A local JSON file guarded by `flock` costs microseconds per job, needs no network and
no credentials, and a freshly deployed task (say, with fixed credentials) starts closed. Each worker task learns of
an auth failure on its own, at the price of one failed call per task per opening.

Guarantees:
- `admit()` raises `TransientError("<name>_provider_unavailable", retry_after_s=...)` while the breaker is open,
  before the caller touches the API: a credentials or billing outage costs no paid calls and no retry storm.
- `trip(reason)` opens it for `open_s` seconds, for every job process using the same file, and returns the
  same retryable error for the job that hit the failure.
- When the open period ends, one caller is admitted as a probe; the others keep failing fast for `PROBE_WINDOW_S`
  while it runs. Its success (`record_success()`) closes the breaker; another auth failure re-opens it.
- Every transition is logged and counted as a CloudWatch embedded metric (`BreakerOpened`, `BreakerRejected`,
  `BreakerClosed`, dimensioned by `Provider`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ai_worker.errors import TransientError
from ai_worker.metrics import emf_document

log = logging.getLogger("ai_worker.jobs.breaker")

PROBE_WINDOW_S = 60.0  # other callers wait this long for the probe's verdict before one more is let through


@dataclass(frozen=True)
class Breaker:
    """The breaker of one provider (`name`: "ocr", "llm"), its state in `path`."""

    name: str
    path: str
    open_s: float
    metrics_namespace: str = "AiWorker"

    @property
    def unavailable_code(self) -> str:
        return f"{self.name}_provider_unavailable"

    def admit(self) -> None:
        """Return when the API may be called; raise a retryable error while the breaker is open."""
        now = time.time()
        with self._locked() as (state, write):
            if not state:
                return
            open_until = float(state.get("open_until", 0.0))
            if now >= open_until:
                # Open period over: this caller probes; hold the others off until it has an answer.
                write({**state, "state": "probing", "open_until": now + min(PROBE_WINDOW_S, self.open_s)})
                log.warning("%s breaker: probing the provider after %s", self.name, state.get("reason"))
                return
        self._metric("BreakerRejected")
        raise TransientError(
            self.unavailable_code,
            f"{self.name} provider disabled for {open_until - now:.0f} s more after: {state.get('reason')}",
            retry_after_s=open_until - now,
        )

    def trip(self, reason: str) -> TransientError:
        """Open the breaker for `open_s`; return the retryable error the failing job should raise."""
        now = time.time()
        with self._locked() as (_previous, write):
            write({"state": "open", "opened_at": now, "open_until": now + self.open_s, "reason": reason})
        log.error("%s breaker OPEN for %.0f s: %s", self.name, self.open_s, reason)
        self._metric("BreakerOpened")
        message = f"{self.name} provider disabled for {self.open_s:.0f} s after: {reason}"
        return TransientError(self.unavailable_code, message, retry_after_s=self.open_s)

    def record_success(self) -> None:
        """The provider answered: close the breaker if it was probing or open."""
        with self._locked() as (state, write):
            if not state:
                return
            write({})
        log.warning("%s breaker CLOSED: the provider answered again", self.name)
        self._metric("BreakerClosed")

    def state(self) -> dict[str, Any]:
        """The current state ({} when closed), for logs and doctor-style reports."""
        with self._locked() as (state, _write):
            return state

    @contextmanager
    def _locked(self) -> Iterator[tuple[dict[str, Any], Any]]:
        """The parsed state under an exclusive lock, with a function that replaces it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 64 * 1024)
            try:
                state = json.loads(raw) if raw.strip() else {}
            except ValueError:
                state = {}  # a torn or foreign file must not wedge the breaker open or crash jobs

            def write(new: dict[str, Any]) -> None:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(new).encode())

            yield (state if isinstance(state, dict) else {}), write
        finally:
            os.close(fd)  # closing releases the flock

    def _metric(self, metric: str) -> None:
        doc = emf_document(self.metrics_namespace, {"Provider": self.name}, {metric: 1}, {})
        log.info("metrics %s %s", self.name, metric, extra={"emf": doc})
