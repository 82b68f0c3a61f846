"""The idempotency check of the job process (`JobRunner`), run in this process on a file sink that counts its
checks: `result_check` "always" looks for the result on every delivery, "redelivered" only from the second
receive on, and what each one does with a job whose result already exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ai_worker.config import Settings
from ai_worker.envelope import parse_envelope, validate_envelope
from ai_worker.results import ResultRef, S3ResultSink, notice
from ai_worker.worker.child import JobRunner, JobTask

from .fake_handlers import REGISTRY, runs
from .file_sink import FileResultSink, read
from .harness import MemoryWorld, connect, make_settings, memory_settings, wait_for


class CountingSink(FileResultSink):
    checks = 0

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        CountingSink.checks += 1
        return super().exists(tenant, job_id)


def counting_sink(settings: Settings) -> CountingSink:
    return CountingSink(settings)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CountingSink.checks = 0


def task(job_id: str, marker: str, attempts: int, value: int = 1) -> JobTask:
    body = {"job_id": job_id, "job_type": "ocr", "tier": "basic", "tenant_id": "academy-1"}
    env = parse_envelope(json.dumps({**body, "payload": {"do": "echo", "value": value, "marker": marker}}))
    validate_envelope(env, queue_tiers=frozenset({"basic"}))
    return JobTask(envelope=env, handler=REGISTRY["ocr"], attempts=attempts, queued_s=0.0)


def runner(tmp_path: Path, check: Any) -> JobRunner:
    return JobRunner(memory_settings(tmp_path, result_check=check), "cpu", counting_sink)


def test_always_checks_every_delivery_and_never_runs_a_job_whose_result_exists(tmp_path: Path) -> None:
    jobs = runner(tmp_path, "always")
    marker = str(tmp_path / "runs")
    first = jobs.run(task("j-1", marker, attempts=1, value=1))
    assert first.outcome == "done" and CountingSink.checks == 1
    # The same job_id submitted again (a new message, so a first receive again): not run, notice re-sent.
    again = jobs.run(task("j-1", marker, attempts=1, value=2))
    assert again.outcome == "duplicate" and again.notice == first.notice
    assert CountingSink.checks == 2
    assert len(runs(marker)) == 1
    assert read(jobs.settings, "j-1")["result"]["echo"] == 1  # type: ignore[index]


def test_redelivered_skips_the_check_on_a_first_receive_only(tmp_path: Path) -> None:
    jobs = runner(tmp_path, "redelivered")
    marker = str(tmp_path / "runs")
    first = jobs.run(task("j-1", marker, attempts=1, value=1))
    assert first.outcome == "done"
    assert CountingSink.checks == 0  # one S3 request less: the conditional write alone
    # A redelivery (receive count 2) is checked: the job does not run again, its notice is re-sent.
    redelivered = jobs.run(task("j-1", marker, attempts=2, value=3))
    assert redelivered.outcome == "duplicate" and redelivered.notice == first.notice
    assert CountingSink.checks == 1
    assert len(runs(marker)) == 1


def test_redelivered_runs_a_resubmitted_job_again_but_keeps_the_first_document(tmp_path: Path) -> None:
    # What "redelivered" gives up: the same job_id submitted again (or an SQS duplicate read as a first receive)
    # runs again. The stored document stands, the re-run's result is discarded, and the notice re-sent is the same.
    jobs = runner(tmp_path, "redelivered")
    marker = str(tmp_path / "runs")
    first = jobs.run(task("j-1", marker, attempts=1, value=1))
    again = jobs.run(task("j-1", marker, attempts=1, value=2))
    assert again.outcome == "duplicate"
    assert again.notice == first.notice == notice(task("j-1", marker, 1).envelope, _ref(jobs, "j-1"))
    assert len(runs(marker)) == 2
    assert read(jobs.settings, "j-1")["result"]["echo"] == 1  # type: ignore[index]


def test_redelivered_checks_each_job_of_a_batch_by_its_own_receive_count(tmp_path: Path) -> None:
    jobs = runner(tmp_path, "redelivered")
    marker = str(tmp_path / "runs")
    jobs.run(task("done-before", marker, attempts=1))
    CountingSink.checks = 0
    reports = jobs.run_batch(
        [task("new", marker, attempts=1), task("done-before", marker, attempts=2), task("retried", marker, attempts=3)]
    )
    assert [r.outcome for r in reports] == ["done", "duplicate", "done"]
    assert CountingSink.checks == 2  # the redelivered two, not the first receive
    ran = sorted(r["job_id"] for r in runs(marker) if "batch" in r)  # handle_batch marks each job it was given
    assert ran == ["new", "retried"]


def _ref(jobs: JobRunner, job_id: str) -> ResultRef:
    ref = jobs.sink.exists("academy-1", job_id)
    assert ref is not None
    return ref


def test_redelivered_still_retries_a_job_whose_bucket_is_missing(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    # With the first check skipped, the missing bucket shows at the write: the job is retried, not failed, and its
    # redelivery is checked with a GET, whose NoSuchBucket keeps it from running again.
    settings = make_settings(unique_prefix, tmp_path, result_check="redelivered")  # no bucket is created
    jobs = JobRunner(settings, "cpu", lambda s: S3ResultSink(s, connect(s).s3))
    marker = str(tmp_path / "runs")
    for attempts, ran in ((1, 1), (2, 1)):
        report = jobs.run(task("j-1", marker, attempts=attempts))
        assert report.outcome == "retry" and report.error is not None
        assert report.error.code == "result_write_failed"
        assert len(runs(marker)) == ran


def test_redelivered_runs_a_job_id_submitted_again_through_the_engine(tmp_path: Path) -> None:
    # The case the two settings differ on, end to end on the in-memory broker: the second message of a job_id
    # arrives with a receive count of 1 and runs again; one document (the first) and one notice id all the same.
    # Under "always" it is not run (test_outcomes.py::test_existing_result_is_acknowledged_without_running).
    world = MemoryWorld(memory_settings(tmp_path, result_check="redelivered"))
    marker = str(tmp_path / "runs")
    basic = world.settings.queue_names["basic"]
    notices: list[dict[str, Any]] = []
    with world.worker():
        for value in (1, 2):
            body = {"job_id": "same-job", "job_type": "omr_grading", "tier": "basic", "tenant_id": "academy-1"}
            world.send_body(basic, json.dumps({**body, "payload": {"do": "echo", "value": value, "marker": marker}}))
            got = wait_for(world.notices, 20, f"notice {value}")
            notices += got
            wait_for(lambda: world.broker.counts(basic) == (0, 0), 10, "settled")
    assert len(runs(marker)) == 2
    assert world.result("same-job")["result"]["echo"] == 1  # type: ignore[index]
    assert len(notices) == 2 and notices[0] == notices[1]
