"""Each outcome of the worker engine against moto's SQS+S3 with the real boto3 client: done, failed (handler,
envelope, tier, unknown type), dead, duplicate (idempotency), plus inputs and blobs seen from a handler.

One worker serves the whole module (job processes stay warm, as in production); each test sends its own jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_worker.aws import Clients
from ai_worker.config import Settings
from ai_worker.results import result_key
from ai_worker.worker import heartbeat

from .fake_handlers import runs
from .harness import (
    ThreadWorker,
    connect,
    create_infra,
    drain_queue,
    queue_counts,
    result_of,
    send_body,
    send_job,
    thread_worker,
    wait_for,
    wait_result,
)
from .harness import make_settings as _make_settings


@pytest.fixture(scope="module")
def world(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Clients, ThreadWorker]]:
    import uuid

    tmp = tmp_path_factory.mktemp("outcomes")
    settings = _make_settings(f"o{uuid.uuid4().hex[:10]}", tmp)
    clients = connect(settings)
    create_infra(clients, settings)
    with thread_worker(settings) as worker:
        yield settings, clients, worker
    assert worker.exit_code == 0


def notices(clients: Clients, settings: Settings) -> dict[str, dict[str, Any]]:
    assert settings.results_queue
    return {n["job_id"]: n for n in (json.loads(m["Body"]) for m in drain_queue(clients, settings.results_queue))}


def test_done_writes_result_notifies_and_deletes(world: tuple[Settings, Clients, ThreadWorker]) -> None:
    settings, clients, _ = world
    ids = [send_job(clients, settings, "basic", "omr_grading", do="echo", value=i) for i in range(3)]
    lite = send_job(clients, settings, "lite", "ocr", do="echo", value="lite")
    docs = {job_id: wait_result(clients, settings, job_id) for job_id in [*ids, lite]}

    for i, job_id in enumerate(ids):
        doc = docs[job_id]
        assert doc["status"] == "done"
        assert doc["result"]["echo"] == i
        assert (doc["job_id"], doc["job_type"], doc["tier"], doc["tenant_id"]) == (
            job_id,
            "omr_grading",
            "basic",
            "academy-1",
        )
        assert doc["attempts"] == 1
        assert doc["worker"]["device"] == "cpu" and doc["worker"]["version"]
        assert doc["timings"]["run_s"] >= 0 and doc["timings"]["queued_s"] >= 0
    assert docs[lite]["tier"] == "lite" and docs[lite]["result"]["echo"] == "lite"

    got = wait_for(lambda: notices(clients, settings), 10, "notices")
    for job_id in [*ids, lite]:
        if job_id not in got:
            got.update(wait_for(lambda: notices(clients, settings), 10, "more notices"))
    assert set(got) >= {*ids, lite}
    note = got[ids[0]]
    assert note["status"] == "done"
    assert note["key"] == result_key(settings, "academy-1", ids[0])
    assert note["s3_uri"] == f"s3://{settings.results_bucket}/{note['key']}"
    wait_for(lambda: queue_counts(clients, settings.queue_names["basic"]) == (0, 0), 10, "basic queue empty")


def test_permanent_error_is_a_failed_result_without_retry(
    world: tuple[Settings, Clients, ThreadWorker], tmp_path: Path
) -> None:
    settings, clients, _ = world
    marker = str(tmp_path / "runs")
    job_id = send_job(clients, settings, "basic", "omr_grading", do="fail", code="alignment_failed", marker=marker)
    bug_id = send_job(clients, settings, "basic", "omr_grading", do="bug")
    doc = wait_result(clients, settings, job_id)
    assert doc["status"] == "failed"
    assert doc["error"] == {
        "code": "alignment_failed",
        "message": "the fake handler refuses this input",
        "retryable": False,
    }
    bug = wait_result(clients, settings, bug_id)
    assert bug["error"]["code"] == "internal_error" and "ValueError" in bug["error"]["message"]
    wait_for(lambda: queue_counts(clients, settings.queue_names["basic"]) == (0, 0), 10, "message deleted")
    time.sleep(1.5)  # a retry would have come back by now (retry_base_s is 1)
    assert len(runs(marker)) == 1


@pytest.mark.parametrize(
    ("tier", "body", "code"),
    [
        ("basic", {"job_type": "no_such_type"}, "unsupported_job_type"),
        ("lite", {"job_type": "omr_grading", "tier": "lite"}, "tier_not_allowed"),
        ("basic", {"job_type": "embedding", "tier": "basic"}, "tier_not_allowed"),
        ("basic", {"job_type": "ocr", "tier": "lite"}, "tier_not_allowed"),  # lite job on the basic queue
        ("basic", {"task": "ocr", "tenant_id": "a", "payload": {"tenant_id": "b"}}, "tenant_mismatch"),
        ("basic", {"type": "ocr", "created_at": "yesterday"}, "invalid_envelope"),
    ],
)
def test_envelope_violations_fail_without_running(
    world: tuple[Settings, Clients, ThreadWorker], tmp_path: Path, tier: str, body: dict[str, Any], code: str
) -> None:
    settings, clients, _ = world
    marker = str(tmp_path / "runs")
    job_id = f"bad-{code}-{tier}-{time.time_ns()}"
    message = {"job_id": job_id, "tenant_id": "academy-1", "payload": {"marker": marker}, **body}
    if "payload" in body:
        message["payload"] = {**body["payload"], "marker": marker}
    send_body(clients, settings.queue_names[tier], json.dumps(message))
    tenant = message["tenant_id"]
    doc = wait_result(clients, settings, job_id, tenant=tenant)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == code and doc["error"]["retryable"] is False
    wait_for(lambda: queue_counts(clients, settings.queue_names[tier]) == (0, 0), 10, "message deleted")
    assert runs(marker) == []


def test_unparseable_body_goes_to_the_dlq_intact(world: tuple[Settings, Clients, ThreadWorker]) -> None:
    settings, clients, _ = world
    queue = settings.queue_names["lite"]
    attributes = {"origin": {"DataType": "String", "StringValue": "producer-7"}}
    for body in ("this is not json {", json.dumps({"no": "job id"}), json.dumps([1, 2])):
        send_body(clients, queue, body, MessageAttributes=attributes)
    dead = wait_for(lambda: drain_queue(clients, queue + settings.dlq_suffix) or None, 15, "dead letters")
    while len(dead) < 3:
        dead += wait_for(lambda: drain_queue(clients, queue + settings.dlq_suffix) or None, 15, "dead letters")
    assert sorted(m["Body"] for m in dead) == sorted(
        ["this is not json {", json.dumps({"no": "job id"}), json.dumps([1, 2])]
    )
    for m in dead:
        assert m["MessageAttributes"]["origin"]["StringValue"] == "producer-7"
    wait_for(lambda: queue_counts(clients, queue) == (0, 0), 10, "source queue empty")


def test_existing_result_is_acknowledged_without_running(
    world: tuple[Settings, Clients, ThreadWorker], tmp_path: Path
) -> None:
    settings, clients, _ = world
    marker = str(tmp_path / "runs")
    job_id = "already-done-" + str(time.time_ns())
    existing = {"job_id": job_id, "status": "done", "result": {"from": "an earlier delivery"}}
    clients.s3.put_object(
        Bucket=settings.results_bucket, Key=result_key(settings, "academy-1", job_id), Body=json.dumps(existing)
    )
    body = {
        "job_id": job_id,
        "job_type": "ocr",
        "tier": "basic",
        "tenant_id": "academy-1",
        "payload": {"do": "echo", "marker": marker},
    }
    send_body(clients, settings.queue_names["basic"], json.dumps(body))
    wait_for(lambda: queue_counts(clients, settings.queue_names["basic"]) == (0, 0), 15, "message acknowledged")
    assert runs(marker) == []
    assert result_of(clients, settings, job_id) == existing


def test_inputs_and_blobs_from_s3(world: tuple[Settings, Clients, ThreadWorker]) -> None:
    settings, clients, _ = world
    data = bytes(range(256)) * 100
    clients.s3.put_object(Bucket=settings.results_bucket, Key="inputs/academy-1/in.bin", Body=data)
    job_id = send_job(clients, settings, "basic", "question_segmentation", do="input", s3_key="inputs/academy-1/in.bin")
    missing = send_job(
        clients, settings, "basic", "question_segmentation", do="input", s3_key="inputs/academy-1/none.bin"
    )
    blob = send_job(clients, settings, "basic", "ocr", do="blob")
    import hashlib

    doc = wait_result(clients, settings, job_id)
    assert doc["result"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert wait_result(clients, settings, missing)["error"]["code"] == "input_not_found"
    ref = wait_result(clients, settings, blob)["result"]
    assert ref["back"] == "blob-bytes" and ref["missing"] is None
    assert ref["ref"]["s3_uri"] == f"s3://{settings.results_bucket}/blobs/{blob}.bin"


def test_expired_presigned_url_is_a_permanent_failure(world: tuple[Settings, Clients, ThreadWorker]) -> None:
    settings, clients, _ = world
    url = (
        "https://example-bucket.s3.amazonaws.com/sheet.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=abc"
    )
    job_id = send_job(clients, settings, "basic", "omr_grading", do="input", download_url=url)
    doc = wait_result(clients, settings, job_id)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "input_url_expired" and doc["error"]["retryable"] is False


def test_heartbeat_is_fresh_while_the_worker_runs(world: tuple[Settings, Clients, ThreadWorker]) -> None:
    settings, _, _ = world
    wait_for(lambda: heartbeat.check(settings)[0], 10, "a fresh heartbeat")
