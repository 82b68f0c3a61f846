"""Engine overhead: jobs/s, SQS and S3 calls per job for no-op jobs, the worker beside a previous-worker-style loop.

Starts a moto server on 127.0.0.1 in a process of its own (nothing leaves the machine), creates the queues and
bucket, warms the job processes with a few jobs (which also times the job type, so prefetch is sized), then feeds
--jobs no-op jobs at a steady load (about 40 waiting) and times the loop until every result document exists. SQS
calls are counted with a botocore event hook on the worker's own session (receives, delete batches, visibility
changes, result notices; a consumer reads the notices as the platform would); S3 calls (the job processes'
idempotency GET and conditional PUT) are counted from the moto server's request log.

The baseline is a loop in the style of the platform's previous worker, run in the same process against the same
server with the same number of threads: one message per receive, a lease-extender thread per message, the
result written to S3 (a plain PUT), a delete per message. It does less than the worker: no idempotency check, no
conditional write, no notice. So a second baseline row ("baseline+") does the worker's work the old way: per
message a receive, the idempotency GET, the conditional PUT, a notice (consumed like the worker's) and a delete.

Wall rates on a shared machine follow the load of others, so every row also gives the CPU milliseconds per job
of each part, which contention does not move: the moto server (which also serves the feeder and the notice
consumer), the loop under test (the worker's threads or the baseline's, in this process) and the job processes;
and the load average when the row was measured. --repeat runs the loops in turn several times and ends with the
medians.

    python bench/bench_noop.py [--jobs 200] [--concurrency 1 2] [--repeat 1] [--no-baseline]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import IO, Any

import boto3
import psutil

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
    global MOTO_PID
    MOTO_PID = server.pid

    def read_log() -> None:
        bench_thread()
        S3_LOG.read(server.stderr)  # type: ignore[arg-type]

    threading.Thread(target=read_log, daemon=True).start()
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
MOTO_PID = 0
BENCH_THREADS: set[int] = set()  # native ids of the bench's own threads: feeder, log reader, notice consumer


def bench_thread() -> None:
    BENCH_THREADS.add(threading.get_native_id())


def cpu_parts() -> dict[str, float]:
    """CPU seconds so far of the moto server, of the loop under test (this process less the bench's own threads)
    and of the job processes (this process's other children)."""
    me = psutil.Process()
    own = sum(t.user_time + t.system_time for t in me.threads() if t.id in BENCH_THREADS)
    jobs = 0.0
    for child in me.children(recursive=True):
        if child.pid != MOTO_PID:
            with contextlib.suppress(psutil.NoSuchProcess):
                jobs += sum(child.cpu_times()[:2])
    moto = sum(psutil.Process(MOTO_PID).cpu_times()[:2])
    return {"moto": moto, "loop": sum(me.cpu_times()[:2]) - own, "job processes": jobs}


def cpu_per_job(before: dict[str, float], jobs: int) -> dict[str, float]:
    after = cpu_parts()
    return {k: round(1000 * (after[k] - before[k]) / jobs, 1) for k in before}


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
    bench_thread()
    while not stop.is_set():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if got:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def run(slots: int, jobs: int, heartbeat_dir: str) -> dict[str, Any]:
    """The worker, `slots` job processes, on no-op jobs."""
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
    cpu = cpu_parts()
    started = time.perf_counter()
    feed(admin.sqs, url, jobs)
    elapsed = time.perf_counter() - started
    measured = dict(calls)
    s3_calls = S3_LOG.count
    cpu_ms = cpu_per_job(cpu, jobs)
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
        "cpu_ms": cpu_ms,
        "load": os.getloadavg()[0],
        "calls": measured,
    }


def baseline(slots: int, jobs: int, _tmp: str = "", same_work: bool = False) -> dict[str, Any]:
    """The previous worker's loop: per message one receive, an extender thread, a result PUT and a delete. With
    `same_work`, the worker's work done that way: the idempotency GET, a conditional PUT and a notice as well."""
    prefix = f"p{uuid.uuid4().hex[:8]}"
    queue, bucket, results = f"{prefix}-basic", f"{prefix}-results", f"{prefix}-notices"
    settings = Settings(results_bucket=bucket, wait_time_s=1)
    admin = make_clients(settings)
    url = ensure_queue(admin.sqs, queue, dlq_name=queue + "-dlq", visibility_timeout_s=60)
    notices = ensure_queue(admin.sqs, results, dlq_name=results + "-dlq", visibility_timeout_s=60)
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
                key = f"results/{job['tenant_id']}/{job['job_id']}.json"
                result = json.dumps({"job_id": job["job_id"], "status": "done", "result": noop(None)})
                if not same_work:
                    s3.put_object(Bucket=bucket, Key=key, Body=result)
                else:
                    try:
                        s3.get_object(Bucket=bucket, Key=key)
                    except s3.exceptions.NoSuchKey:
                        s3.put_object(Bucket=bucket, Key=key, Body=result, IfNoneMatch="*")
                    notice = {"job_id": job["job_id"], "status": "done", "bucket": bucket, "key": key}
                    sqs.send_message(QueueUrl=notices, MessageBody=json.dumps(notice))
                finished.set()
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    stop_notices = threading.Event()
    if same_work:
        drainer = threading.Thread(target=drain_notices, args=(make_clients(settings).sqs, notices, stop_notices))
        drainer.daemon = True
        drainer.start()
    S3_LOG.watch(bucket)
    threads = [threading.Thread(target=consume, daemon=True) for _ in range(slots)]
    for t in threads:
        t.start()
    cpu = cpu_parts()
    started = time.perf_counter()
    feed(admin.sqs, url, jobs)
    elapsed = time.perf_counter() - started
    cpu_ms = cpu_per_job(cpu, jobs)
    done.set()
    stop_notices.set()
    measured = dict(calls)
    for t in threads:
        t.join(10)
    return {
        "loop": "baseline+" if same_work else "baseline",
        "slots": slots,
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "sqs_calls_per_job": round(sum(measured.values()) / jobs, 2),
        "s3_calls_per_job": round(S3_LOG.count / jobs, 2),
        "cpu_ms": cpu_ms,
        "load": os.getloadavg()[0],
        "calls": measured,
    }


def row(r: dict[str, Any]) -> str:
    cpu = r["cpu_ms"]
    return (
        f"{r['loop']:>9} {r['slots']:>5} {r['jobs']:>5} {r['seconds']:>7} {r['jobs_per_s']:>7} "
        f"{r['sqs_calls_per_job']:>8} {r['s3_calls_per_job']:>7} {cpu['moto']:>7} {cpu['loop']:>7} "
        f"{cpu['job processes']:>7} {r['load']:>6.1f}  " + json.dumps(r["calls"], sort_keys=True)
    )


def main() -> int:
    logging.getLogger("ai_worker").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each loop, in turn; medians at the end")
    parser.add_argument("--no-baseline", action="store_true", help="only the worker")
    args = parser.parse_args()
    bench_thread()  # the main thread feeds
    server = start_moto()
    loops: list[Any] = [run] if args.no_baseline else [run, baseline, lambda n, j, t: baseline(n, j, t, same_work=True)]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                f"{'':>23} {'':>7} {'':>7} {'calls per job':>16} {'CPU ms per job':>23} {'load':>6}\n"
                f"{'loop':>9} {'slots':>5} {'jobs':>5} {'seconds':>7} {'jobs/s':>7} {'SQS':>8} {'S3':>7} "
                f"{'moto':>7} {'loop':>7} {'jobproc':>7} {'1 min':>6}  SQS calls by operation"
            )
            for slots in args.concurrency:
                for _ in range(args.repeat):
                    for loop in loops:
                        r = loop(slots, args.jobs, tmp)
                        results.setdefault((r["loop"], slots), []).append(r)
                        print(row(r), flush=True)
            if args.repeat > 1 or not args.no_baseline:
                print("medians:")
                for slots in args.concurrency:
                    medians = {name: median_row(rs) for (name, n), rs in results.items() if n == slots}
                    for r in medians.values():
                        print(row(r))
                    if "baseline" in medians:
                        for name in ("baseline", "baseline+"):
                            speed = medians["worker"]["jobs_per_s"] / medians[name]["jobs_per_s"]
                            calls = medians["worker"]["sqs_calls_per_job"] / medians[name]["sqs_calls_per_job"]
                            print(f"{'ratio':>9} {slots:>5}: worker/{name} jobs/s x{speed:.2f}, SQS calls x{calls:.2f}")
                sys.stdout.flush()
    finally:
        server.terminate()
        server.wait(10)
    return 0


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs of one loop (the calls by operation of the median-speed run)."""

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    by_speed = sorted(rows, key=lambda r: r["jobs_per_s"])
    out = dict(by_speed[len(by_speed) // 2])
    for key in ("seconds", "jobs_per_s", "sqs_calls_per_job", "s3_calls_per_job", "load"):
        out[key] = med([r[key] for r in rows])
    out["cpu_ms"] = {k: med([r["cpu_ms"][k] for r in rows]) for k in rows[0]["cpu_ms"]}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
