"""The engine on the in-memory broker (SQS semantics without HTTP): outcomes and notices, leases on a job longer
than its lease, weighted polling, the shared-queue layout, drain (redrive after max receives:
tests/reliability/test_transient.py). The end-to-end set on moto through boto3 lives in test_outcomes.py and
tests/reliability/."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ai_worker.tiers import TIERS

from .fake_handlers import runs
from .harness import MemoryWorld, memory_settings, wait_for


def test_outcomes_notices_and_deletes(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path))
    marker = str(tmp_path / "runs")
    basic = world.settings.queue_names["basic"]
    with world.worker() as worker:
        done = world.send_job("basic", "omr_grading", do="echo", value=7, marker=marker)
        failed = world.send_job("basic", "omr_grading", do="fail", code="alignment_failed", marker=marker)
        bad_tier = world.send_job("lite", "omr_grading", marker=marker)
        world.send_body(basic, "[" * 1000 + "]" * 1000, {"o": {"DataType": "String", "StringValue": "p"}})
        docs = {job_id: world.wait_result(job_id) for job_id in (done, failed, bad_tier)}
        wait_for(lambda: world.broker.counts(basic) == (0, 0), 10, "basic settled")
        wait_for(lambda: world.broker.counts(world.settings.queue_names["lite"]) == (0, 0), 10, "lite settled")
        assert worker.stop() == 0
    assert docs[done]["status"] == "done" and docs[done]["result"]["echo"] == 7
    assert docs[failed]["error"]["code"] == "alignment_failed"
    assert docs[bad_tier]["error"]["code"] == "tier_not_allowed"
    assert world.broker.bodies(world.dlq("basic")) == ["[" * 1000 + "]" * 1000]
    notices = {n["job_id"]: n for n in world.notices()}
    assert set(notices) == {done, failed, bad_tier}
    assert notices[done]["status"] == "done" and notices[failed]["status"] == "failed"
    assert sorted(r["job_id"] for r in runs(marker)) == sorted([done, failed])


def test_failed_notice_keeps_the_message_and_redelivery_re_sends_it(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, retry_base_s=1))
    results = world.settings.results_queue
    assert results
    marker = str(tmp_path / "runs")
    world.broker.fail_sends.add(results)
    with world.worker():
        job_id = world.send_job("lite", "ocr", do="echo", marker=marker)
        world.wait_result(job_id)
        time.sleep(2)
        assert sum(world.broker.counts(world.settings.queue_names["lite"])) == 1  # kept: no notice yet
        world.broker.fail_sends.clear()
        notices = wait_for(world.notices, 20, "the notice")
        wait_for(lambda: world.broker.counts(world.settings.queue_names["lite"]) == (0, 0), 10, "deleted")
    assert [n["job_id"] for n in notices] == [job_id]
    assert len(runs(marker)) == 1


def test_jobs_keep_running_while_a_delete_call_hangs_and_nothing_is_lost(tmp_path: Path) -> None:
    # Settling calls go out on the sender thread: a slow SQS answer does not stop the loop from dispatching.
    world = MemoryWorld(memory_settings(tmp_path, slots=1))
    marker = str(tmp_path / "runs")
    basic = world.settings.queue_names["basic"]
    in_call, release = threading.Event(), threading.Event()
    delete = world.broker.delete

    def hanging_delete(messages: Any) -> Any:
        in_call.set()
        release.wait(60)
        return delete(messages)

    world.broker.delete = hanging_delete  # type: ignore[method-assign]
    with world.worker() as worker:
        try:
            first = world.send_job("basic", "omr_grading", do="echo", marker=marker)
            world.wait_result(first)
            wait_for(in_call.is_set, 10, "a delete call in flight")
            later = [world.send_job("basic", "omr_grading", do="echo", marker=marker) for _ in range(3)]
            for job_id in later:
                world.wait_result(job_id)  # run while the delete call hangs
            assert world.broker.calls.get("DeleteMessageBatch", 0) == 0  # the first delete is still in flight
        finally:
            release.set()
        wait_for(lambda: world.broker.counts(basic) == (0, 0), 10, "every message deleted")
        assert worker.stop() == 0
    assert sorted(r["job_id"] for r in runs(marker)) == sorted([first, *later])  # each exactly once
    assert {n["job_id"] for n in world.notices()} == {first, *later}


def test_job_longer_than_its_lease_runs_once(tmp_path: Path) -> None:
    # Each lease is 2 s; the job takes 4 s. Without renewals the second slot would receive it again after 2 s.
    world = MemoryWorld(memory_settings(tmp_path, visibility_timeout_s=2, slots=2), queue_visibility_s=1)
    marker = str(tmp_path / "runs")
    with world.worker():
        job_id = world.send_job("basic", "omr_grading", do="sleep", seconds=4, marker=marker)
        doc = world.wait_result(job_id, timeout=30)
        wait_for(lambda: world.broker.counts(world.settings.queue_names["basic"]) == (0, 0), 10, "deleted")
    assert doc["attempts"] == 1 and len(runs(marker)) == 1
    assert world.broker.calls.get("ChangeMessageVisibilityBatch", 0) >= 1  # renewed


def test_basic_is_favoured_and_lite_is_not_starved(tmp_path: Path) -> None:
    # Weights apply to receives; without prefetch each receive here takes one message (one slot).
    world = MemoryWorld(memory_settings(tmp_path, slots=1, prefetch_max=0))
    marker = str(tmp_path / "order")
    for _ in range(16):
        world.send_job("basic", "omr_grading", do="echo", marker=marker)
    for _ in range(8):
        world.send_job("lite", "ocr", do="echo", marker=marker)
    with world.worker():
        wait_for(lambda: len(runs(marker)) >= 16, 60, "16 jobs")
    tiers = [line["tier"] for line in runs(marker)[:16]]
    # 3:1 over 16 receives of one message each: 12 basic and 4 lite, with lite in both halves.
    assert 3 <= tiers.count("lite") <= 5, tiers
    assert "lite" in tiers[:8] and "lite" in tiers[8:], tiers


def test_shared_queue_layout_on_a_gpu_worker(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, queue_names=dict.fromkeys(TIERS, "m-jobs"), slots=1))
    jobs = {
        tier: world.send_job(tier, job_type, do="echo")
        for tier, job_type in (("lite", "ocr"), ("basic", "omr_grading"), ("premium", "embedding"))
    }
    untiered = {"job_id": "no-tier", "job_type": "ocr", "tenant_id": "academy-1", "payload": {}}
    world.send_body("m-jobs", json.dumps(untiered))
    with world.worker(kind="gpu"):
        docs = {tier: world.wait_result(job_id) for tier, job_id in jobs.items()}
        failed = world.wait_result("no-tier")
    for tier, doc in docs.items():
        assert (doc["status"], doc["tier"], doc["worker"]["device"]) == ("done", tier, "gpu")
    assert failed["error"]["code"] == "invalid_envelope"


def test_drain_finishes_running_work_and_releases_the_rest(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, slots=2, drain_timeout_s=3, visibility_timeout_s=60))
    marker = str(tmp_path / "runs")
    queue = world.settings.queue_names["basic"]
    with world.worker() as worker:
        short = world.send_job("basic", "omr_grading", do="sleep", seconds=1, marker=marker)
        long = world.send_job("basic", "omr_grading", do="sleep", seconds=60, marker=marker)
        wait_for(lambda: len(runs(marker)) == 2, 20, "both jobs to start")
        assert worker.stop() == 0
    assert world.result(short) is not None and world.result(long) is None
    assert world.broker.counts(queue) == (1, 0)  # released: visible at once, not after its 60 s lease


def test_a_failing_loop_releases_everything_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever breaks the loop itself (here: dispatching), its failure path makes every held message visible
    again at once: none waits out its lease, none is lost."""
    from ai_worker.worker import engine

    world = MemoryWorld(memory_settings(tmp_path, slots=2, visibility_timeout_s=60))
    queue = world.settings.queue_names["basic"]
    for _ in range(2):
        world.send_job("basic", "omr_grading", do="echo")

    def broken(self: engine.Engine, pool: object) -> None:
        if self.pending:
            raise RuntimeError("a bug in the loop")

    monkeypatch.setattr(engine.Engine, "_dispatch", broken)
    with world.worker() as worker:
        worker.thread.join(30)
    assert worker.exit_code == 1
    assert world.broker.counts(queue) == (2, 0)  # released, not left in flight for their 60 s lease


def test_a_job_killed_for_its_time_limit_takes_the_processes_it_started_with_it(tmp_path: Path) -> None:
    import psutil

    # 4 s: a fresh job process under a loaded machine can take 2 s to import and write its marker, and a run
    # killed before that would count as a first run again.
    world = MemoryWorld(memory_settings(tmp_path, job_timeout_s=4, retry_base_s=1))
    marker = str(tmp_path / "runs")
    with world.worker():
        job_id = world.send_job("basic", "omr_grading", do="spawn", marker=marker)
        child_pid = wait_for(
            lambda: next((r["child_pid"] for r in runs(marker) if "child_pid" in r), None), 20, "a child"
        )
        assert psutil.pid_exists(child_pid)
        doc = world.wait_result(job_id, timeout=60)  # killed at 4 s, retried, done on its second run
    assert doc["status"] == "done" and doc["attempts"] == 2

    def gone() -> bool:
        try:
            return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, 10, "the job's child to be killed with it")


def test_a_full_batch_of_settled_messages_goes_alone_and_the_rest_waits_for_company(tmp_path: Path) -> None:
    """Settling two jobs at once can take nine waiting deletes to eleven: ten go in one call and the eleventh
    waits for the next ten (or the flush delay), instead of a call of its own; the oldest go first, each once."""
    from ai_worker.broker import Message
    from ai_worker.worker.engine import FLUSH_DELAY_S, Engine

    from .fake_handlers import REGISTRY
    from .file_sink import file_sink

    world = MemoryWorld(memory_settings(tmp_path))
    engine = Engine(world.settings, "cpu", REGISTRY, threading.Event(), world.broker, file_sink)
    deleted: list[list[str]] = []
    delete = world.broker.delete

    def recording_delete(messages: Any) -> Any:
        deleted.append([m.message_id for m in messages])
        return delete(messages)

    world.broker.delete = recording_delete  # type: ignore[method-assign]
    lite = world.settings.queue_names["lite"]
    messages = [Message(lite, f"m{i:02d}", f"r{i}", "{}", 1, 0.0, 0.0) for i in range(21)]
    for message in messages[:9]:
        engine._ack(message)
    engine._flush()
    assert deleted == []  # nine wait for company
    for message in messages[9:11]:
        engine._ack(message)
    engine._flush()
    engine._flush()
    assert deleted == [[f"m{i:02d}" for i in range(10)]]  # ten went, m10 waits
    for message in messages[11:21]:
        engine._ack(message)
    engine._flush()
    assert deleted[1:] == [[f"m{i:02d}" for i in range(10, 20)]]
    assert engine._batch_since is not None
    engine._batch_since -= FLUSH_DELAY_S  # the remainder has waited its delay
    engine._flush()
    assert deleted[2:] == [["m20"]]
    engine._flush(force=True)
    assert len(deleted) == 3  # nothing left, nothing twice
