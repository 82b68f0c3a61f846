"""Engine overhead: jobs/s, SQS and S3 calls per job for no-op jobs, the worker beside a previous-worker-style loop.

Starts a moto server on 127.0.0.1 in a process of its own (nothing leaves the machine; `serve_moto`: moto's own app
and request handler, with werkzeug's per-request log off as in the local backend), creates the queues and bucket,
then feeds no-op jobs at a steady load (about 40 unfinished) and times the loop over --jobs results. SQS calls are
counted with a botocore event hook on the loop's own session (receives, delete batches, visibility changes, result
notices; a consumer reads the notices as the platform would); S3 calls (the job processes' idempotency HEAD and
conditional PUT) and the server's CPU by operation are written by the server, one short line per request.

Warm-up and window: jobs are fed without a pause; every loop first runs WARM_JOBS_PER_SLOT (20) jobs per slot,
then the measured window opens (counters reset) and covers the next --jobs results while jobs keep coming, so it
holds neither a start from idle nor the drain at the end. Before, the window began after a 1 s pause with an empty
queue: the idle worker long-polls its two queues in turn with the bench's 1 s wait, so the first jobs could wait
up to a second while it polled `lite`; and a warm-up of five jobs could all go to the job process that finished
importing first, leaving the other to make its S3 client and first connections inside the window. Twenty per
slot last longer than the 0.5 s flush delay, so the first delete and notice batches (and the results queue's URL
lookup) also fall before the window, and the job type is timed (the prefetch buffer is sized from it). Each row
gives the rate over the first and the second half of its window: a run slow only in its first half still has a
start-up cost in it; one slow in both halves met the machine's load.

The baseline is a loop in the style of the platform's previous worker, run in the same process against the same
server with the same number of threads: one message per receive, a lease-extender thread per message, the
result written to S3 (a plain PUT), a delete per message. It does less than the worker: no idempotency check, no
conditional write, no notice. So a second baseline row ("baseline+") does the worker's work the old way: per
message a receive, the idempotency HEAD, the conditional PUT, a notice (consumed like the worker's) and a delete.

Wall rates on a shared machine follow the load of others, so every row also gives the CPU milliseconds per job
of each part: the moto server (which also serves the feeder and the notice consumer), the loop under test (the
worker's threads or the baseline's, in this process) and the job processes; the moto server's by operation on
the line below (the threads that handled its requests; the rest is its accepting thread); and the load average
when the row was measured. CPU per job moves much less with the load than wall time, but not nil: on two cores at
a load average of 15 it reads 10-20 % above an idle machine's. --repeat runs the loops in turn several times and
ends with the medians.

A `worker-r` row runs the same worker with AI_WORKER_RESULT_CHECK=redelivered: no idempotency check on a
message's first receive (one S3 request less per job; what that gives up: docs/engine.md, "Idempotency").

    python bench/bench_noop.py [--jobs 200] [--concurrency 1 2] [--repeat 1] [--no-baseline]
        [--no-result-check-rows]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import IO, Any, Literal

import boto3
import psutil
from botocore.exceptions import ClientError

from ai_worker.aws import make_clients
from ai_worker.config import Settings
from ai_worker.provisioning import ensure_queue
from ai_worker.tiers import TIERS
from ai_worker.worker import run_worker


def noop(ctx: Any) -> dict[str, Any]:
    """The benchmark's handler: does nothing, so what is measured is the engine."""
    return {}


def start_moto() -> subprocess.Popen[bytes]:
    """moto's server in a process of its own, as SQS and S3 are services apart from the worker: the worker's
    process does not share its interpreter (and GIL) with the endpoint it calls. It is served as `python -m
    moto.server` serves it (moto's app and request handler on werkzeug's threaded server), with werkzeug's request
    log off as in the local backend (`serve_moto`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-moto", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    global MOTO_PID
    MOTO_PID = server.pid

    def read_log() -> None:
        bench_thread()
        S3_LOG.read(server.stdout)  # type: ignore[arg-type]

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


def serve_moto(port: int) -> None:
    """The moto server's process: what `python -m moto.server` runs (moto's app and request handler on werkzeug's
    threaded server), with werkzeug's request log off, as in the local backend, and instead one short line per
    request on stdout for `MotoRequests`: "OPERATION STATUS CPU_US PATH", an SQS operation named with its queue's
    role (`ReceiveMessage@basic`: the worker's receives; `@results`/`@notices`: notices; the feeder sends to
    `@basic` too). werkzeug answers each request on a
    connection and thread of its own (it sends `Connection: close`), so the CPU time of the handling thread,
    read when it ends, is what the request cost the server (all but the accepting thread)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    from ai_worker.local_backend import silence_request_log

    silence_request_log()
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto.server sets it
    app = DomainDispatcherApplication(create_backend_app)
    seen = threading.local()

    def noted(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")  # SQS's JSON protocol: "AmazonSQS.ReceiveMessage"
        if target:  # named with its queue's role, the last part of the queue's name: ReceiveMessage@basic
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            queue = str(json.loads(body or b"{}").get("QueueUrl", "")).rpartition("-")[2]
            op = target.rpartition(".")[2] + (f"@{queue}" if queue else "")
        else:  # S3, path-style: /bucket or /bucket/key
            op = f"S3:{environ['REQUEST_METHOD']}" + ("Object" if path.count("/") >= 2 else "Bucket")

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.request = (op, status.split()[0], path)
            return start_response(status, headers, exc_info)

        return app(environ, start)

    class Handler(MotoRequestHandler):
        def handle(self) -> None:
            seen.request = None
            started = time.thread_time()
            super().handle()
            if seen.request is not None:
                op, status, path = seen.request
                cpu_us = round(1e6 * (time.thread_time() - started))
                os.write(1, f"{op} {status} {cpu_us} {path}\n".encode())  # one write: lines never interleave

    run_simple("127.0.0.1", port, noted, threaded=True, request_handler=Handler)


class MotoRequests:
    """What the bench's moto server did (`serve_moto`'s lines), counted since `watch`: S3 object requests on one
    bucket, result documents written there (waking whoever waits for them) and the server's CPU by operation."""

    def __init__(self) -> None:
        self.bucket = ""
        self.count = 0  # S3 requests on the bucket's objects
        self.results = 0  # result documents written (a PUT under results/ that succeeded)
        self.cpu_us: Counter[str] = Counter()  # handling threads' CPU by operation, every caller's
        self.written_at: list[float] = []  # monotonic time of each result document, as read here
        self.changed = threading.Condition()

    def watch(self, bucket: str) -> None:
        with self.changed:
            self.bucket, self.count, self.results, self.cpu_us, self.written_at = bucket, 0, 0, Counter(), []

    def read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            parts = raw.decode(errors="replace").rstrip("\n").split(" ", 3)
            if len(parts) != 4 or not parts[2].isdigit():
                continue  # something moto printed
            op, status, cpu_us, path = parts
            with self.changed:
                self.cpu_us[op] += int(cpu_us)
                if self.bucket and path.startswith(f"/{self.bucket}/"):
                    self.count += 1
                    if op == "S3:PUTObject" and status == "200" and path.startswith(f"/{self.bucket}/results/"):
                        self.results += 1
                        self.written_at.append(time.monotonic())
                        self.changed.notify_all()

    def snapshot(self) -> dict[str, Any]:
        with self.changed:
            return {"at": time.monotonic(), "results": self.results, "count": self.count, "cpu_us": +self.cpu_us}

    def wait(self, done: Callable[[int], bool], timeout_s: float = 120.0) -> None:
        """Until `done(results written)`; woken by each result, not polled."""
        with self.changed:
            if not self.changed.wait_for(lambda: done(self.results), timeout_s):
                raise RuntimeError(f"no progress for {timeout_s:.0f} s ({self.results} results)")


S3_LOG = MotoRequests()
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


# Jobs per slot run before the measured window opens (see the module's docstring on warm-up).
WARM_JOBS_PER_SLOT = 20


def measure(sqs: Any, url: str, warm: int, jobs: int, calls: Counter[str], depth: int = STEADY_DEPTH) -> dict[str, Any]:
    """Feed no-op jobs without a pause, ten per call, keeping about `depth` of them unfinished: a steady load, not
    a backlog (moto's receive slows with the queue's depth) and never an empty queue. The measured window opens
    when `warm` results exist and closes when `jobs` more do; jobs keep coming until it closes, so it holds
    neither the start (a loop long-polling another queue when the first jobs arrive) nor the drain at the end.
    Progress is read from the server's lines, so feeding adds no calls but the sends. `calls` (the loop's SQS
    calls) is cleared when the window opens; what is returned is counted within it."""
    job = {"job_type": "ocr", "tier": "basic", "tenant_id": "bench", "payload": {}}
    base = S3_LOG.snapshot()
    opened: dict[str, Any] = {}

    def due(results: int, sent: int) -> bool:
        if not opened:
            return results - base["results"] >= warm or sent - (results - base["results"]) < depth
        return results - opened["results"] >= jobs or sent - (results - base["results"]) < depth

    sent = 0
    while True:
        S3_LOG.wait(lambda results, sent=sent: due(results, sent))  # type: ignore[misc]
        if not opened and S3_LOG.results - base["results"] >= warm:
            calls.clear()
            opened.update(S3_LOG.snapshot(), cpu=cpu_parts())
        if opened and S3_LOG.results - opened["results"] >= jobs:
            break
        if sent - (S3_LOG.results - base["results"]) < depth:
            entries = [
                {"Id": str(i), "MessageBody": json.dumps({"job_id": uuid.uuid4().hex, **job})} for i in range(10)
            ]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
            sent += 10
    closed = S3_LOG.snapshot()
    measured = dict(calls)
    cpu_ms = cpu_per_job(opened["cpu"], jobs)
    elapsed = closed["at"] - opened["at"]
    results = S3_LOG.written_at[opened["results"] : opened["results"] + jobs]
    half = jobs // 2
    return {
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "halves": (
            round(half / max(results[half - 1] - opened["at"], 1e-9), 1),
            round((jobs - half) / max(results[-1] - results[half - 1], 1e-9), 1),
        ),
        "sqs_calls_per_job": round(sum(measured.values()) / jobs, 2),
        "s3_calls_per_job": round((closed["count"] - opened["count"]) / jobs, 2),
        "cpu_ms": cpu_ms,
        "moto_ops": {op: round(us / 1000 / jobs, 2) for op, us in (closed["cpu_us"] - opened["cpu_us"]).most_common()},
        "load": os.getloadavg()[0],
        "calls": measured,
    }


def drain_notices(sqs: Any, url: str, stop: threading.Event) -> None:
    """The producer's side of the results queue: notices are read and deleted as they come, as the platform does.
    Left to pile up, they would slow moto (which walks a queue's every message on each call), not the worker."""
    bench_thread()
    while not stop.is_set():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if got:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def run(
    slots: int, jobs: int, heartbeat_dir: str, result_check: Literal["always", "redelivered"] = "always"
) -> dict[str, Any]:
    """The worker, `slots` job processes, on no-op jobs; with `result_check` "redelivered" (row `worker-r`), the
    result is looked for only from a message's second receive on (docs/engine.md, "Idempotency")."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = Settings(
        queue_names={t: f"{prefix}-{t}" for t in TIERS},
        results_bucket=f"{prefix}-results",
        results_queue=f"{prefix}-results",
        slots=slots,
        wait_time_s=1,
        heartbeat_file=os.path.join(heartbeat_dir, f"{prefix}.heartbeat"),
        log_level="WARNING",
        result_check=result_check,
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
    figures = measure(admin.sqs, url, WARM_JOBS_PER_SLOT * slots, jobs, calls)
    stop.set()
    worker.join(30)
    return {"loop": "worker" if result_check == "always" else "worker-r", "slots": slots, **figures}


def baseline(slots: int, jobs: int, _tmp: str = "", same_work: bool = False) -> dict[str, Any]:
    """The previous worker's loop: per message one receive, an extender thread, a result PUT and a delete. With
    `same_work`, the worker's work done that way: the idempotency HEAD, a conditional PUT and a notice as well."""
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
                        s3.head_object(Bucket=bucket, Key=key)
                    except ClientError:  # 404: no result yet
                        s3.put_object(Bucket=bucket, Key=key, Body=result, IfNoneMatch="*", Metadata={"status": "done"})
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
    figures = measure(admin.sqs, url, WARM_JOBS_PER_SLOT * slots, jobs, calls)
    done.set()
    stop_notices.set()
    for t in threads:
        t.join(10)
    return {"loop": "baseline+" if same_work else "baseline", "slots": slots, **figures}


def row(r: dict[str, Any]) -> str:
    cpu = r["cpu_ms"]
    return (
        f"{r['loop']:>9} {r['slots']:>5} {r['jobs']:>5} {r['seconds']:>7} {r['jobs_per_s']:>7} "
        f"{r['halves'][0]:>6}/{r['halves'][1]:<6}"
        f"{r['sqs_calls_per_job']:>8} {r['s3_calls_per_job']:>7} {cpu['moto']:>7} {cpu['loop']:>7} "
        f"{cpu['job processes']:>7} {r['load']:>6.1f}  " + json.dumps(r["calls"], sort_keys=True)
    )


def ops_row(r: dict[str, Any]) -> str:
    """The moto server's CPU ms per job by operation (its request threads; the rest is its accepting thread)."""
    ops = r["moto_ops"]
    listed = " ".join(f"{op} {ms}" for op, ms in ops.items() if ms >= 0.05)
    return f"{'':>9} moto by operation, ms/job (sum {sum(ops.values()):.1f}): {listed}"


def main() -> int:
    logging.getLogger("ai_worker").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each loop, in turn; medians at the end")
    parser.add_argument("--no-baseline", action="store_true", help="only the worker")
    parser.add_argument(
        "--no-result-check-rows",
        dest="result_check_rows",
        action="store_false",
        help="without the worker-r rows (AI_WORKER_RESULT_CHECK=redelivered)",
    )
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server's process
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0
    bench_thread()  # the main thread feeds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped like Ctrl-C: see below
    server = start_moto()
    loops: list[Any] = [run]
    if args.result_check_rows:
        loops.append(lambda n, j, t: run(n, j, t, result_check="redelivered"))
    if not args.no_baseline:
        loops += [baseline, lambda n, j, t: baseline(n, j, t, same_work=True)]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                f"{'':>23} {'':>7} {'':>7} {'jobs/s by':>13} {'calls per job':>16} {'CPU ms per job':>23} "
                f"{'load':>6}\n{'loop':>9} {'slots':>5} {'jobs':>5} {'seconds':>7} {'jobs/s':>7} {'half: 1st/2nd':>13} "
                f"{'SQS':>8} {'S3':>7} "
                f"{'moto':>7} {'loop':>7} {'jobproc':>7} {'1 min':>6}  SQS calls by operation"
            )
            for slots in args.concurrency:
                for _ in range(args.repeat):
                    for loop in loops:
                        r = loop(slots, args.jobs, tmp)
                        results.setdefault((r["loop"], slots), []).append(r)
                        print(row(r), flush=True)
                        print(ops_row(r), flush=True)
            if args.repeat > 1 or not args.no_baseline:
                print("medians:")
                for slots in args.concurrency:
                    medians = {name: median_row(rs) for (name, n), rs in results.items() if n == slots}
                    for r in medians.values():
                        print(row(r))
                        print(ops_row(r))
                    for worker in ("worker", "worker-r"):
                        for name in ("baseline", "baseline+"):
                            if worker not in medians or name not in medians:
                                continue
                            speed = medians[worker]["jobs_per_s"] / medians[name]["jobs_per_s"]
                            calls = medians[worker]["sqs_calls_per_job"] / medians[name]["sqs_calls_per_job"]
                            ratio = f"{worker}/{name} jobs/s x{speed:.2f}, SQS calls x{calls:.2f}"
                            print(f"{'ratio':>9} {slots:>5}: {ratio}")
                sys.stdout.flush()
    except (KeyboardInterrupt, SystemExit):
        # Stopped mid-run: the moto server goes, and this process exits at once. An orderly exit would wait for
        # the worker's job processes (multiprocessing joins them at exit, and they ignore SIGTERM), which are
        # still serving; they exit by themselves when the pipe to this process closes.
        server.terminate()
        server.wait(10)
        sys.stdout.flush()
        os._exit(143)
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
    out["halves"] = (med([r["halves"][0] for r in rows]), med([r["halves"][1] for r in rows]))
    out["cpu_ms"] = {k: med([r["cpu_ms"][k] for r in rows]) for k in rows[0]["cpu_ms"]}
    ops = sorted({op for r in rows for op in r["moto_ops"]}, key=lambda op: -out["moto_ops"].get(op, 0))
    out["moto_ops"] = {op: med([r["moto_ops"].get(op, 0.0) for r in rows]) for op in ops}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
