"""The job process: runs one job at a time for the worker, keeping handler modules (and their models) warm.

The worker sends a `JobTask` over a pipe and gets a `JobReport` back. Here, in this order: the idempotency check
(a result that already exists means the job is acknowledged without running; with `result_check` "redelivered",
made only from a message's second receive on), the handler with a `JobContext`
backed by S3 and HTTPS, and the conditional write of the result document. Only the outcome travels back; the
worker owns the message (leases, deletes, retries). Ctrl-C is ignored here: the worker decides when a job stops.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final, Literal

from ai_worker import errors, logs
from ai_worker.aws import s3_client
from ai_worker.config import Settings
from ai_worker.envelope import Envelope
from ai_worker.errors import ErrorInfo, JobError, PermanentError, TransientError
from ai_worker.inputs import load_input
from ai_worker.jobs import Handler, resolve
from ai_worker.jobs.context import JobContext
from ai_worker.results import ResultSink, S3BlobStore, Status, build_document, notice

log = logging.getLogger(__name__)

SinkFactory = Callable[[Settings], ResultSink]
Outcome = Literal["done", "failed", "duplicate", "retry"]
READY: Final = "ready"  # first message of a job process, once it can take jobs


@dataclass(frozen=True)
class JobTask:
    envelope: Envelope  # validated (tier filled in)
    handler: str  # "module:function"
    attempts: int
    queued_s: float


@dataclass(frozen=True)
class JobReport:
    outcome: Outcome
    run_s: float | None = None
    error: ErrorInfo | None = None
    retry_after_s: float | None = None
    notice: dict[str, Any] | None = None  # for the results queue, when a result was written


class JobRunner:
    """Runs tasks in this process; handlers and clients are created once and reused."""

    def __init__(self, settings: Settings, kind: str, sink_factory: SinkFactory) -> None:
        self.settings = settings
        self.kind = kind
        self.sink = sink_factory(settings)
        self._handlers: dict[str, Handler] = {}
        self._s3: Any = None

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = s3_client()
        return self._s3

    def run(self, task: JobTask) -> JobReport:
        env = task.envelope
        job_log = logs.job_logger("ai_worker.job", env)
        try:
            duplicate = self._duplicate(env, job_log, task.attempts)
            if duplicate is not None:
                return duplicate
            status, result, error, run_s = self._execute(task, env, job_log)
        except TransientError as exc:
            return JobReport("retry", error=exc.info(), retry_after_s=exc.retry_after_s)
        return self._finish(task, status, result, error, run_s)

    def run_batch(self, tasks: list[JobTask]) -> list[JobReport]:
        """Several jobs of one batchable type in one handler call (`handle_batch` beside the handler, taking a
        list of contexts and answering, per context, a result dict or the JobError of that job alone). Each job
        keeps its own idempotency check, outcome, document and notice; an error of the call itself (the model
        cannot load) is every job's. A handler without `handle_batch` runs the jobs one by one."""
        try:
            batch_handler = self._batch_handler(tasks[0].handler)
        except PermanentError:
            batch_handler = None  # the handler is unavailable: each job reports it on its own
        if batch_handler is None:
            return [self.run(task) for task in tasks]
        reports: dict[int, JobReport] = {}
        live: list[int] = []
        for i, task in enumerate(tasks):
            try:
                job_log = logs.job_logger("ai_worker.job", task.envelope)
                duplicate = self._duplicate(task.envelope, job_log, task.attempts)
            except TransientError as exc:
                reports[i] = JobReport("retry", error=exc.info(), retry_after_s=exc.retry_after_s)
                continue
            if duplicate is not None:
                reports[i] = duplicate
            else:
                live.append(i)
        if live:
            contexts = [self._context(tasks[i].envelope) for i in live]
            started = time.monotonic()
            try:
                outs: list[Any] = list(batch_handler(contexts))
                if len(outs) != len(contexts):
                    raise PermanentError(errors.INTERNAL_ERROR, f"handle_batch answered {len(outs)} of {len(contexts)}")
            except JobError as exc:
                outs = [exc] * len(contexts)
            except Exception as exc:
                log.exception("handle_batch raised an unexpected error")
                outs = [JobError(errors.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")] * len(contexts)
            run_s = (time.monotonic() - started) / len(live)
            for i, out in zip(live, outs, strict=True):
                if isinstance(out, TransientError):
                    reports[i] = JobReport("retry", error=out.info(), retry_after_s=out.retry_after_s)
                    continue
                try:
                    if isinstance(out, JobError):
                        reports[i] = self._finish(tasks[i], "failed", None, out.info(), run_s)
                    else:
                        reports[i] = self._finish(tasks[i], "done", _checked(out), None, run_s)
                except PermanentError as exc:  # the result is not a JSON object
                    reports[i] = self._finish(tasks[i], "failed", None, exc.info(), run_s)
        return [reports[i] for i in range(len(tasks))]

    def _duplicate(
        self, env: Envelope, job_log: logging.LoggerAdapter[logging.Logger], attempts: int
    ) -> JobReport | None:
        """The report of a job whose result already exists (not run; its notice re-sent), else None.

        With `result_check` "redelivered" a first receive is not checked: the conditional write still keeps the
        first document, and a re-run whose write finds one reports a duplicate (`_finish`)."""
        if self.settings.result_check == "redelivered" and attempts <= 1:
            return None
        existing = self.sink.exists(env.tenant, env.job_id)
        if existing is None:
            return None
        # A redelivery (a crash or a failed notice before the delete): its notice is sent again.
        job_log.info("result already exists; acknowledging without running, notice re-sent")
        return JobReport("duplicate", notice=notice(env, existing))

    def _context(self, env: Envelope) -> JobContext:
        return JobContext(
            job=env,
            settings=self.settings,
            load_input=lambda: load_input(env, self.settings, self.s3),
            blobs=S3BlobStore(self.s3, self.settings.results_bucket),
            log=logs.job_logger("ai_worker.job", env),
        )

    def _finish(
        self, task: JobTask, status: Status, result: dict[str, Any] | None, error: ErrorInfo | None, run_s: float
    ) -> JobReport:
        """Write the job's document (once) and report its outcome with the notice to send."""
        env = task.envelope
        try:
            doc = build_document(
                env,
                status=status,
                kind=self.kind,
                settings=self.settings,
                attempts=task.attempts,
                result=result,
                error=None if error is None else error.to_dict(),
                queued_s=task.queued_s,
                run_s=run_s,
            )
            ref = self.sink.write(doc)
        except TransientError as exc:
            return JobReport("retry", error=exc.info(), retry_after_s=exc.retry_after_s)
        if not ref.created:
            logs.job_logger("ai_worker.job", env).info("another delivery wrote the result first; keeping it")
            return JobReport("duplicate", run_s=run_s, notice=notice(env, ref))
        return JobReport(status, run_s=run_s, error=error, notice=notice(env, ref))

    def _execute(
        self, task: JobTask, env: Envelope, job_log: logging.LoggerAdapter[logging.Logger]
    ) -> tuple[Status, dict[str, Any] | None, ErrorInfo | None, float]:
        """Run the handler: (status, result, error, run_s). TransientError propagates (the job is retried)."""
        started = time.monotonic()
        try:
            handler = self._handler(task.handler)
            result = _checked(handler(self._context(env)))
            return "done", result, None, time.monotonic() - started
        except TransientError:
            raise
        except PermanentError as exc:
            return "failed", None, exc.info(), time.monotonic() - started
        except Exception as exc:
            # A bug or an unexpected library error: report it (retrying a deterministic failure only delays
            # the producer); the traceback goes to the log, the code to the producer.
            job_log.exception("handler raised an unexpected error")
            error = JobError(errors.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}").info()
            return "failed", None, error, time.monotonic() - started

    def _batch_handler(self, path: str) -> Callable[[list[JobContext]], Sequence[Any]] | None:
        """`handle_batch` of the handler's module, if it has one."""
        self._handler(path)  # imports the module, or raises the handler's PermanentError
        module = sys.modules[path.partition(":")[0]]
        batch: Callable[[list[JobContext]], Sequence[Any]] | None = getattr(module, "handle_batch", None)
        return batch

    def _handler(self, path: str) -> Handler:
        if path not in self._handlers:
            try:
                self._handlers[path] = resolve(path)
            except (ImportError, AttributeError) as exc:
                raise PermanentError(
                    errors.UNSUPPORTED_JOB_TYPE, f"handler {path} is not available in this image: {exc}"
                ) from exc
        return self._handlers[path]


def _checked(result: Any) -> dict[str, Any]:
    """The handler's result as a dict, refusing what cannot become a JSON document."""
    if not isinstance(result, Mapping):
        raise PermanentError(errors.INTERNAL_ERROR, f"handler returned {type(result).__name__}, expected a dict")
    if not _plain_json(result):  # anything else is encoded to find out (the result document is encoded anyway)
        try:
            json.dumps(result)
        except (TypeError, ValueError, RecursionError) as exc:
            raise PermanentError(errors.INTERNAL_ERROR, f"handler result is not JSON-serialisable: {exc}") from exc
    return dict(result)


_PLAIN_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
PLAIN_DEPTH: Final = 64


def _plain_json(value: Any, depth: int = 0) -> bool:
    """True when `value` is built of dicts with string keys, lists and plain scalars only, at most PLAIN_DEPTH
    deep: json.dumps takes such a value for sure. A walk over types is much cheaper than encoding a result with
    thousands of floats (an embedding's vectors); False only means "encode it to find out"."""
    if depth > PLAIN_DEPTH:
        return False  # deep or circular
    if type(value) is dict:
        return all(type(k) is str for k in value) and all(
            type(v) in _PLAIN_SCALARS or _plain_json(v, depth + 1) for v in value.values()
        )
    if type(value) is list:
        return all(type(v) in _PLAIN_SCALARS or _plain_json(v, depth + 1) for v in value)
    return type(value) in _PLAIN_SCALARS


def main(conn: Connection, settings: Settings, kind: str, sink_factory: SinkFactory) -> None:
    """Entry point of a job process: serve tasks until the pipe closes or a None task arrives."""
    # Shutdown is the worker's decision: a signal sent to the whole process group (Ctrl-C in a terminal, `timeout`,
    # `kill -- -PGID`) must not kill running jobs behind the drain's back. The worker stops its job processes
    # with SIGKILL (limits, drain deadline) or by closing the pipe, so nothing here needs these signals.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.setup(settings.log_level)
    runner = JobRunner(settings, kind, sink_factory)
    conn.send(READY)  # imports are done: the worker starts a job's clock only from here
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        if task is None:
            return
        try:
            report: JobReport | list[JobReport] = runner.run_batch(task) if isinstance(task, list) else runner.run(task)
        except Exception as exc:  # a bug outside the handler (the handler's own are caught in `run`): retried
            log.exception("the job runner failed")
            failure = JobReport("retry", error=JobError(errors.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}").info())
            report = [failure] * len(task) if isinstance(task, list) else failure
        try:
            conn.send(report)
        except (BrokenPipeError, OSError):
            return
