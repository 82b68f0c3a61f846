"""Supervision: a job over its time limit or memory limit is killed and retried, a crashed job process is
replaced and its job retried, and the worker keeps serving other jobs meanwhile."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from worker.fake_handlers import runs
from worker.harness import connect, create_infra, make_settings, send_job, thread_worker, wait_for, wait_result

pytestmark = pytest.mark.slow


def test_time_memory_and_crash_limits(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=2, job_timeout_s=20, job_memory_mb=300, retry_base_s=1)
    clients = connect(settings)
    create_infra(clients, settings)
    marks = {name: str(tmp_path / name) for name in ("slow", "hog", "crash", "quick")}
    with thread_worker(settings) as worker:
        slow = send_job(
            clients,
            settings,
            "basic",
            "ocr",
            do="sleep",
            seconds=60,
            only_first=True,
            # The retried run must end within the limit too, handler start and result write included: on a loaded
            # machine (moto shares the GIL with this test's worker) 2 s was once too short for that.
            timeout_s=5,
            marker=marks["slow"],
        )
        hog = send_job(clients, settings, "basic", "ocr", do="hog", mb=600, marker=marks["hog"])
        crash = send_job(clients, settings, "basic", "ocr", do="crash", marker=marks["crash"])
        quick = send_job(clients, settings, "lite", "ocr", do="echo", marker=marks["quick"])
        docs = {job_id: wait_result(clients, settings, job_id, timeout=45) for job_id in (slow, hog, crash, quick)}
        # Job processes that die while idle are replaced before they are given work.
        idle = [p for p in psutil.Process().children() if any("spawn_main" in part for part in p.cmdline())]
        assert idle
        for proc in idle:
            proc.kill()
        after = send_job(clients, settings, "lite", "ocr", do="echo")
        assert wait_result(clients, settings, after, timeout=30)["status"] == "done"
        assert any("while idle; restarting" in r.getMessage() for r in caplog.records)
        assert worker.stop() == 0
    retried = {getattr(r, "code", None) for r in caplog.records if getattr(r, "outcome", None) == "retry"}
    assert retried == {"job_timeout", "job_out_of_memory", "job_crashed"}
    for job_id in (slow, hog, crash):
        assert docs[job_id]["status"] == "done", docs[job_id]
        assert docs[job_id]["attempts"] == 2, docs[job_id]  # killed once, then retried from the queue
    assert docs[quick]["attempts"] == 1
    for name in ("slow", "hog", "crash"):
        first, second = runs(marks[name])
        assert first["pid"] != second["pid"], name  # the killed process was replaced
    slow_first, slow_second = runs(marks["slow"])
    # Killed at the 5 s limit, not after its 60 s sleep: timed from the handler's start to the kill itself, so that
    # the new job process's start and the redelivery (slow on a loaded machine) are not counted; then retried.
    (killed,) = [r for r in caplog.records if "time limit of 5s; killing its process" in r.getMessage()]
    assert killed.created - slow_first["t"] < 15
    assert slow_first["t"] < killed.created < slow_second["t"]


def test_payload_may_lower_but_not_raise_the_time_limit(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    from ai_worker.envelope import Envelope
    from ai_worker.worker.engine import job_time_limit

    settings = make_settings(unique_prefix, tmp_path, job_timeout_s=60)
    assert job_time_limit(settings, Envelope(job_id="a", payload={"timeout_s": 5})) == 5
    assert job_time_limit(settings, Envelope(job_id="a", payload={"timeout_s": 5000})) == 60
    assert job_time_limit(settings, Envelope(job_id="a", payload={"timeout_s": "5"})) == 60


def test_a_job_type_s_declared_limits_apply_capped_by_the_worker_s(tmp_path: Path) -> None:
    """`JobSpec.timeout_s` / `memory_mb` are the job's limits; the worker-wide settings cap them and stand in for
    job types that declare none; the payload may still lower the time limit."""
    from ai_worker import jobs
    from ai_worker.envelope import Envelope
    from ai_worker.jobs.spec import JobSpec
    from ai_worker.worker.engine import job_limits

    settings = make_settings("limits", tmp_path, job_timeout_s=60, job_memory_mb=2048)
    spec = JobSpec(
        name="limited_toy",
        handler="worker.fake_handlers:handle",
        tiers=("premium",),
        description="a toy",
        timeout_s=5,
        memory_mb=512,
    )
    greedy = JobSpec(
        name="greedy_toy",
        handler="worker.fake_handlers:handle",
        tiers=("premium",),
        description="a toy",
        timeout_s=600,
        memory_mb=8192,
    )
    jobs.register(spec)
    jobs.register(greedy)
    try:
        assert job_limits(settings, Envelope(job_id="a", job_type="limited_toy")) == (5, 512)
        assert job_limits(settings, Envelope(job_id="a", job_type="limited_toy", payload={"timeout_s": 2})) == (2, 512)
        assert job_limits(settings, Envelope(job_id="a", job_type="greedy_toy")) == (60, 2048)
        assert job_limits(settings, Envelope(job_id="a", job_type="embedding")) == (60, 2048)
    finally:
        jobs.unregister("limited_toy")
        jobs.unregister("greedy_toy")


CHILD_HOG = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(96 << 20); b[::4096] = b'x' * len(b[::4096]); "
                          "print('ready', flush=True); import time; time.sleep(60)"], stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
import time; time.sleep(60)
"""


def test_a_job_process_s_memory_includes_what_its_children_hold() -> None:
    import subprocess
    import sys
    from types import SimpleNamespace

    from ai_worker.worker.slots import Slot

    parent = subprocess.Popen([sys.executable, "-c", CHILD_HOG], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        slot = Slot.__new__(Slot)  # the memory check alone, on a stand-in for the job process
        slot.process = SimpleNamespace(pid=parent.pid)  # type: ignore[assignment]
        slot._ps, slot._children, slot._children_at = None, [], float("-inf")
        own = psutil.Process(parent.pid).memory_info().rss
        assert slot.rss_bytes() >= own + (96 << 20)
        child.kill()
        gone = lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE  # noqa: E731
        wait_for(gone, 10, "the child to end")
        assert own <= slot.rss_bytes() < own + (96 << 20)  # a child that ended since it was listed counts nothing
    finally:
        parent.kill()
        parent.wait(10)
    assert slot.rss_bytes() == 0  # the job process is gone
