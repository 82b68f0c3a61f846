"""Weighted polling: the schedule's shares and receiving only for free slots (fairness end to end, and the shared
queue layout: test_engine_memory.py)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from ai_worker.worker.engine import queue_weights
from ai_worker.worker.polling import Capacity, WeightedSchedule

from .harness import make_settings


def test_schedule_gives_each_queue_its_weight_in_every_cycle() -> None:
    schedule = WeightedSchedule({"basic": 3, "lite": 1})
    picks = [schedule.next() for _ in range(400)]
    assert Counter(picks) == {"basic": 300, "lite": 100}
    for start in range(0, 400, 4):  # smooth: lite once in every window of four
        assert picks[start : start + 4].count("lite") == 1


def test_schedule_skips_empty_queues_and_long_polls_in_rotation() -> None:
    schedule = WeightedSchedule({"basic": 3, "lite": 1})
    assert {schedule.next(skip={"basic"}) for _ in range(5)} == {"lite"}
    assert schedule.next(skip={"basic", "lite"}) in {"basic", "lite"}  # all skipped: still answers
    rotation = [schedule.least_recent() for _ in range(4)]
    assert rotation[0] != rotation[1] and rotation[:2] == rotation[2:]


def test_queue_weights_follow_settings_and_shared_layout(tmp_path: Path) -> None:
    settings = make_settings("w", tmp_path, poll_weights={"basic": 5, "lite": 2, "premium": 1})
    assert queue_weights(settings, "cpu") == {"w-basic": 5, "w-lite": 2}
    assert queue_weights(settings, "gpu") == {"w-premium": 1}
    shared = make_settings("w", tmp_path, queue_names={"basic": "one", "lite": "one", "premium": "one"})
    assert queue_weights(shared, "cpu") == {"one": 3}


def test_capacity_never_reserves_more_than_free() -> None:
    capacity = Capacity(3)
    assert capacity.reserve(10, timeout=0) == 3
    assert capacity.reserve(10, timeout=0.05) == 0
    threading.Timer(0.1, capacity.release, args=(2,)).start()
    assert capacity.reserve(10, timeout=2) == 2
