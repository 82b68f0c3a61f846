"""The in-memory broker keeps SQS's semantics: visibility, receive counts, redrive to the DLQ after the max
receive count, batches of at most 10, long polls that wait and wake up, stale receipt handles refused."""

from __future__ import annotations

import threading
import time

import pytest

from ai_worker.broker import MAX_BATCH, BrokerError
from ai_worker.broker.memory import MemoryBroker


def broker(max_receive_count: int = 3) -> MemoryBroker:
    b = MemoryBroker()
    b.create_queue("q", dlq="q-dlq", max_receive_count=max_receive_count)
    return b


def test_visibility_and_receive_count() -> None:
    b = broker()
    b.send("q", "one", {"a": {"DataType": "String", "StringValue": "x"}})
    (first,) = b.receive("q", max_messages=10, wait_time_s=0, visibility_s=1)
    assert (first.body, first.receive_count, first.attributes["a"]["StringValue"]) == ("one", 1, "x")
    assert b.receive("q", max_messages=10, wait_time_s=0, visibility_s=1) == []  # invisible while leased
    assert b.counts("q") == (0, 1)
    assert b.change_visibility([(first, 0)]) == []  # released: visible at once
    (second,) = b.receive("q", max_messages=10, wait_time_s=0, visibility_s=30)
    assert second.receive_count == 2 and second.receipt_handle != first.receipt_handle
    assert b.delete([first]) == [first]  # a stale handle is refused
    assert b.change_visibility([(first, 10)]) == [first]
    assert b.delete([second]) == [] and b.counts("q") == (0, 0)


def test_redrive_after_max_receive_count_keeps_body_and_attributes() -> None:
    b = broker(max_receive_count=2)
    b.send("q", "poison", {"k": {"DataType": "String", "StringValue": "v"}})
    for count in (1, 2):
        (m,) = b.receive("q", max_messages=1, wait_time_s=0, visibility_s=30)
        assert m.receive_count == count
        b.change_visibility([(m, 0)])
    assert b.receive("q", max_messages=1, wait_time_s=0, visibility_s=30) == []  # the third receive redrives it
    (dead,) = b.receive("q-dlq", max_messages=1, wait_time_s=0, visibility_s=30)
    assert dead.body == "poison" and dead.attributes["k"]["StringValue"] == "v"


def test_batches_of_at_most_ten_and_lease_expiry() -> None:
    b = broker()
    for i in range(25):
        b.send("q", str(i))
    got = b.receive("q", max_messages=50, wait_time_s=0, visibility_s=1)
    assert len(got) == MAX_BATCH and [m.body for m in got] == [str(i) for i in range(10)]  # oldest first
    assert len(b.receive("q", max_messages=50, wait_time_s=0, visibility_s=1)) == 10
    assert len(b.receive("q", max_messages=50, wait_time_s=0, visibility_s=1)) == 5
    again = b.receive("q", max_messages=10, wait_time_s=3, visibility_s=30)  # the leases run out after 1 s
    assert len(again) == 10 and all(m.receive_count == 2 for m in again)


def test_long_poll_waits_and_wakes_on_send() -> None:
    b = broker()
    started = time.monotonic()
    assert b.receive("q", max_messages=1, wait_time_s=1, visibility_s=30) == []
    assert time.monotonic() - started >= 0.9
    threading.Timer(0.2, b.send, args=("q", "late")).start()
    started = time.monotonic()
    (m,) = b.receive("q", max_messages=1, wait_time_s=10, visibility_s=30)
    assert m.body == "late" and time.monotonic() - started < 5


def test_missing_queues_and_injected_send_failures() -> None:
    b = broker()
    with pytest.raises(BrokerError, match="nope"):
        b.check(["q", "nope"])
    b.check(["q", "q-dlq"])
    b.fail_sends.add("q")
    assert b.send_many("q", ["a", "b"]) == [0, 1]
    assert b.send_many("missing", ["a"]) == [0]
    with pytest.raises(BrokerError):
        b.send("q", "x")
    b.fail_sends.clear()
    assert b.send_many("q", ["a", "b"]) == [] and b.bodies("q") == ["a", "b"]
