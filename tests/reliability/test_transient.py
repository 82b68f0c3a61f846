"""A transient failure is retried with a growing delay (through the visibility timeout), and the redrive policy
moves the message to the DLQ after maxReceiveCount, intact and without a result (on the in-memory broker, which
keeps SQS's redrive semantics; the moto end-to-end set covers the real client)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from worker.fake_handlers import runs
from worker.harness import MemoryWorld, memory_settings, wait_for


def test_transient_errors_back_off_then_dead_letter(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = MemoryWorld(memory_settings(tmp_path, retry_base_s=1, slots=1), max_receive_count=3)
    marker = str(tmp_path / "attempts")
    with world.worker():
        job_id = world.send_job("basic", "omr_grading", do="transient", marker=marker)
        wait_for(lambda: len(runs(marker)) >= 3, 40, "three attempts")
        dead = wait_for(lambda: world.broker.bodies(world.dlq("basic")), 20, "the message in the DLQ")
    delays = [r.args[0] for r in caplog.records if getattr(r, "outcome", None) == "retry"]
    times = [line["t"] for line in runs(marker)]
    assert len(times) == 3, times  # maxReceiveCount receives, then the redrive policy moved it to the DLQ
    # backoff 1 s, 2 s, 3-4 s: each longer than the one before, whatever the jitter drew
    assert len(delays) == 3 and delays[0] < delays[1] < delays[2], delays
    for delay, gap in zip(delays, itertools.pairwise(times), strict=False):
        assert gap[1] - gap[0] >= delay - 0.1, (delays, times)  # the message really stayed invisible that long
    assert len(dead) == 1 and json.loads(dead[0])["job_id"] == job_id
    assert world.result(job_id) is None
