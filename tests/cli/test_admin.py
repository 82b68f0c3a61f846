"""Queue administration and submit against moto's server with the real boto3 client."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ai_worker import admin
from ai_worker.aws import Clients
from ai_worker.config import Settings
from ai_worker.envelope import Envelope, parse_envelope
from ai_worker.results import result_key


def _attributes(clients: Clients, name: str) -> dict[str, str]:
    url = clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs: dict[str, str] = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attrs


def _receive_all(clients: Clients, name: str) -> list[dict[str, object]]:
    url = clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    out: list[dict[str, object]] = []
    while True:
        batch = clients.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return out
        out.extend(batch)


def test_queues_create_is_idempotent_with_redrive_and_retention(clients: Clients, settings: Settings) -> None:
    first = admin.create_queues(clients.sqs, settings)
    # A hand-made change is converged back on the next run instead of failing with QueueNameExists.
    basic_url = clients.sqs.get_queue_url(QueueName=settings.queue_names["basic"])["QueueUrl"]
    clients.sqs.set_queue_attributes(QueueUrl=basic_url, Attributes={"VisibilityTimeout": "7"})
    second = admin.create_queues(clients.sqs, settings)
    assert [r["url"] for r in first] == [r["url"] for r in second]
    assert len(first) == 4  # three tier queues + the results queue

    for tier in ("lite", "basic", "premium"):
        attrs = _attributes(clients, settings.queue_names[tier])
        dlq_attrs = _attributes(clients, settings.dlq_name(tier))
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_attrs["QueueArn"]
        assert int(redrive["maxReceiveCount"]) == 5
        assert attrs["MessageRetentionPeriod"] == dlq_attrs["MessageRetentionPeriod"] == str(14 * 24 * 3600)
        assert attrs["VisibilityTimeout"] == str(admin.VISIBILITY_BY_TIER[tier])
    assert _attributes(clients, settings.results_queue or "")["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_shared_queue_layout_creates_one_queue_sized_for_its_longest_tier(
    clients: Clients, settings: Settings, unique_prefix: str
) -> None:
    shared = dataclasses.replace(settings, queue_names=dict.fromkeys(settings.queue_names, f"{unique_prefix}-all"))
    rows = admin.create_queues(clients.sqs, shared)
    assert [(r["queue"], r["tiers"]) for r in rows[:-1]] == [(f"{unique_prefix}-all", ["lite", "basic", "premium"])]
    assert _attributes(clients, f"{unique_prefix}-all")["VisibilityTimeout"] == str(
        max(admin.VISIBILITY_BY_TIER.values())
    )


def test_submit_uploads_the_file_and_enqueues_on_the_tier_queue(
    clients: Clients, settings: Settings, tmp_path: Path
) -> None:
    admin.create_queues(clients.sqs, settings)
    admin.create_buckets(clients.s3, settings)
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"\x89PNG fake bytes for the upload")

    job = admin.submit(
        clients.sqs,
        clients.s3,
        settings,
        job_type="omr_grading",
        tier="basic",
        payload={"question_count": 20},
        file=sheet,
        tenant_id="academy-1",
    )

    messages = _receive_all(clients, settings.queue_names["basic"])
    assert len(messages) == 1
    sent = parse_envelope(str(messages[0]["Body"]))
    assert (sent.job_id, sent.job_type, sent.tier, sent.tenant_id) == (job.job_id, "omr_grading", "basic", "academy-1")
    assert sent.payload["question_count"] == 20
    key = sent.payload["s3_key"]
    assert key.endswith("/sheet.png") and job.job_id in key
    assert clients.s3.get_object(Bucket=settings.results_bucket, Key=key)["Body"].read() == sheet.read_bytes()
    assert sent.created_at_datetime() is not None
    assert _receive_all(clients, settings.queue_names["lite"]) == []
    assert _receive_all(clients, settings.queue_names["premium"]) == []


@pytest.mark.parametrize(
    ("job_type", "tier", "payload"),
    [
        ("embedding", "basic", {}),  # premium only
        ("omr_grading", "lite", {}),  # lite runs ocr only
        ("ocr", "basic", {"tenant_id": "someone-else"}),  # tenant mismatch
    ],
)
def test_submit_refuses_what_the_contract_refuses_before_sending(
    clients: Clients, settings: Settings, tmp_path: Path, job_type: str, tier: str, payload: dict[str, str]
) -> None:
    admin.create_queues(clients.sqs, settings)
    admin.create_buckets(clients.s3, settings)
    file = tmp_path / "input.bin"
    file.write_bytes(b"x")
    with pytest.raises(admin.AdminError):
        admin.submit(
            clients.sqs,
            clients.s3,
            settings,
            job_type=job_type,
            tier=tier,
            payload=payload,
            file=file,
            tenant_id="academy-1",
        )
    for name in settings.queue_names.values():
        assert _receive_all(clients, name) == []
    assert clients.s3.list_objects_v2(Bucket=settings.results_bucket).get("KeyCount", 0) == 0


def test_dlq_list_peeks_and_redrive_moves_messages_back_intact(clients: Clients, settings: Settings) -> None:
    admin.create_queues(clients.sqs, settings)
    dlq_url = clients.sqs.get_queue_url(QueueName=settings.dlq_name("basic"))["QueueUrl"]
    bodies = [json.dumps({"job_id": f"j{i}", "job_type": "ocr", "tier": "basic"}) for i in range(12)]
    bodies.append("not json at all \u00e9")  # a dead body must travel back byte for byte too
    for i, body in enumerate(bodies):
        clients.sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": f"test-{i}"}},
        )

    listed = admin.list_dlq(clients.sqs, settings, "basic", limit=50)
    assert sorted(m.body for m in listed) == sorted(bodies)
    rows = [admin.describe_message(m) for m in listed]
    assert {r.get("job_id") for r in rows} >= {"j0", "j11"}
    assert any(r.get("body_preview", "").startswith("not json") for r in rows)
    # Peeking leaves every message available: a second listing sees them all again.
    assert len(admin.list_dlq(clients.sqs, settings, "basic", limit=50)) == len(bodies)

    moved = admin.redrive_dlq(clients.sqs, settings, "basic", max_messages=5)
    assert moved == {settings.dlq_name("basic"): 5}
    moved = admin.redrive_dlq(clients.sqs, settings, "basic")
    assert moved == {settings.dlq_name("basic"): len(bodies) - 5}

    back = _receive_all(clients, settings.queue_names["basic"])
    assert sorted(str(m["Body"]) for m in back) == sorted(bodies)
    origins = {str(m["Body"]): m["MessageAttributes"]["origin"]["StringValue"] for m in back}  # type: ignore[index]
    assert origins == {body: f"test-{i}" for i, body in enumerate(bodies)}
    assert _receive_all(clients, settings.dlq_name("basic")) == []
    assert admin.dlq_depths(clients.sqs, settings, "basic") == {settings.dlq_name("basic"): 0}


def test_wait_for_results_returns_documents_and_none_for_missing(clients: Clients, settings: Settings) -> None:
    admin.create_buckets(clients.s3, settings)
    done = Envelope(job_id="done-1", job_type="ocr", tier="lite", tenant_id="academy-1")
    missing = Envelope(job_id="missing-1", job_type="ocr", tier="lite", tenant_id="academy-1")
    document = {"job_id": "done-1", "status": "done", "result": {"text": "x"}}
    clients.s3.put_object(
        Bucket=settings.results_bucket, Key=result_key(settings, "academy-1", "done-1"), Body=json.dumps(document)
    )
    found = admin.wait_for_results(clients.s3, settings, [done, missing], timeout_s=0.6, poll_s=0.2)
    assert found == {"done-1": document, "missing-1": None}


def test_dlq_list_shows_a_redelivered_message_once(
    clients: Clients, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peek slower than its hide time (here: none) gets the same messages again: each is still listed once."""
    from ai_worker import dlq

    monkeypatch.setattr(dlq, "PEEK_HIDE_S", 0)
    admin.create_queues(clients.sqs, settings)
    dlq_url = clients.sqs.get_queue_url(QueueName=settings.dlq_name("basic"))["QueueUrl"]
    bodies = [f"dead {i}" for i in range(3)]
    for body in bodies:
        clients.sqs.send_message(QueueUrl=dlq_url, MessageBody=body)

    listed = admin.list_dlq(clients.sqs, settings, "basic", limit=50)
    assert sorted(m.body for m in listed) == bodies
    assert len({m.message_id for m in listed}) == len(listed)
