"""CPU profile of the test suite: `pytest --cpu-profile=DIR` (any `-n`), then `python bench/suite_profile.py DIR`.

Each test process (the one process of a plain run, or each xdist worker) appends one JSON line per test phase
(setup, call, teardown) to `DIR/<worker>.jsonl`: the CPU seconds (user + system) the phase cost, counted as

- the process itself (`getrusage(RUSAGE_SELF)`): the test, and every thread a fixture started in it (the moto
  server's threads serve the requests of the test running at the time, so they are charged to it);
- its children that were reaped (`getrusage(RUSAGE_CHILDREN)`): job processes, CLI runs, subprocesses;
- its live descendants (psutil), with what they reaped themselves: a server a fixture started as a subprocess is
  charged as it works, test by test, not all at once to the test whose teardown stops it.

The deltas of their sum add up to the whole run's CPU (what the process spent before its first test, start-up and
collection, is a line of its own). A session- or module-scoped fixture is charged to the setup
of the first test that uses it, so a module's total (what the scheduler moves as one group) is the fair figure.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

try:  # psutil is a worker dependency; without it live descendants are counted only once reaped.
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]


def _live_descendants_cpu() -> float:
    if psutil is None:
        return 0.0
    total = 0.0
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            t = child.cpu_times()
        except psutil.Error:  # exited between the listing and the read: counted once reaped
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def cpu_now() -> float:
    """CPU seconds of this process, of its reaped children and of its live descendants, so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + _live_descendants_cpu()


class CpuProfile:
    """Writes one record per test phase; registered by tests/conftest.py when --cpu-profile is given."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self._out = (folder / f"{worker}.jsonl").open("a", encoding="utf-8")
        self._worker = worker
        self._last = cpu_now()
        self._started = False

    def _record(self, nodeid: str, phase: str, cpu: float, wall: float) -> None:
        line = {"worker": self._worker, "nodeid": nodeid, "phase": phase, "cpu": round(cpu, 4), "wall": round(wall, 4)}
        self._out.write(json.dumps(line) + "\n")
        self._out.flush()

    def _phase(self, item: pytest.Item, phase: str) -> Generator[None, Any, Any]:
        before = cpu_now()
        # CPU spent between two tests (xdist's own messages) goes to the phase that follows it; before the first
        # test (start-up, collection) it is the process's own line.
        between = before - self._last
        if not self._started:
            self._started = True
            self._record("<start-up and collection>", "setup", between, 0.0)
            between = 0.0
        wall = time.monotonic()
        result = yield
        self._last = cpu_now()
        self._record(item.nodeid, phase, self._last - before + between, time.monotonic() - wall)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "teardown"))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        end = cpu_now()
        # What ran after the last test (session fixtures' teardown) and the whole process's CPU, for the totals.
        self._record("<session end>", "teardown", end - self._last, 0.0)
        self._record("<process>", "total", end, 0.0)
        self._out.close()
