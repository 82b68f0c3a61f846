"""Poison bodies: nothing a message contains may take the worker loop down.

Each body below is `dead` on its first receive (moved to the DLQ with body and attributes intact, deleted from
its queue, no result written anywhere), valid jobs received alongside them run once and are done, the worker never
exits, and the DLQ tools list them without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
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

from ai_worker import admin
from ai_worker.broker import Message
from ai_worker.envelope import MAX_BODY_BYTES, UnparseableMessage, parse_envelope

ROOT = Path(__file__).resolve().parents[2]


def poison_bodies() -> dict[str, str]:
    """Bodies no result can be addressed for, by the shape that makes them so."""
    deep = 1000
    return {
        "array nested 1000 deep": "[" * deep + "]" * deep,
        "payload nested 1000 deep": '{"job_id":"deep-1","job_type":"ocr","payload":' + "[" * deep + "]" * deep + "}",
        "object nested 40 deep": '{"job_id":"deep-2","payload":' + '{"a":' * 40 + "1" + "}" * 40 + "}",
        "integer of 5000 digits": '{"job_id":' + "9" * 5000 + "}",
        "float overflowing to inf": '{"job_id":"inf-1","job_type":"ocr","payload":{"x":1e999}}',
        "NaN": '{"job_id":"nan-1","job_type":"ocr","payload":{"x":NaN}}',
        "-Infinity": '{"job_id":"ninf-1","job_type":"ocr","payload":{"x":-Infinity}}',
        "duplicate job_id": '{"job_id":"dup-a","job_id":"dup-b","job_type":"ocr"}',
        "unpaired surrogate": '{"job_id":"sur-1","job_type":"ocr","payload":{"t":"\\ud800"}}',
        "not JSON": "this is not json {",
        "truncated JSON": '{"job_id":"cut-1","job_type":"oc',
        "JSON array": "[1, 2, 3]",
        "JSON null": "null",
        "JSON string": '"job"',
        "no job_id": '{"job_type":"ocr"}',
        "job_id true": '{"job_id":true}',
        "job_id object": '{"job_id":{"a":1}}',
        "job_id empty": '{"job_id":""}',
        "job_id with a slash": '{"job_id":"a/../../tenant-b/x","job_type":"ocr","tier":"basic"}',
        "job_id dot-dot": '{"job_id":"..","job_type":"ocr","tier":"basic"}',
        "job_id too long": json.dumps({"job_id": "j" * 129, "job_type": "ocr"}),
        "job_id with NUL": '{"job_id":"a\\u0000b","job_type":"ocr"}',
        "tenant_id path": '{"job_id":"ten-1","job_type":"ocr","tier":"basic","tenant_id":"../tenant-b"}',
        "payload tenant path": '{"job_id":"ten-2","job_type":"ocr","tier":"basic","payload":{"tenant_id":"a/b"}}',
        "body over the contract's size": json.dumps({"job_id": "big-1", "payload": {"x": "y" * (MAX_BODY_BYTES + 10)}}),
    }


@pytest.mark.parametrize(("shape", "body"), list(poison_bodies().items()), ids=list(poison_bodies()))
def test_parse_refuses_with_unparseable_message_only(shape: str, body: str) -> None:
    with pytest.raises(UnparseableMessage):
        parse_envelope(body)
    # ... and the DLQ listing shows it without raising either
    row = admin.describe_message(Message("q-dlq", "m", "r", body, 1, 0.0, 0.0))
    assert row["message_id"] == "m"
    json.dumps(row)  # printable as --json


def test_ids_that_meet_the_rules_parse() -> None:
    for job_id in ("a", "0f3c", "job:2026-01-01.x_y-z", "j" * 128):
        assert parse_envelope(json.dumps({"job_id": job_id, "tenant_id": "academy-1.kr_x"})).job_id == job_id
    assert parse_envelope('{"job_id": 42}').job_id == "42"
    assert parse_envelope('{"job_id": "a"}').tenant == "unknown"


@pytest.mark.slow
def test_poison_messages_are_dead_on_first_receive_and_nothing_else_is_affected(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=2)
    clients = connect(settings)
    create_infra(clients, settings)
    attributes = {"origin": {"DataType": "String", "StringValue": "producer-7"}}
    bodies = [b for b in poison_bodies().values() if len(b.encode()) <= MAX_BODY_BYTES]  # SQS/moto's own cap
    marker = str(tmp_path / "runs")
    queue = settings.queue_names["basic"]
    with thread_worker(settings) as worker:
        good = [send_job(clients, settings, "basic", "omr_grading", do="echo", marker=marker)]
        for body in bodies:
            send_body(clients, queue, body, MessageAttributes=attributes)
        good.append(send_job(clients, settings, "basic", "omr_grading", do="echo", marker=marker))
        docs = [wait_result(clients, settings, job_id, timeout=30) for job_id in good]
        dead: list[dict] = []
        wait_for(
            lambda: dead.extend(drain_queue(clients, queue + settings.dlq_suffix)) or len(dead) >= len(bodies),
            30,
            "every poison body in the DLQ",
        )
        wait_for(lambda: queue_counts(clients, queue) == (0, 0), 15, "the source queue empty")
        assert worker.thread.is_alive()
        assert worker.stop() == 0
    assert sorted(m["Body"] for m in dead) == sorted(bodies)  # exactly the poison bodies, intact
    # moved by the worker on their first receive (SQS's redrive would need 5 receives, 10 s apart)
    assert len([r for r in caplog.records if getattr(r, "outcome", None) == "dead"]) == len(bodies)
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "loop failed" in r.getMessage()]
    for message in dead:
        assert message["MessageAttributes"]["origin"]["StringValue"] == "producer-7"
    assert [d["status"] for d in docs] == ["done", "done"] and [d["attempts"] for d in docs] == [1, 1]
    assert sorted(r["job_id"] for r in runs(marker)) == sorted(good)
    listing = clients.s3.list_objects_v2(Bucket=settings.results_bucket)
    assert sorted(o["Key"] for o in listing["Contents"]) == sorted(
        f"{settings.results_prefix}academy-1/{job_id}.json" for job_id in good
    )
    print(
        f"{len(bodies)} poison bodies: {len(dead)} in the DLQ intact, {len(good)} valid jobs done once, "
        f"{len(listing['Contents'])} documents, worker exit 0"
    )


@pytest.mark.slow
def test_dlq_list_shows_poison_messages(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path)
    clients = connect(settings)
    create_infra(clients, settings)
    dlq = settings.dlq_name("lite")
    deep = "[" * 1000 + "]" * 1000
    for body in (deep, '{"job_id":' + "9" * 5000 + "}", '{"job_id":"ok-1","job_type":"ocr","tier":"lite"}'):
        send_body(clients, dlq, body)
    env = {
        "AI_WORKER_BACKEND": "aws",
        **{f"AI_WORKER_QUEUE_{t.upper()}": name for t, name in settings.queue_names.items()},
        "AI_WORKER_RESULTS_BUCKET": settings.results_bucket,
        "AI_WORKER_RESULTS_QUEUE": settings.results_queue or "none",
    }
    import os

    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "ai_worker", "dlq", "list", "--tier", "lite", *extra],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    listed = json.loads(done.stdout)
    assert len(listed["messages"]) == 3
    assert {m.get("job_id") for m in listed["messages"]} == {None, "ok-1"}
    assert any(m.get("body_preview", "").startswith("[[[[") for m in listed["messages"])
