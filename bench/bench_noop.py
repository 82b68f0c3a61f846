"""Engine overhead: jobs/s, SQS and S3 calls per job for no-op jobs, the worker beside a previous-worker-style loop.

Starts a moto server on 127.0.0.1 in a process of its own (nothing leaves the machine), creates the queues and
bucket, warms the job processes with a few jobs (which also times the job type, so prefetch is sized), then feeds
--jobs no-op jobs at a steady load (about 40 waiting) and times the loop until every result document exists. SQS
calls are counted with a botocore event hook on the worker's own session (receives, delete batches, visibility
changes, result notices; a consumer reads the notices as the platform would); S3 calls (the job processes'
idempotency GET and conditional PUT) are counted from the moto server's request log.

The baseline is a loop in the style of the platform's previous worker, run in the same process against the same
server with the same number of threads: one message per receive, a lease-extender thread per message, the
result written to S3, a delete per message.

    python bench/bench_noop.py [--jobs 200] [--concurrency 1 2] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import IO, Any

import boto3

from ai_worker.aws import make_clients
from ai_worker.config import Settings
from ai_worker.provisioning import ensure_queue
from ai_worker.tiers import TIERS
from ai_worker.worker import run_worker


def noop(ctx: Any) -> dict[str, Any]:
    """The benchmark's handler: does nothing, so what is measured is the engine."""
    return {}


def start_moto() -> subprocess.Popen[str]:
    """moto's server in a process of its own, as SQS and S3 are services apart from the worker: the worker's
    process does not share its interpreter (and GIL) with the endpoint it calls."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    threading.Thread(target=S3_LOG.read, args=(server.stderr,), daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
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


class S3Requests:
    """Counts S3 requests on one bucket from the moto server's request log (werkzeug, on its stderr), listings
    excluded."""

    def __init__(self) -> None:
        self.bucket = ""
        self.count = 0  # S3 requests on the bucket's objects
        self.results = 0  # result documents written (a PUT under results/ that succeeded)

    def watch(self, bucket: str) -> None:
        self.bucket, self.count, self.results = bucket, 0, 0

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            if self.bucket and f" /{self.bucket}/" in line and "list-type" not in line:
                self.count += 1
                if f'"PUT /{self.bucket}/results/' in line and '" 200 ' in line:
                    self.results += 1


S3_LOG = S3Requests()


STEADY_DEPTH = 40  # jobs waiting in the queue at steady load: a few receives' worth, far from an empty queue


def feed(sqs: Any, url: str, n: int, depth: int = STEADY_DEPTH) -> None:
    """Send n no-op jobs, ten per call, keeping about `depth` of them unfinished: a steady load, not a backlog
    (a deep queue measures moto's receive, which slows with depth, instead of the worker). Progress is read
    from the server's log, so feeding adds no calls but the sends."""
    job = {"job_type": "ocr", "tier": "basic", "tenant_id": "bench", "payload": {}}
    start = S3_LOG.results
    for sent in range(0, n, 10):
        while sent - (S3_LOG.results - start) >= depth:
            time.sleep(0.002)
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"job_id": uuid.uuid4().hex, **job})}
            for i in range(min(10, n - sent))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    while S3_LOG.results - start < n:
        time.sleep(0.002)


WARM_JOBS = 5


def drain_notices(sqs: Any, url: str, stop: threading.Event) -> None:
    """The producer's side of the results queue: notices are read and deleted as they come, as the platform does.
    Left to pile up, they would slow moto (which walks a queue's every message on each call), not the worker."""
    while not stop.is_set():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if got:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


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
    notices = admin.sqs.get_queue_url(QueueName=settings.results_queue or "")["QueueUrl"]
    drainer = threading.Thread(target=drain_notices, args=(make_clients(settings).sqs, notices, stop), daemon=True)
    drainer.start()
    url = admin.sqs.get_queue_url(QueueName=settings.queue_names["basic"])["QueueUrl"]
    S3_LOG.watch(settings.results_bucket)
    feed(admin.sqs, url, WARM_JOBS)  # warm-up: job processes started, handler imported, job type timed
    time.sleep(1.0)  # the warm-up's deletes and notices are flushed before counting starts
    S3_LOG.watch(settings.results_bucket)
    calls.clear()
    started = time.perf_counter()
    feed(admin.sqs, url, jobs)
    elapsed = time.perf_counter() - started
    measured = dict(calls)
    s3_calls = S3_LOG.count
    stop.set()
    worker.join(30)
    total = sum(measured.values())
    return {
        "loop": "worker",
        "slots": slots,
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "sqs_calls_per_job": round(total / jobs, 2),
        "s3_calls_per_job": round(s3_calls / jobs, 2),
        "calls": measured,
    }


def baseline(slots: int, jobs: int) -> dict[str, Any]:
    """The previous worker's loop: per message one receive, an extender thread, a result PUT and a delete."""
    prefix = f"p{uuid.uuid4().hex[:8]}"
    queue, bucket = f"{prefix}-basic", f"{prefix}-results"
    settings = Settings(results_bucket=bucket, wait_time_s=1)
    admin = make_clients(settings)
    url = ensure_queue(admin.sqs, queue, dlq_name=queue + "-dlq", visibility_timeout_s=60)
    admin.s3.create_bucket(Bucket=bucket)
    session = boto3.session.Session()
    calls: Counter[str] = Counter()
    session.events.register("before-call.sqs", lambda model, **_: calls.update([model.name]))
    sqs, s3 = session.client("sqs"), session.client("s3")
    done = threading.Event()

    def extend(receipt: str, finished: threading.Event) -> None:
        while not finished.wait(20):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=60)

    def consume() -> None:
        while not done.is_set():
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1, VisibilityTimeout=60)
            for m in got.get("Messages", []):
                finished = threading.Event()
                threading.Thread(target=extend, args=(m["ReceiptHandle"], finished), daemon=True).start()
                job = json.loads(m["Body"])
                result = json.dumps({"job_id": job["job_id"], "status": "done", "result": noop(None)})
                s3.put_object(Bucket=bucket, Key=f"results/{job['tenant_id']}/{job['job_id']}.json", Body=result)
                finished.set()
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    S3_LOG.watch(bucket)
    threads = [threading.Thread(target=consume, daemon=True) for _ in range(slots)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    feed(admin.sqs, url, jobs)
    elapsed = time.perf_counter() - started
    done.set()
    measured = dict(calls)
    for t in threads:
        t.join(10)
    return {
        "loop": "baseline",
        "slots": slots,
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "sqs_calls_per_job": round(sum(measured.values()) / jobs, 2),
        "s3_calls_per_job": round(S3_LOG.count / jobs, 2),
        "calls": measured,
    }


def main() -> int:
    logging.getLogger("ai_worker").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-baseline", action="store_true", help="only the worker")
    args = parser.parse_args()
    server = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                f"{'loop':>8} {'slots':>5} {'jobs':>5} {'seconds':>8} {'jobs/s':>7} {'SQS calls/job':>14} "
                f"{'S3 calls/job':>13}  SQS calls by operation"
            )
            for slots in args.concurrency:
                rows = [run(slots, args.jobs, tmp)]
                if not args.no_baseline:
                    rows.append(baseline(slots, args.jobs))
                for r in rows:
                    print(
                        f"{r['loop']:>8} {r['slots']:>5} {r['jobs']:>5} {r['seconds']:>8} {r['jobs_per_s']:>7} "
                        f"{r['sqs_calls_per_job']:>14} {r['s3_calls_per_job']:>13}  "
                        + json.dumps(r["calls"], sort_keys=True)
                    )
                if len(rows) == 2:
                    speed = rows[0]["jobs_per_s"] / rows[1]["jobs_per_s"]
                    calls = rows[0]["sqs_calls_per_job"] / rows[1]["sqs_calls_per_job"]
                    print(f"{'ratio':>8} {slots:>5}: worker/baseline jobs/s x{speed:.1f}, SQS calls/job x{calls:.2f}")
                sys.stdout.flush()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
