"""Test harness for the engine: per-test queues and bucket on the moto server, a worker in a thread or in its own
process, and helpers to send jobs and wait for what the worker did."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ai_worker.aws import Clients, make_clients
from ai_worker.config import InputSettings, Settings
from ai_worker.provisioning import ensure_queue
from ai_worker.results import read_result
from ai_worker.tiers import TIERS
from ai_worker.worker import run_worker

from .fake_handlers import REGISTRY

T = TypeVar("T")
TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = TESTS_DIR.parent


def make_settings(prefix: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with per-test names and timeouts short enough for tests."""
    base = Settings(
        queue_names={t: f"{prefix}-{t}" for t in TIERS},
        results_bucket=f"{prefix}-results",
        results_queue=f"{prefix}-results",
        slots=2,
        job_timeout_s=60,
        job_memory_mb=2048,
        visibility_timeout_s=10,
        wait_time_s=1,
        drain_timeout_s=10,
        retry_base_s=1,
        retry_max_s=30,
        heartbeat_file=str(tmp_path / "heartbeat"),
        log_level="INFO",
        inputs=InputSettings(allow_http=True, allow_private=True, timeout_s=5),
    )
    return dataclasses.replace(base, **overrides)


def create_infra(
    clients: Clients, settings: Settings, *, max_receive_count: int = 5, queue_visibility_s: int = 30
) -> None:
    for name in set(settings.queue_names.values()):
        ensure_queue(
            clients.sqs,
            name,
            dlq_name=name + settings.dlq_suffix,
            visibility_timeout_s=queue_visibility_s,
            max_receive_count=max_receive_count,
        )
    if settings.results_queue:
        ensure_queue(clients.sqs, settings.results_queue, dlq_name=None, visibility_timeout_s=30)
    clients.s3.create_bucket(Bucket=settings.results_bucket)


def send_job(
    clients: Clients, settings: Settings, tier: str, job_type: str = "ocr", tenant: str = "academy-1", **payload: Any
) -> str:
    job_id = uuid.uuid4().hex
    body = {"job_id": job_id, "job_type": job_type, "tier": tier, "tenant_id": tenant, "payload": payload}
    send_body(clients, settings.queue_names[tier], json.dumps(body))
    return job_id


def send_body(clients: Clients, queue: str, body: str, **extra: Any) -> None:
    url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    clients.sqs.send_message(QueueUrl=url, MessageBody=body, **extra)


def wait_for(predicate: Callable[[], T], timeout: float, what: str = "condition", *, max_interval: float = 0.1) -> T:
    """The predicate's first true value, checked every 0.1 s, or with `max_interval` above that every 0.05 s at first
    and 1.5 times longer each time up to `max_interval`: for a condition that stays true once it holds (a result
    written), whose every check costs a request, a long wait then costs a few checks a second instead of ten."""
    deadline = time.monotonic() + timeout
    interval = min(0.05, max_interval) if max_interval > 0.1 else max_interval
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
        interval = min(max_interval, interval * 1.5)


def result_of(clients: Clients, settings: Settings, job_id: str, tenant: str = "academy-1") -> dict[str, Any] | None:
    return read_result(clients.s3, settings, tenant, job_id)


def wait_result(
    clients: Clients, settings: Settings, job_id: str, timeout: float = 30, tenant: str = "academy-1"
) -> dict[str, Any]:
    # A result, once written, stays: checked less often as the wait goes on (each check is an S3 request to moto).
    return wait_for(
        lambda: result_of(clients, settings, job_id, tenant), timeout, f"result of {job_id}", max_interval=0.5
    )


def queue_counts(clients: Clients, queue: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain_queue(clients: Clients, queue: str, wait_s: int = 1) -> list[dict[str, Any]]:
    """Receive (and delete) everything visible on a queue."""
    url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    got: list[dict[str, Any]] = []
    while True:
        response = clients.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        batch = response.get("Messages", [])
        if not batch:
            return got
        got += batch
        for m in batch:
            clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


class ThreadWorker:
    """`run_worker` in a thread of the test process, stopped through its `stop` event."""

    def __init__(
        self, settings: Settings, kind: str = "cpu", registry: dict[str, str] | None = None, **engine: Any
    ) -> None:
        self.stop_event = threading.Event()
        self.exit_code: int | None = None
        self.engine = engine  # broker / sink_factory / clients for run_worker
        self.thread = threading.Thread(
            target=self._run, args=(settings, kind, REGISTRY if registry is None else registry), daemon=True
        )

    def _run(self, settings: Settings, kind: Any, registry: dict[str, str]) -> None:
        self.exit_code = run_worker(settings, kind, registry=registry, stop=self.stop_event, **self.engine)

    def stop(self, timeout: float = 30) -> int | None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.exit_code

    @contextmanager
    def running(self) -> Iterator[ThreadWorker]:
        """Started for the block, stopped after it unless the test stopped it already."""
        self.thread.start()
        try:
            yield self
        finally:
            if self.thread.is_alive():
                self.stop()


def thread_worker(
    settings: Settings, kind: str = "cpu", registry: dict[str, str] | None = None
) -> AbstractContextManager[ThreadWorker]:
    return ThreadWorker(settings, kind, registry).running()


def start_process_worker(settings: Settings, tmp_path: Path, name: str = "worker") -> subprocess.Popen[str]:
    """The worker in its own process (its own session, so a test can kill the whole group like a container)."""
    settings_file = tmp_path / f"{name}.settings.pickle"
    settings_file.write_bytes(pickle.dumps(settings))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(REPO_DIR)])}
    with open(tmp_path / f"{name}.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "worker.process_worker", str(settings_file)],
            env=env,
            cwd=str(TESTS_DIR),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )


def connect(settings: Settings) -> Clients:
    return make_clients(settings)


# --- the same engine on the in-memory broker (no HTTP, no moto): most engine tests run here -----------------


class MemoryWorld:
    """A `MemoryBroker` with the layout's queues and DLQs, a file result sink, and a worker on them."""

    def __init__(self, settings: Settings, *, max_receive_count: int = 5, queue_visibility_s: int = 30) -> None:
        from ai_worker.broker.memory import MemoryBroker

        self.settings = settings
        self.broker = MemoryBroker()
        for name in set(settings.queue_names.values()):
            self.broker.create_queue(
                name,
                visibility_timeout_s=queue_visibility_s,
                dlq=name + settings.dlq_suffix,
                max_receive_count=max_receive_count,
            )
        if settings.results_queue:
            self.broker.create_queue(settings.results_queue)

    def send_body(self, queue: str, body: str, attributes: dict[str, Any] | None = None) -> None:
        self.broker.send(queue, body, attributes)

    def send_job(self, tier: str, job_type: str = "ocr", tenant: str = "academy-1", **payload: Any) -> str:
        job_id = uuid.uuid4().hex
        body = {"job_id": job_id, "job_type": job_type, "tier": tier, "tenant_id": tenant, "payload": payload}
        self.send_body(self.settings.queue_names[tier], json.dumps(body))
        return job_id

    def result(self, job_id: str, tenant: str = "academy-1") -> dict[str, Any] | None:
        from .file_sink import read

        return read(self.settings, job_id, tenant)

    def wait_result(self, job_id: str, timeout: float = 30, tenant: str = "academy-1") -> dict[str, Any]:
        return wait_for(lambda: self.result(job_id, tenant), timeout, f"result of {job_id}")

    def notices(self) -> list[dict[str, Any]]:
        assert self.settings.results_queue
        return [json.loads(b) for b in self.broker.purge(self.settings.results_queue)]

    def dlq(self, tier: str) -> str:
        return self.settings.queue_names[tier] + self.settings.dlq_suffix

    @contextmanager
    def worker(self, kind: str = "cpu", registry: dict[str, str] | None = None) -> Iterator[ThreadWorker]:
        from .file_sink import file_sink

        worker = ThreadWorker(self.settings, kind, registry, broker=self.broker, sink_factory=file_sink)
        with worker.running():
            yield worker


def memory_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """`make_settings` for the memory world: the results "bucket" is a folder."""
    return make_settings("m", tmp_path, results_bucket=str(tmp_path / "results"), **overrides)
