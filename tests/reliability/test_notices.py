"""Result notices are at-least-once: a message is deleted only after its notice was sent, a failed notice keeps
the message (it comes back and the notice is re-sent without running the job again), a redelivered job whose
result exists re-sends its notice, and kill -9 under load loses no notice."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from worker.fake_handlers import runs
from worker.harness import (
    connect,
    create_infra,
    drain_queue,
    make_settings,
    queue_counts,
    result_of,
    send_body,
    send_job,
    start_process_worker,
    thread_worker,
    wait_for,
    wait_result,
)

from ai_worker.aws import Clients
from ai_worker.config import Settings
from ai_worker.provisioning import ensure_queue
from ai_worker.results import result_key

pytestmark = pytest.mark.slow


def collect_notices(clients: Clients, settings: Settings, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert settings.results_queue
    into.extend(json.loads(m["Body"]) for m in drain_queue(clients, settings.results_queue))
    return into


def test_a_failed_notice_keeps_the_message_until_the_notice_is_sent(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=1, retry_base_s=1)
    clients = connect(settings)
    create_infra(clients, settings)
    assert settings.results_queue
    clients.sqs.delete_queue(QueueUrl=clients.sqs.get_queue_url(QueueName=settings.results_queue)["QueueUrl"])
    marker = str(tmp_path / "runs")
    queue = settings.queue_names["basic"]
    with thread_worker(settings) as worker:
        job_id = send_job(clients, settings, "basic", "omr_grading", do="echo", marker=marker)
        doc = wait_result(clients, settings, job_id)
        time.sleep(3)  # several flushes and a retry backoff: the notice keeps failing
        assert sum(queue_counts(clients, queue)) == 1  # not deleted: its notice has not gone out
        ensure_queue(clients.sqs, settings.results_queue, dlq_name=None, visibility_timeout_s=30)
        got: list[dict[str, Any]] = []
        wait_for(lambda: collect_notices(clients, settings, got), 30, "the notice, once the queue is back")
        wait_for(lambda: queue_counts(clients, queue) == (0, 0), 15, "the message deleted after its notice")
        assert worker.stop() == 0
    assert [n["job_id"] for n in got] == [job_id]
    assert got[0]["status"] == "done" and got[0]["key"] == result_key(settings, "academy-1", job_id)
    assert len(runs(marker)) == 1  # the redelivery found the result: notice re-sent, job not run again
    assert result_of(clients, settings, job_id) == doc


def test_a_redelivered_job_with_a_result_re_sends_its_notice(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=1)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "runs")
    job_id = "redelivered-1"
    stored = {"job_id": job_id, "job_type": "ocr", "tenant_id": "academy-1", "status": "failed", "error": {}}
    key = result_key(settings, "academy-1", job_id)
    clients.s3.put_object(Bucket=settings.results_bucket, Key=key, Body=json.dumps(stored))
    body = {"job_id": job_id, "job_type": "ocr", "tier": "lite", "tenant_id": "academy-1", "payload": {"do": "echo"}}
    body["payload"]["marker"] = marker
    got: list[dict[str, Any]] = []
    with thread_worker(settings):
        send_body(clients, settings.queue_names["lite"], json.dumps(body))
        wait_for(lambda: collect_notices(clients, settings, got), 20, "the re-sent notice")
    assert runs(marker) == []
    (note,) = got
    assert (note["job_id"], note["status"], note["key"], note["tenant_id"]) == (job_id, "failed", key, "academy-1")
    assert note["notice_id"]  # stable: the same on every re-send (see docs/design.md)


def test_kill_9_under_load_every_job_one_result_and_a_notice(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    jobs = 40
    settings = make_settings(unique_prefix, tmp_path, slots=2, visibility_timeout_s=3)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "runs")
    ids = [
        send_job(clients, settings, "basic", "omr_grading", do="sleep", seconds=0.1, marker=marker) for _ in range(jobs)
    ]
    first = start_process_worker(settings, tmp_path, "first")
    wait_for(lambda: len(runs(marker)) >= jobs // 3, 60, "a third of the jobs to run")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = len(runs(marker))
    second = start_process_worker(settings, tmp_path, "second")
    try:
        docs = {job_id: wait_result(clients, settings, job_id, timeout=60) for job_id in ids}
        wait_for(lambda: queue_counts(clients, settings.queue_names["basic"]) == (0, 0), 30, "every message deleted")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        assert second.wait(30) == 0
    got: list[dict[str, Any]] = []
    collect_notices(clients, settings, got)
    per_job = Counter(n["job_id"] for n in got)
    assert set(per_job) == set(ids), f"jobs without a notice: {set(ids) - set(per_job)}"
    assert all(d["status"] == "done" for d in docs.values())
    listing = clients.s3.list_objects_v2(Bucket=settings.results_bucket)
    assert len(listing["Contents"]) == jobs  # exactly one result document per job
    assert queue_counts(clients, settings.dlq_name("basic")) == (0, 0)
    print(
        f"kill -9 after {killed_at} runs: {jobs} jobs, {len(listing['Contents'])} documents, {len(got)} notices "
        f"({sum(c > 1 for c in per_job.values())} jobs notified twice), {len(runs(marker))} runs, DLQ empty"
    )
