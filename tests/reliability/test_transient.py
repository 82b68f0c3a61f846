"""A transient failure is retried with a growing delay (through the visibility timeout), and SQS's redrive policy
moves the message to the DLQ after maxReceiveCount, intact and without a result."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from worker.fake_handlers import runs
from worker.harness import (
    connect,
    create_infra,
    drain_queue,
    make_settings,
    result_of,
    send_job,
    thread_worker,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_transient_errors_back_off_then_dead_letter(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(unique_prefix, tmp_path, retry_base_s=1, slots=1)
    clients = connect(settings)
    create_infra(clients, settings, max_receive_count=3)
    marker = str(tmp_path / "attempts")
    job_id = send_job(clients, settings, "basic", "omr_grading", do="transient", marker=marker)
    dlq = settings.queue_names["basic"] + settings.dlq_suffix
    with thread_worker(settings):
        wait_for(lambda: len(runs(marker)) >= 3, 40, "three attempts")
        dead = wait_for(lambda: drain_queue(clients, dlq), 20, "the message in the DLQ")
    delays = [r.args[0] for r in caplog.records if getattr(r, "outcome", None) == "retry"]
    times = [line["t"] for line in runs(marker)]
    assert len(times) == 3, times  # maxReceiveCount receives, then SQS moved it to the DLQ
    # backoff 1 s, 2 s, 3-4 s: each longer than the one before, whatever the jitter drew
    assert len(delays) == 3 and delays[0] < delays[1] < delays[2], delays
    for delay, gap in zip(delays, itertools.pairwise(times), strict=False):
        assert gap[1] - gap[0] >= delay - 0.1, (delays, times)  # the message really stayed invisible that long
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["job_id"] == job_id
    assert result_of(clients, settings, job_id) is None
