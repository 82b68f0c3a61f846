"""Engine overhead: jobs/s and SQS API calls per job for no-op jobs, at concurrency 1 and N.

Starts a moto server on 127.0.0.1 (nothing leaves the machine), creates the queues and bucket, warms the job
processes with one job, then enqueues --jobs no-op jobs and times the worker until every result document exists.
SQS calls are counted with a botocore event hook on the worker's own session (receive, delete batches,
visibility changes, result notices); the job processes' S3 calls (a HEAD and a conditional PUT per job) are
constant and not counted here.

    python bench/bench_noop.py [--jobs 100] [--concurrency 1 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

import boto3

from ai_worker.broker.sqs import Clients, ensure_queue, make_clients
from ai_worker.config import Settings
from ai_worker.tiers import TIERS
from ai_worker.worker import run_worker


def noop(ctx: Any) -> dict[str, Any]:
    """The benchmark's handler: does nothing, so what is measured is the engine."""
    return {}


def start_moto() -> Any:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return server


def count_results(clients: Clients, settings: Settings) -> int:
    pages = clients.s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.results_bucket, Prefix=settings.results_prefix
    )
    return sum(page.get("KeyCount", 0) for page in pages)


def send_jobs(clients: Clients, settings: Settings, n: int) -> None:
    url = clients.sqs.get_queue_url(QueueName=settings.queue_names["basic"])["QueueUrl"]
    job = {"job_type": "ocr", "tier": "basic", "tenant_id": "bench", "payload": {}}
    bodies = [json.dumps({"job_id": uuid.uuid4().hex, **job}) for _ in range(n)]
    for start in range(0, n, 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def run(slots: int, jobs: int, heartbeat_dir: str) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = Settings(
        queue_names={t: f"{prefix}-{t}" for t in TIERS},
        results_bucket=f"{prefix}-results",
        results_queue=f"{prefix}-results",
        slots=slots,
        wait_time_s=1,
        heartbeat_file=os.path.join(heartbeat_dir, f"{prefix}.heartbeat"),
        log_level="WARNING",
    )
    admin = make_clients(settings)
    for name in (settings.queue_names["basic"], settings.queue_names["lite"], settings.results_queue or ""):
        ensure_queue(admin.sqs, name, dlq_name=name + settings.dlq_suffix, visibility_timeout_s=60)
    admin.s3.create_bucket(Bucket=settings.results_bucket)

    session = boto3.session.Session()
    calls: Counter[str] = Counter()
    session.events.register("before-call.sqs", lambda model, **_: calls.update([model.name]))
    stop = threading.Event()
    registry = dict.fromkeys(("ocr", "omr_grading"), f"{noop.__module__}:noop")
    worker = threading.Thread(
        target=run_worker,
        args=(settings, "cpu"),
        kwargs={"registry": registry, "stop": stop, "clients": make_clients(settings, session)},
        daemon=True,
    )
    worker.start()
    send_jobs(admin, settings, 1)  # warm-up: job processes started, handler imported
    while count_results(admin, settings) < 1:
        time.sleep(0.05)
    send_jobs(admin, settings, jobs)
    calls.clear()
    started = time.perf_counter()
    while count_results(admin, settings) < jobs + 1:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    measured = dict(calls)
    stop.set()
    worker.join(30)
    total = sum(measured.values())
    return {
        "slots": slots,
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "sqs_calls_per_job": round(total / jobs, 2),
        "calls": measured,
    }


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, os.cpu_count() or 2])
    args = parser.parse_args()
    server = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{'slots':>5} {'jobs':>5} {'seconds':>8} {'jobs/s':>7} {'SQS calls/job':>14}  calls by operation")
            for slots in args.concurrency:
                r = run(slots, args.jobs, tmp)
                print(
                    f"{r['slots']:>5} {r['jobs']:>5} {r['seconds']:>8} {r['jobs_per_s']:>7} "
                    f"{r['sqs_calls_per_job']:>14}  {json.dumps(r['calls'], sort_keys=True)}"
                )
                sys.stdout.flush()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
