"""Tenant isolation and expiry: an `s3_key` must lie under the job's own `inputs/<tenant>/` (or a configured shared
prefix), path-like ids never reach an S3 key, and a job received after its `expires_at` is acknowledged with an
`expired` failure instead of running."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from worker.fake_handlers import runs
from worker.harness import (
    connect,
    create_infra,
    drain_queue,
    make_settings,
    queue_counts,
    send_body,
    send_job,
    thread_worker,
    wait_for,
    wait_result,
)

from ai_worker.config import Settings
from ai_worker.envelope import Envelope
from ai_worker.errors import PermanentError
from ai_worker.inputs import check_input_key

pytestmark = pytest.mark.slow


def test_input_keys_are_confined_to_the_tenant(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    base = make_settings(unique_prefix, tmp_path)
    settings = dataclasses.replace(base, inputs=dataclasses.replace(base.inputs, shared_prefixes=("shared/samples/",)))
    clients = connect(settings)
    create_infra(clients, settings)
    for key in ("inputs/tenant-a/in.bin", "inputs/tenant-b/secret.bin", "shared/samples/s.bin"):
        clients.s3.put_object(Bucket=settings.results_bucket, Key=key, Body=key.encode())
    marker = str(tmp_path / "runs")
    cases = {
        "inputs/tenant-a/in.bin": "done",
        "shared/samples/s.bin": "done",
        "inputs/tenant-b/secret.bin": "input_key_refused",  # another tenant's input
        "inputs/tenant-a/../tenant-b/secret.bin": "input_key_refused",
        "inputs/tenant-a//x": "input_key_refused",
        "inputs/tenant-ab/x": "input_key_refused",  # a prefix of the name is not the tenant's folder
        "shared/samplesx/s.bin": "input_key_refused",
        "results/tenant-b/j.json": "input_key_refused",
    }
    with thread_worker(settings):
        ids = {
            key: send_job(clients, settings, "basic", "ocr", tenant="tenant-a", do="input", s3_key=key, marker=marker)
            for key in cases
        }
        docs = {key: wait_result(clients, settings, job_id, tenant="tenant-a") for key, job_id in ids.items()}
    for key, expected in cases.items():
        doc = docs[key]
        got = doc["status"] if doc["status"] == "done" else doc["error"]["code"]
        assert got == expected, (key, doc)
    assert docs["inputs/tenant-a/in.bin"]["result"]["bytes"] == len(b"inputs/tenant-a/in.bin")
    assert sorted(r["job_id"] for r in runs(marker)) == sorted(ids[k] for k, v in cases.items() if v == "done")


def test_check_input_key_rules() -> None:
    inputs = Settings().inputs
    ok = Envelope(job_id="j", tenant_id="t1", payload={"s3_key": "inputs/t1/a/b.png"})
    check_input_key(ok, inputs)
    check_input_key(Envelope(job_id="j", tenant_id="t1", payload={}), inputs)  # no key, nothing to check
    for key in ("inputs/t2/a.png", "/inputs/t1/a.png", "inputs/t1/./a.png", "inputs/t1/", 7, ""):
        with pytest.raises(PermanentError) as refused:
            check_input_key(Envelope(job_id="j", tenant_id="t1", payload={"s3_key": key}), inputs)
        assert refused.value.code == "input_key_refused", key


def test_path_like_ids_write_nothing_and_expiry_is_honoured(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(unique_prefix, tmp_path)
    clients = connect(settings)
    create_infra(clients, settings)
    marker = str(tmp_path / "runs")
    queue = settings.queue_names["basic"]
    now = datetime.now(UTC)
    path_like = [
        {"job_id": "x", "tenant_id": "../tenant-b"},
        {"job_id": "../tenant-b/evil", "tenant_id": "tenant-a"},
        {"job_id": "a/b", "tenant_id": "tenant-a"},
    ]
    with thread_worker(settings):
        for body in path_like:
            send_body(clients, queue, json.dumps({**body, "job_type": "ocr", "payload": {"marker": marker}}))
        past = send_job(clients, settings, "basic", "ocr", marker=marker, do="echo")
        expiring = {
            "late": (now - timedelta(minutes=5)).isoformat(),
            "in-time": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            "bad-date": "tomorrow",
        }
        ids = {}
        for name, expires_at in expiring.items():
            ids[name] = f"exp-{name}-{unique_prefix}"
            body = {"job_id": ids[name], "job_type": "ocr", "tier": "basic", "tenant_id": "academy-1"}
            send_body(clients, queue, json.dumps({**body, "expires_at": expires_at, "payload": {"marker": marker}}))
        docs = {name: wait_result(clients, settings, job_id) for name, job_id in ids.items()}
        wait_result(clients, settings, past)
        dead = wait_for(lambda: drain_queue(clients, queue + settings.dlq_suffix) or None, 20, "the path-like ids")
        while len(dead) < len(path_like):
            dead += wait_for(lambda: drain_queue(clients, queue + settings.dlq_suffix) or None, 20, "the rest")
        wait_for(lambda: queue_counts(clients, queue) == (0, 0), 15, "the queue empty")
    assert sorted(json.loads(m["Body"])["job_id"] for m in dead) == sorted(b["job_id"] for b in path_like)
    keys = sorted(o["Key"] for o in clients.s3.list_objects_v2(Bucket=settings.results_bucket)["Contents"])
    assert keys == sorted(f"results/academy-1/{job_id}.json" for job_id in [past, *ids.values()])
    assert docs["late"]["status"] == "failed" and docs["late"]["error"]["code"] == "expired"
    assert docs["in-time"]["status"] == "done"
    assert docs["bad-date"]["error"]["code"] == "invalid_envelope"
    ran = {r["job_id"] for r in runs(marker)}
    assert ran == {past, ids["in-time"]}  # neither the expired nor the refused ones ran
