"""Scale-in protection against a stand-in ECS agent, the heartbeat check, JSON logs and EMF metric records."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ai_worker import metrics
from ai_worker.envelope import Envelope
from ai_worker.logs import JsonFormatter, job_logger
from ai_worker.protection import RENEW_AFTER_S, ScaleInProtection
from ai_worker.worker import heartbeat

from .harness import make_settings


class FakeAgent:
    """The ECS agent's task-protection endpoint: records PUT bodies; answers a failure when told to."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = False
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                assert self.path == "/task-protection/v1/state"
                agent.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                answer = {"failure": {"Reason": "TASK_NOT_FOUND"}} if agent.fail else {"protection": {}}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    thread = threading.Thread(target=fake.httpd.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.httpd.shutdown()


def test_protection_calls_the_agent_only_on_transitions(agent: FakeAgent) -> None:
    now = [0.0]
    protection = ScaleInProtection(agent.uri, clock=lambda: now[0])
    for busy in (False, True, True, True, False, False, True):
        protection.update(busy)
    assert agent.calls == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 60},
        {"ProtectionEnabled": False},
        {"ProtectionEnabled": True, "ExpiresInMinutes": 60},
    ]
    now[0] = RENEW_AFTER_S + 1  # a long busy period: renewed before the protection expires
    protection.update(True)
    assert len(agent.calls) == 4 and agent.calls[-1]["ProtectionEnabled"] is True


def test_protection_failure_is_retried_on_the_next_turn(agent: FakeAgent) -> None:
    protection = ScaleInProtection(agent.uri)
    agent.fail = True
    protection.update(True)
    assert protection.protected is False
    agent.fail = False
    protection.update(True)
    assert protection.protected is True and len(agent.calls) == 2


def test_protection_is_a_no_op_outside_ecs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    protection = ScaleInProtection()
    protection.update(True)
    assert not protection.enabled and protection.protected is False


def test_unreachable_agent_does_not_raise() -> None:
    protection = ScaleInProtection("http://127.0.0.1:9")
    protection.update(True)
    assert protection.protected is False


def test_heartbeat_check(tmp_path: Path) -> None:
    settings = make_settings("h", tmp_path, heartbeat_max_age_s=30)
    ok, reason = heartbeat.check(settings)
    assert not ok and "no heartbeat" in reason
    heartbeat.touch(settings.heartbeat_file)
    assert heartbeat.check(settings)[0]
    old = time.time() - 60
    os.utime(settings.heartbeat_file, (old, old))
    ok, reason = heartbeat.check(settings)
    assert not ok and "60s old" in reason


def test_heartbeat_check_sees_a_stalled_poller(tmp_path: Path) -> None:
    settings = make_settings("h", tmp_path, heartbeat_max_age_s=30)
    now = time.time()
    heartbeat.touch(settings.heartbeat_file, {"receive_ok_at": now - 10, "receive_stalled_after_s": 50})
    assert heartbeat.check(settings)[0]
    heartbeat.touch(settings.heartbeat_file, {"receive_ok_at": now - 70, "receive_stalled_after_s": 50})
    ok, reason = heartbeat.check(settings)
    assert not ok and "no receive from SQS completed for 70s" in reason


def _format(record_call: Any) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ai_worker.test-json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        record_call(logger)
    finally:
        logger.removeHandler(handler)
    line: dict[str, Any] = json.loads(stream.getvalue().strip())
    return line


def test_json_log_lines_carry_the_job_fields() -> None:
    env = Envelope(job_id="j-1", job_type="ocr", tier="lite", tenant_id="academy-9")
    line = _format(lambda logger: job_logger(logger.name, env).info("hello %s", "world", extra={"run_s": 1.5}))
    assert line["msg"] == "hello world" and line["level"] == "INFO"
    assert (line["job_id"], line["job_type"], line["tenant_id"], line["tier"]) == ("j-1", "ocr", "academy-9", "lite")
    assert line["run_s"] == 1.5


def test_emf_record_is_a_valid_embedded_metric_document(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=metrics.log.name):
        metrics.record_outcome("AiWorker", "done", job_type="ocr", tier="lite", run_s=1.23456, queued_s=4.0)
    captured = [r for r in caplog.records if r.name == metrics.log.name]
    line = json.loads(JsonFormatter().format(captured[0]))
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AiWorker"
    assert directive["Dimensions"] == [["JobType", "Tier"]]
    names = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert names == {"JobsDone": "Count", "RunTime": "Seconds", "QueueWait": "Seconds"}
    for name in [*names, "JobType", "Tier"]:
        assert name in line  # every metric and dimension is a top-level member, as EMF requires
    assert (line["JobsDone"], line["RunTime"], line["JobType"]) == (1, 1.235, "ocr")
    assert isinstance(line["_aws"]["Timestamp"], int)
