"""The SQS backend: queue creation with redrive, batched settle calls reporting refusals, attribute round trip,
and the worker's start-up refusal when its queues do not exist."""

from __future__ import annotations

import json
from pathlib import Path

from ai_worker.broker.sqs import SqsBroker
from ai_worker.provisioning import ensure_queue
from ai_worker.worker import run_worker

from .harness import connect, make_settings


def test_ensure_queue_is_idempotent_and_converges(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    sqs = connect(make_settings(unique_prefix, tmp_path)).sqs
    name = f"{unique_prefix}-q"
    url = ensure_queue(sqs, name, dlq_name=name + "-dlq", visibility_timeout_s=30, max_receive_count=5)
    again = ensure_queue(sqs, name, dlq_name=name + "-dlq", visibility_timeout_s=90, max_receive_count=3)
    assert again == url
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "90"
    assert attrs["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 3 and redrive["deadLetterTargetArn"].endswith(f"{name}-dlq")


def test_batched_settles_and_attribute_round_trip(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    sqs = connect(make_settings(unique_prefix, tmp_path)).sqs
    name, other = f"{unique_prefix}-a", f"{unique_prefix}-b"
    for q in (name, other):
        ensure_queue(sqs, q, dlq_name=None, visibility_timeout_s=30)
    broker = SqsBroker(sqs)
    attributes = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    for i in range(12):
        broker.send(name, json.dumps({"i": i}), attributes)
    received = []
    while len(received) < 12:
        received += broker.receive(name, max_messages=10, wait_time_s=1, visibility_s=30)
    assert all(m.receive_count == 1 and m.sent_at > 0 for m in received)
    assert received[0].attributes["trace"]["StringValue"] == "t-1"
    broker.send(other, received[0].body, received[0].attributes)  # what the DLQ move does
    forwarded = broker.receive(other, max_messages=1, wait_time_s=1, visibility_s=30)
    assert forwarded[0].body == received[0].body and forwarded[0].attributes["trace"]["StringValue"] == "t-1"

    assert broker.change_visibility([(m, 0) for m in received[:2]]) == []
    assert broker.delete(received[2:]) == []  # 10 messages: one batch call
    back = []
    for _ in range(5):
        back += broker.receive(name, max_messages=10, wait_time_s=1, visibility_s=30)
        if len(back) >= 2:
            break
    assert sorted(m.body for m in back) == sorted(m.body for m in received[:2])
    assert all(m.receive_count == 2 for m in back)


def test_worker_refuses_to_start_without_its_queues(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path)
    assert run_worker(settings, "cpu", install_signal_handlers=False) == 1
