"""`ai-worker demo`: a sample job of every type this build can run, end to end, on a private local backend.

Guarantees:
- Never touches AWS: the demo always starts its own embedded backend on a free port of 127.0.0.1, whatever the
  environment says; with AI_WORKER_BACKEND=aws (the production images) it refuses to run.
- Honest: every input is generated here with a known truth; a job type whose handler is not in this build, or
  whose external service is not configured (ocr: Google credentials; problem_generation: OPENAI_API_KEY), is
  listed as skipped with the reason, never faked.
- Real path: jobs are submitted with `ai_worker.admin.submit` (inputs uploaded to S3) and run by real workers
  (`run_worker`) in background threads: a cpu worker for lite/basic and a premium worker, on CUDA when present
  and otherwise started with explicit CPU fallback and labelled so in the table.
- The workers are drained and stopped before `run_demo` returns; exit code 0 when every job that ran is done.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_worker.config import Settings
from ai_worker.jobs import JOB_TYPES, SPECS, lowest_tier
from ai_worker.jobs.spec import JobSpec, Sample, Unavailable
from ai_worker.tiers import WORKER_TIERS, Tier, WorkerKind

DEMO_TENANT = "demo"
DEMO_WAIT_S = 2  # short long polls, so the demo's workers drain within seconds once the results are in
DEMO_SLOTS = 2  # job processes per worker: each is a spawned interpreter, two keep start-up light on a laptop
JOIN_MARGIN_S = 10.0  # beyond the drain deadline and one long poll, for the workers' own shutdown
SUMMARY_WIDTH = 70


@dataclass(frozen=True)
class DemoJob:
    """The sample of one job type, on the lowest tier that runs it: lite/basic samples exercise the cpu worker."""

    job_type: str
    tier: Tier
    sample: Sample


@dataclass
class Row:
    job_type: str
    tier: str = "-"
    worker: str = "-"
    status: str = "skipped"
    run_s: float | None = None
    summary: str = ""
    job_id: str | None = None


def _handler_present(spec: JobSpec) -> bool:
    module = spec.handler.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing too
        return False


def build_samples(settings: Settings, job_types: Sequence[str]) -> tuple[list[DemoJob], list[Row]]:
    """The samples this build and environment can run, and a `skipped` row (with its reason) for the others."""
    demo_jobs: list[DemoJob] = []
    skipped: list[Row] = []
    for job_type in job_types:
        spec = SPECS[job_type]
        if spec.sample is None:
            skipped.append(Row(job_type, summary="no demo sample is declared"))
        elif not _handler_present(spec):
            skipped.append(Row(job_type, summary=f"handler {spec.handler} is not in this build"))
        else:
            try:
                demo_jobs.append(DemoJob(job_type, lowest_tier(job_type), spec.sample(settings)))
            except Unavailable as exc:
                skipped.append(Row(job_type, summary=str(exc)))
    return demo_jobs, skipped


# --- running ----------------------------------------------------------------------------------------------


def _brief(result: dict[str, Any]) -> str:
    """A generic one-line view: scalars as key=value, collections by size."""
    parts = []
    for key, value in result.items():
        if isinstance(value, list | dict):
            parts.append(f"{key}[{len(value)}]")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def _summary(sample: Sample, document: dict[str, Any]) -> str:
    if document.get("status") != "done":
        error = document.get("error") or {}
        return f"{error.get('code')}: {error.get('message')}"
    result = document.get("result") or {}
    try:
        text = sample.summarize(result) if sample.summarize else _brief(result)
    except (KeyError, TypeError, ValueError, IndexError):
        text = _brief(result)  # a result shaped differently than the sample expects is still shown
    if sample.truth:
        text += f" (truth: {sample.truth})"
    return text if len(text) <= SUMMARY_WIDTH * 2 else text[: SUMMARY_WIDTH * 2 - 1] + "…"


@dataclass
class Workers:
    labels: dict[WorkerKind, str]  # how the table names each kind of worker
    threads: list[threading.Thread]

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)


@contextmanager
def _workers(settings: Settings, kinds: list[WorkerKind], scratch: Path) -> Iterator[Workers]:
    """Run one worker thread per kind until the block ends, then drain them."""
    from ai_worker.doctor import cuda_device
    from ai_worker.worker import run_worker

    device = cuda_device()
    workers = Workers({"cpu": "cpu", "gpu": f"gpu ({device})" if device else "gpu (CPU fallback)"}, [])
    stop = threading.Event()
    for kind in kinds:
        worker_settings = dataclasses.replace(
            settings,
            heartbeat_file=str(scratch / f"heartbeat-{kind}"),
            allow_gpu_fallback=kind == "gpu" and device is None,
        )
        thread = threading.Thread(
            target=run_worker,
            args=(worker_settings, kind),
            kwargs={"stop": stop, "install_signal_handlers": False},
            name=f"demo-worker-{kind}",
            daemon=True,
        )
        thread.start()
        workers.threads.append(thread)
    try:
        yield workers
    finally:
        stop.set()
        for thread in workers.threads:
            thread.join(settings.drain_timeout_s + settings.wait_time_s + JOIN_MARGIN_S)


def _demo_settings(settings: Settings, demo_jobs: list[DemoJob]) -> Settings:
    demo = dataclasses.replace(
        settings,
        backend="local",
        local_port=0,  # a private backend: never shares state with a worker the user is running
        wait_time_s=DEMO_WAIT_S,
        slots=settings.slots or DEMO_SLOTS,
        # Worker logs would bury the table; AI_WORKER_LOG_LEVEL still wins when set.
        log_level=settings.log_level if os.environ.get("AI_WORKER_LOG_LEVEL") else "WARNING",
    )
    for demo_job in demo_jobs:
        if demo_job.sample.settings is not None:
            demo = demo_job.sample.settings(demo)
    return demo


def run_samples(settings: Settings, demo_jobs: list[DemoJob], timeout_s: float) -> list[Row]:
    """Start a local backend and the workers, submit every sample, and return one row per sample."""
    from ai_worker import admin
    from ai_worker.aws import make_clients
    from ai_worker.local_backend import open_backend

    kinds: list[WorkerKind] = [k for k in ("cpu", "gpu") if any(d.tier in WORKER_TIERS[k] for d in demo_jobs)]
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="ai-worker-demo-") as scratch,
        open_backend(_demo_settings(settings, demo_jobs)) as active,
        _workers(active, kinds, Path(scratch)) as workers,
    ):
        clients = make_clients(active)
        jobs = []
        for demo_job in demo_jobs:
            sample, file = demo_job.sample, None
            if sample.input is not None:
                file = Path(scratch) / sample.filename
                file.write_bytes(sample.input)
            jobs.append(
                admin.submit(
                    clients.sqs,
                    clients.s3,
                    active,
                    job_type=demo_job.job_type,
                    tier=demo_job.tier,
                    payload=sample.payload,
                    file=file,
                    tenant_id=DEMO_TENANT,
                )
            )
        print(f"demo: submitted {len(jobs)} job(s); waiting up to {timeout_s:.0f}s for results", file=sys.stderr)
        documents = admin.wait_for_results(clients.s3, active, jobs, timeout_s, worth_waiting=workers.alive)
        for demo_job, job in zip(demo_jobs, jobs, strict=True):
            document = documents[job.job_id]
            kind: WorkerKind = "cpu" if demo_job.tier in WORKER_TIERS["cpu"] else "gpu"
            row = Row(demo_job.job_type, demo_job.tier, workers.labels[kind], job_id=job.job_id)
            if document is None:
                why = f"within {timeout_s:.0f}s" if workers.alive() else "(a worker stopped: see its log)"
                row.status, row.summary = "timeout", f"no result {why}"
            else:
                row.status = str(document.get("status"))
                row.run_s = (document.get("timings") or {}).get("run_s")
                row.summary = _summary(demo_job.sample, document)
            rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    header = ("job type", "tier", "worker", "status", "run s", "summary")
    cells = [
        (r.job_type, r.tier, r.worker, r.status, "-" if r.run_s is None else f"{r.run_s:.2f}", r.summary) for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header) - 1)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values[:-1], widths, strict=True)) + "  " + values[-1]

    return "\n".join([line(header), line((*("-" * w for w in widths), "-------")), *map(line, cells)])


def run_demo(
    settings: Settings, *, timeout_s: float = 300.0, as_json: bool = False, job_types: Sequence[str] | None = None
) -> int:
    if settings.backend == "aws":
        print("ai-worker: the demo runs only on the local backend; unset AI_WORKER_BACKEND=aws", file=sys.stderr)
        return 2
    started = time.monotonic()
    demo_jobs, skipped = build_samples(settings, JOB_TYPES if job_types is None else job_types)
    rows = run_samples(settings, demo_jobs, timeout_s) if demo_jobs else []
    rows = sorted(rows + skipped, key=lambda r: JOB_TYPES.index(r.job_type))
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False))
    else:
        print(format_table(rows))
        print(f"\n{len(demo_jobs)} job(s) run, {len(skipped)} skipped, in {time.monotonic() - started:.1f}s")
    return 0 if all(r.status == "done" for r in rows if r.status != "skipped") else 1
