"""Faults of the worker process itself: kill -9 mid-job (redelivered, exactly one result), SIGTERM (running work
finishes within the drain deadline, the rest is released at once, exit 0), and no torch in a cpu worker."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from worker.fake_handlers import runs
from worker.harness import (
    connect,
    create_infra,
    make_settings,
    queue_counts,
    result_of,
    send_job,
    start_process_worker,
    wait_for,
    wait_result,
)

pytestmark = pytest.mark.slow


def test_kill_9_mid_job_redelivers_and_writes_one_result(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(unique_prefix, tmp_path, visibility_timeout_s=3, slots=1)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "runs")
    job_id = send_job(clients, settings, "basic", "omr_grading", do="sleep", seconds=3, marker=marker)
    first = start_process_worker(settings, tmp_path, "first")
    wait_for(lambda: runs(marker), 30, "the job to start")
    os.killpg(first.pid, signal.SIGKILL)  # the whole container dies: worker and job processes
    first.wait(10)
    assert result_of(clients, settings, job_id) is None
    second = start_process_worker(settings, tmp_path, "second")
    try:
        doc = wait_result(clients, settings, job_id, timeout=40)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        assert second.wait(30) == 0
    assert doc["status"] == "done" and doc["attempts"] == 2
    assert len(runs(marker)) == 2
    listing = clients.s3.list_objects_v2(Bucket=settings.results_bucket, Prefix=settings.results_prefix)
    assert [o["Key"] for o in listing["Contents"]] == [f"{settings.results_prefix}academy-1/{job_id}.json"]
    wait_for(lambda: queue_counts(clients, settings.queue_names["basic"]) == (0, 0), 10, "message deleted")


@pytest.mark.parametrize("to_group", [False, True], ids=["worker", "process-group"])
def test_sigterm_drains_then_releases(moto_endpoint: str, unique_prefix: str, tmp_path: Path, to_group: bool) -> None:
    """SIGTERM to the worker (docker stop) or to its whole process group (a terminal, `timeout`) drains the same
    way: the job processes ignore it and the worker decides what finishes and what is released."""
    settings = make_settings(unique_prefix, tmp_path, slots=2, drain_timeout_s=4, visibility_timeout_s=60)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "runs")
    short = send_job(clients, settings, "basic", "omr_grading", do="sleep", seconds=2, marker=marker)
    long = send_job(clients, settings, "basic", "omr_grading", do="sleep", seconds=60, marker=marker)
    proc = start_process_worker(settings, tmp_path)
    wait_for(lambda: len(runs(marker)) == 2, 30, "both jobs to start")
    sent = time.monotonic()
    if to_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    took = time.monotonic() - sent
    assert took < settings.drain_timeout_s + settings.wait_time_s + 5, took
    assert wait_result(clients, settings, short, timeout=1)["status"] == "done"  # finished within the drain
    assert result_of(clients, settings, long) is None
    # released, not waiting out its 60 s lease: visible again at once
    url = clients.sqs.get_queue_url(QueueName=settings.queue_names["basic"])["QueueUrl"]
    got = clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MessageSystemAttributeNames=["All"])
    bodies = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    assert [b["job_id"] for b in bodies] == [long]


def test_cpu_worker_never_imports_torch(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=1)
    clients = connect(settings)
    create_infra(clients, settings)
    job_id = send_job(clients, settings, "lite", "ocr", do="echo")
    proc = start_process_worker(settings, tmp_path)
    doc = wait_result(clients, settings, job_id, timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert doc["result"]["torch_loaded"] is False  # the job process
    assert json.loads(out.strip().splitlines()[-1]) == {"torch_imported": False}  # the worker process
