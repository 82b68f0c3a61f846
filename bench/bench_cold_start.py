"""Cold start: from starting a fresh worker process to the result document of its first lite job.

Starts a moto server on 127.0.0.1, creates the queues and bucket, enqueues one lite job, then starts a worker
(`run_worker`, cpu kind, one slot, in a new Python process) and polls S3 every 10 ms until the job's result
exists. The job's handler is a no-op, so what is measured is the worker's own start: interpreter and imports,
the job process's spawn and imports, the first receive, the idempotency check and the result write. It also
reports whether torch was imported by the worker process (the lite path must not), and the CPU seconds the
worker and its job process had used when the result appeared: on a busy machine the wall time stretches with
contention while the CPU time does not (most of the start is the two processes' imports, which run one after the
other, so on an idle machine the wall time should come close to the CPU time).

    python bench/bench_cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_noop import start_moto

from ai_worker.aws import make_clients
from ai_worker.config import Settings
from ai_worker.provisioning import ensure_queue
from ai_worker.tiers import TIERS

CHILD = """
import json, pickle, sys
sys.path.insert(0, {bench!r})
from ai_worker.worker import run_worker
settings = pickle.loads(open({settings!r}, "rb").read())
code = run_worker(settings, "cpu", registry={{"ocr": "bench_noop:noop"}})
print(json.dumps({{"torch_imported": "torch" in sys.modules}}), flush=True)
raise SystemExit(code)
"""


def once(tmp: str) -> dict[str, Any]:
    prefix = f"c{uuid.uuid4().hex[:8]}"
    settings = Settings(
        queue_names={t: f"{prefix}-{t}" for t in TIERS},
        results_bucket=f"{prefix}-results",
        results_queue=f"{prefix}-results",
        slots=1,
        wait_time_s=1,
        heartbeat_file=os.path.join(tmp, f"{prefix}.heartbeat"),
        log_level="WARNING",
    )
    clients = make_clients(settings)
    for name in {*settings.queue_names.values(), settings.results_queue or ""}:
        ensure_queue(clients.sqs, name, dlq_name=name + "-dlq", visibility_timeout_s=60)
    clients.s3.create_bucket(Bucket=settings.results_bucket)
    job_id = uuid.uuid4().hex
    body = {"job_id": job_id, "job_type": "ocr", "tier": "lite", "tenant_id": "bench", "payload": {}}
    url = clients.sqs.get_queue_url(QueueName=settings.queue_names["lite"])["QueueUrl"]
    clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    settings_file = os.path.join(tmp, f"{prefix}.pickle")
    Path(settings_file).write_bytes(pickle.dumps(settings))
    code = CHILD.format(bench=str(Path(__file__).resolve().parent), settings=settings_file)
    key = f"{settings.results_prefix}bench/{job_id}.json"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while True:
        try:
            clients.s3.head_object(Bucket=settings.results_bucket, Key=key)
            break
        except clients.s3.exceptions.ClientError:
            time.sleep(0.01)
    elapsed = time.perf_counter() - started
    tree = psutil.Process(proc.pid)
    cpu = sum(sum(p.cpu_times()[:2]) for p in [tree, *tree.children(recursive=True)])
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return {"seconds": elapsed, "cpu_s": cpu, **json.loads(out.strip().splitlines()[-1])}


def main() -> int:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [once(tmp) for _ in range(args.runs)]
    finally:
        server.terminate()
        server.wait(10)
    times = [r["seconds"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    print(f"process start -> first lite job done: {', '.join(f'{t:.2f}' for t in times)} s wall")
    print(
        f"CPU of the worker and its job process by then: {', '.join(f'{t:.2f}' for t in cpu)} s "
        "(contention stretches the wall time, not the CPU time)"
    )
    torch = any(r["torch_imported"] for r in runs)
    print(f"median {statistics.median(times):.2f} s (target <= 1.5 s); torch imported: {torch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
