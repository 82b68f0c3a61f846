"""Prefetch: the buffer beyond the slots follows recent job times, fills receives with full batches when jobs are
short, and is released at once on drain; nothing is lost or run twice."""

from __future__ import annotations

from pathlib import Path

from ai_worker.worker.engine import DEFAULT_BATCH_SIZES
from ai_worker.worker.prefetch import MEMORY_S, Prefetch

from .fake_handlers import runs
from .harness import MemoryWorld, memory_settings, wait_for


def test_buffer_follows_the_slowest_recent_job_type() -> None:
    now = [0.0]
    prefetch = Prefetch(slots=2, max_extra=10, visibility_s=120, clock=lambda: now[0])
    assert prefetch.extra() == 0  # nothing timed yet: receive for free slots only
    prefetch.record("ocr", 0.05)
    assert prefetch.extra() == 10  # 2 s of waiting fits 80 such jobs on 2 slots: capped
    prefetch.record("homework_video_analysis", 30.0)
    assert prefetch.extra() == 0  # a 30 s job must not sit behind others
    now[0] += MEMORY_S + 1
    prefetch.record("ocr", 0.05)
    assert prefetch.extra() == 10  # the slow type has not been seen for a while
    prefetch.record("ocr", 3.0)  # averaged: 0.8 * 0.05 + 0.2 * 3.0 = 0.64 s
    assert prefetch.extra() == 6  # 2 s * 2 slots / 0.64 s
    assert Prefetch(slots=2, max_extra=10, visibility_s=4).target_wait_s == 1.0  # at most a quarter of a lease


def test_a_batchable_job_type_holds_enough_for_a_full_batch_per_slot_and_one_waiting() -> None:
    now = [0.0]
    prefetch = Prefetch(
        slots=1, max_extra=10, visibility_s=120, clock=lambda: now[0], batch_sizes={"embedding": 16, "ocr": 1}
    )
    prefetch.record("ocr", 0.01)
    assert prefetch.extra() == 10  # not batchable: the usual limit
    prefetch.record("embedding", 0.01)
    assert prefetch.extra() == 31  # 16 running and 16 waiting, beyond the one slot
    now[0] += MEMORY_S + 1
    prefetch.record("ocr", 0.01)
    assert prefetch.extra() == 10  # no embedding job for a while: back to the usual limit
    two = Prefetch(slots=2, max_extra=10, visibility_s=120, batch_sizes={"embedding": 16})
    two.record("embedding", 0.01)
    assert two.extra() == 46  # 3 batches of 16, beyond the two slots
    two.record("embedding", 0.5)  # averaged: 0.8 * 0.01 + 0.2 * 0.5 = 0.108 s per job
    assert two.extra() == 37  # still bounded by the wait: 2 s * 2 slots / 0.108 s
    off = Prefetch(slots=1, max_extra=0, visibility_s=120, batch_sizes={"embedding": 16})
    off.record("embedding", 0.01)
    assert off.extra() == 0  # 0 turns prefetch off, batches included


def test_short_jobs_are_received_in_full_batches_and_each_runs_once(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, slots=2))
    marker = str(tmp_path / "runs")
    ids = [world.send_job("basic", "omr_grading", do="echo", marker=marker) for _ in range(60)]
    with world.worker():
        for job_id in ids:
            world.wait_result(job_id)
        queue = world.settings.queue_names["basic"]
        receives = world.broker.receives[queue]
        wait_for(lambda: world.broker.counts(queue) == (0, 0), 10, "all deleted")
    assert sorted(r["job_id"] for r in runs(marker)) == sorted(ids)  # each exactly once
    # the first receive takes one per slot; once the job type is timed, batches of ten; without prefetch it is a
    # receive per one or two jobs. Counted on the jobs' queue only: the empty polls of the lite queue meanwhile are
    # as many as the run is long, which a loaded machine stretches.
    assert receives <= 15, receives


def test_drain_releases_the_buffer_at_once(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, slots=1, visibility_timeout_s=60, drain_timeout_s=2))
    marker = str(tmp_path / "runs")
    queue = world.settings.queue_names["basic"]
    with world.worker() as worker:
        world.wait_result(world.send_job("basic", "omr_grading", do="echo"))
        long = world.send_job("basic", "omr_grading", do="sleep", seconds=30, marker=marker)
        wait_for(lambda: runs(marker), 20, "the long job to start")
        waiting = [world.send_job("basic", "omr_grading", do="echo") for _ in range(5)]
        # held beyond the one slot (how many depends on how long the timed job took on this machine)
        wait_for(lambda: world.broker.counts(queue)[1] >= 2, 20, "messages buffered")
        assert worker.stop() == 0
    assert world.broker.counts(queue) == (6, 0)  # the running job and the buffer: visible again at once
    assert all(world.result(job_id) is None for job_id in [long, *waiting])


def test_batchable_jobs_run_together_with_independent_outcomes(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, slots=1, retry_base_s=1))
    marker = str(tmp_path / "runs")
    with world.worker(kind="gpu"):  # premium (embedding) is a gpu worker's queue; the fake handler needs no GPU
        world.wait_result(world.send_job("premium", "embedding", do="echo"))  # times the type: prefetch opens
        gate = tmp_path / "gate"
        blocker = world.send_job("premium", "embedding", do="wait", gate=str(gate), marker=marker)
        wait_for(lambda: runs(marker), 20, "the slot busy")
        ok = [world.send_job("premium", "embedding", do="echo", value=i, marker=marker) for i in range(5)]
        bad = world.send_job("premium", "embedding", do="fail", code="bad_texts", marker=marker)
        flaky = world.send_job("premium", "embedding", do="transient", marker=marker)
        queue = world.settings.queue_names["premium"]
        wait_for(lambda: world.broker.counts(queue)[1] >= 3, 20, "jobs held while the slot is busy")
        gate.touch()
        docs = {job_id: world.wait_result(job_id) for job_id in [blocker, *ok, bad]}
        ran = lambda job_id: [r for r in runs(marker) if r["job_id"] == job_id and "do" in r]  # noqa: E731
        wait_for(lambda: len(ran(flaky)) >= 2, 30, "the retry")
    assert max(r.get("batch", 1) for r in runs(marker) if r["job_id"] in ok) > 1  # together while the slot was busy
    assert all(len(ran(job_id)) == 1 for job_id in [*ok, bad])  # each exactly once
    assert all(docs[job_id]["status"] == "done" for job_id in [blocker, *ok])
    assert [docs[j]["result"]["echo"] for j in ok] == list(range(5))
    assert docs[bad]["error"]["code"] == "bad_texts"  # its neighbours are unaffected
    assert world.result(flaky) is None  # retried on its own, never failed with the batch
    noticed = {n["job_id"] for n in world.notices()}
    assert set(docs) <= noticed and flaky not in noticed


def test_default_settings_hold_full_batches_beyond_the_prefetch_limit(tmp_path: Path) -> None:
    world = MemoryWorld(memory_settings(tmp_path, slots=1))
    marker = str(tmp_path / "runs")
    size = DEFAULT_BATCH_SIZES["embedding"]
    assert size > 1 + world.settings.prefetch_max  # more than one slot and the usual buffer could hand over
    with world.worker(kind="gpu"):
        for _ in range(3):  # times the type as short: the buffer opens to (1 + 1) * size - 1
            world.wait_result(world.send_job("premium", "embedding", do="echo"))
        # a burst runs in batches, so its per-job times bring the average down from a cold job process's first run
        for job_id in [world.send_job("premium", "embedding", do="echo") for _ in range(2 * size)]:
            world.wait_result(job_id)
        gate = tmp_path / "gate"
        blocker = world.send_job("premium", "embedding", do="wait", gate=str(gate), marker=marker)
        wait_for(lambda: runs(marker), 20, "the slot busy")
        ids = [world.send_job("premium", "embedding", do="echo", value=i, marker=marker) for i in range(2 * size)]
        queue = world.settings.queue_names["premium"]
        # the slot stays busy until the worker holds the blocker and at least a full batch beyond it
        wait_for(lambda: world.broker.counts(queue)[1] >= 1 + size, 20, "a full batch held")
        gate.touch()
        for job_id in [blocker, *ids]:
            world.wait_result(job_id)
    batches = [r.get("batch", 1) for r in runs(marker) if r["job_id"] in ids]
    assert max(batches) == size, batches  # a full batch was held while the slot was busy
    ran = sorted(r["job_id"] for r in runs(marker) if r["job_id"] in ids and "do" in r)
    assert ran == sorted(ids)  # each exactly once
