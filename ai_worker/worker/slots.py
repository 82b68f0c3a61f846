"""Job slots: one supervised, long-lived job process per slot.

Processes are started with `spawn` (safe with the worker's threads, and nothing of the parent's state leaks in)
and serve jobs one at a time, so models loaded by a handler stay warm for the next job. The supervisor enforces
the limits the worker promises: a job past its time limit or over its memory limit (RSS of the job process and
its children) is killed with SIGKILL, with the processes it started, and its process replaced; a process that dies
is replaced. A killed or crashed job is reported as a transient failure, so its message is retried; the worker
itself never waits on a job longer than its time limit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Final

import psutil

from ai_worker import errors
from ai_worker.config import Settings
from ai_worker.errors import ErrorInfo
from ai_worker.worker.child import READY, JobReport, JobTask, SinkFactory, main

log = logging.getLogger(__name__)

SPAWN: Final = multiprocessing.get_context("spawn")
KILL_JOIN_S: Final = 5.0  # SIGKILL cannot be ignored; this only bounds reaping
STOP_JOIN_S: Final = 3.0  # an idle process exits at once when asked
MEMORY_CHECK_S: Final = 0.25  # RSS sampling period: a runaway allocation is caught within this
# How often the job process's children are listed anew (psutil reads every process's /proc stat file to find
# them, costly on a busy host); the RSS of those found is still read every MEMORY_CHECK_S.
CHILDREN_SCAN_S: Final = 1.0
RESPAWN_MIN_INTERVAL_S: Final = 1.0  # a process that dies at start-up is not restarted in a tight loop


@dataclass(frozen=True)
class Running:
    keys: tuple[str, ...]  # the receipt handles of the messages being worked on (several for a batch)
    started: float  # monotonic
    limit_s: float
    memory_bytes: int  # resident memory the job process (and its children) may use


class Slot:
    """One job process and the job it is running, if any."""

    def __init__(self, index: int, settings: Settings, kind: str, sink_factory: SinkFactory) -> None:
        self.index = index
        self._args = (settings, kind, sink_factory)
        self.running: Running | None = None
        self.ready = False  # set when the process reports its imports are done
        self.spawned_at = 0.0
        self._ps: psutil.Process | None = None  # the job process, for memory checks
        self._children: list[psutil.Process] = []
        self._children_at = float("-inf")
        self.process, self.conn = self._spawn()

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent_end, child_end = SPAWN.Pipe()
        process = SPAWN.Process(
            target=main, args=(child_end, *self._args), name=f"ai-worker-slot-{self.index}", daemon=True
        )
        process.start()
        child_end.close()
        self.ready = False
        self.spawned_at = time.monotonic()
        self._ps, self._children, self._children_at = None, [], float("-inf")
        return process, parent_end

    def assign(self, keys: Sequence[str], task: JobTask | list[JobTask], limit_s: float, memory_bytes: int) -> None:
        """Hand the process one task, or a batch (a list, answered by a list of reports in the same order), with
        the time and memory it may use."""
        self.conn.send(task)
        self.running = Running(tuple(keys), time.monotonic(), limit_s, memory_bytes)

    def rss_bytes(self) -> int:
        """Resident memory of the job process and everything it started (0 once it is gone). Its children are
        listed at most every CHILDREN_SCAN_S; a child started since is counted from the next listing on."""
        try:
            if self._ps is None or self._ps.pid != self.process.pid:
                self._ps = psutil.Process(self.process.pid)
            proc = self._ps
            now = time.monotonic()
            if now - self._children_at >= CHILDREN_SCAN_S:
                self._children, self._children_at = proc.children(recursive=True), now
            total = int(proc.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0
        for child in self._children:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # ended since it was listed
                total += int(child.memory_info().rss)
        return total

    def replace(self) -> None:
        """Kill the process (whatever it is doing) and start a fresh one."""
        self.kill()
        self.process, self.conn = self._spawn()

    def kill(self) -> None:
        """SIGKILL the job process and everything it started: a job's ffmpeg must not outlive it, holding memory."""
        self.running = None
        if self.process.is_alive():
            descendants = self._descendants()  # listed first: once the process is gone they belong to init
            self.process.kill()
            for child in descendants:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    child.kill()
        self.process.join(KILL_JOIN_S)
        self.conn.close()

    def _descendants(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.process.pid).children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    def stop(self) -> None:
        """Ask an idle process to exit; kill it if it does not."""
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(None)
        self.process.join(STOP_JOIN_S)
        self.kill()


@dataclass(frozen=True)
class Finished:
    """A job that left its slot: with the child's report, or with the error of the supervisor that ended it."""

    key: str
    report: JobReport


class SlotPool:
    """The worker's slots and the supervision of their limits."""

    def __init__(self, count: int, settings: Settings, kind: str, sink_factory: SinkFactory) -> None:
        self.slots = [Slot(i, settings, kind, sink_factory) for i in range(count)]
        self._memory_checked = 0.0

    def idle(self) -> list[Slot]:
        """Slots whose process is up and waiting for a job."""
        return [s for s in self.slots if s.ready and s.running is None and s.process.is_alive()]

    def busy(self) -> list[Slot]:
        return [s for s in self.slots if s.running is not None]

    def collect(self, timeout: float, wake: Sequence[int] = ()) -> list[Finished]:
        """Reports of jobs that ended within `timeout` (returning early when a `wake` file descriptor is readable); a
        process that died mid-job is reported as crashed. Processes that finished starting are marked ready."""
        watched = {s.conn: s for s in self.slots if (s.running is not None or not s.ready) and not s.conn.closed}
        finished: list[Finished] = []
        for conn in wait([*watched, *wake], timeout):
            slot = watched.get(conn)  # type: ignore[call-overload]
            if slot is None:
                continue  # a wake-up: the caller looks at its own source
            try:
                report = slot.conn.recv()
            except (EOFError, OSError):
                code = slot.process.exitcode
                if slot.running is None:
                    slot.conn.close()  # died while starting: `enforce_limits` restarts it, rate-limited
                    continue
                keys = slot.running.keys
                slot.replace()
                crashed = _killed(errors.JOB_CRASHED, f"the job process died (exit code {code})")
                finished += [Finished(key, crashed) for key in keys]
                continue
            if report == READY:
                slot.ready = True
            elif slot.running is not None:
                reports = report if isinstance(report, list) else [report]
                finished += [Finished(key, r) for key, r in zip(slot.running.keys, reports, strict=True)]
                slot.running = None
        return finished

    def enforce_limits(self) -> list[Finished]:
        """Kill and replace jobs over their time or memory limit, and restart processes that died idle."""
        now = time.monotonic()
        check_memory = now - self._memory_checked >= MEMORY_CHECK_S
        if check_memory:
            self._memory_checked = now
        ended: list[Finished] = []
        for slot in self.slots:
            running = slot.running
            if running is None:
                if not slot.process.is_alive() and now - slot.spawned_at >= RESPAWN_MIN_INTERVAL_S:
                    log.error(
                        "job process %d exited (code %s) while idle; restarting", slot.index, slot.process.exitcode
                    )
                    slot.replace()
                continue
            if now - running.started > running.limit_s:
                report = _killed(errors.JOB_TIMEOUT, f"job exceeded its time limit of {running.limit_s:.0f}s")
            elif check_memory and (rss := slot.rss_bytes()) > running.memory_bytes:
                report = _killed(
                    errors.JOB_OUT_OF_MEMORY,
                    f"job used {rss // 2**20} MiB, over its limit of {running.memory_bytes // 2**20} MiB",
                )
            else:
                continue
            log.warning("slot %d: %s; killing its process", slot.index, report.error and report.error.message)
            slot.replace()
            ended += [Finished(key, report) for key in running.keys]
        return ended

    def kill_busy(self) -> list[str]:
        """Kill every running job (drain deadline); returns their keys. Processes are not restarted."""
        keys = [key for s in self.busy() if s.running is not None for key in s.running.keys]
        for slot in self.busy():
            slot.kill()
        return keys

    def kill_all(self) -> None:
        """Kill every job process at once (the worker cannot start after all)."""
        for slot in self.slots:
            slot.kill()

    def close(self) -> None:
        for slot in self.slots:
            if slot.conn.closed:
                continue
            slot.stop()


def _killed(code: str, message: str) -> JobReport:
    return JobReport("retry", error=ErrorInfo(code, message, retryable=True))
