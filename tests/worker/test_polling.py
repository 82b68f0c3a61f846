"""Weighted polling: the schedule's shares, fairness end to end on moto, and receiving only for free slots."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

from ai_worker.tiers import TIERS
from ai_worker.worker.engine import queue_weights
from ai_worker.worker.polling import Capacity, WeightedSchedule

from .fake_handlers import runs
from .harness import connect, create_infra, make_settings, send_body, send_job, thread_worker, wait_for, wait_result


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


def test_basic_is_favoured_and_lite_is_not_starved(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=1)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "order")
    for _ in range(16):
        send_job(clients, settings, "basic", "omr_grading", do="echo", marker=marker)
    for _ in range(8):
        send_job(clients, settings, "lite", "ocr", do="echo", marker=marker)
    with thread_worker(settings):
        wait_for(lambda: len(runs(marker)) >= 16, 60, "16 jobs")
    tiers = [line["tier"] for line in runs(marker)[:16]]
    # 3:1 over 16 receives of one message each: 12 basic and 4 lite, with lite in both halves.
    assert 3 <= tiers.count("lite") <= 5, tiers
    assert "lite" in tiers[:8] and "lite" in tiers[8:], tiers


def test_shared_queue_layout_on_a_gpu_worker(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    # One queue for every tier: the tier comes from the message, and a message without one cannot be placed.
    shared = {tier: f"{unique_prefix}-jobs" for tier in TIERS}
    settings = make_settings(unique_prefix, tmp_path, queue_names=shared, slots=1)
    clients = connect(settings)
    create_infra(clients, settings)
    jobs = {
        tier: send_job(clients, settings, tier, job_type, do="echo")
        for tier, job_type in (("lite", "ocr"), ("basic", "omr_grading"), ("premium", "embedding"))
    }
    untiered = json.dumps({"job_id": "no-tier", "job_type": "ocr", "tenant_id": "academy-1", "payload": {}})
    send_body(clients, shared["lite"], untiered)
    with thread_worker(settings, kind="gpu"):
        docs = {tier: wait_result(clients, settings, job_id) for tier, job_id in jobs.items()}
        failed = wait_result(clients, settings, "no-tier")
    for tier, doc in docs.items():
        assert (doc["status"], doc["tier"], doc["worker"]["device"]) == ("done", tier, "gpu")
    assert failed["error"]["code"] == "invalid_envelope"
