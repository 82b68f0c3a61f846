"""The worker loop: receive, validate, dispatch to job slots, settle each message with one explicit outcome.

Every received message ends in exactly one outcome (docs/design.md, "Outcomes"):
- done / failed: the result document is written (by the job process, or here for envelope violations), a notice
  goes to the results queue, then the message is deleted (batched);
- retry: the message stays invisible for a backoff computed from its receive count (SQS's redrive policy moves
  it to the DLQ after maxReceiveCount);
- dead: an unparseable body is sent to the DLQ of its queue with body and attributes intact, then deleted;
- released: on shutdown, whatever cannot finish (or never started) is made visible again at once.
At-least-once: a message may be delivered twice (a lease lost, a worker killed); the result is written at most
once and a job whose result exists is acknowledged without running, so handlers must be idempotent.

Threads: the poller receives (blocking long polls); the sender makes the settling calls the loop decided (notices,
deletes, visibility changes), in order; this loop owns everything else, so no state is shared but the inbox, the
slot capacity and the sender's queue of decided batches.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ai_worker import errors, metrics
from ai_worker.broker import Broker, BrokerError, Message
from ai_worker.config import Settings
from ai_worker.envelope import Envelope, UnparseableMessage, expired, parse_envelope, validate_envelope
from ai_worker.errors import ErrorInfo, JobError, PermanentError, TransientError
from ai_worker.inputs import check_input_key
from ai_worker.jobs import SPECS
from ai_worker.logs import job_fields
from ai_worker.protection import ScaleInProtection
from ai_worker.results import build_document, notice
from ai_worker.tiers import WORKER_TIERS, WorkerKind
from ai_worker.worker import heartbeat
from ai_worker.worker.child import JobReport, JobTask, Outcome, SinkFactory
from ai_worker.worker.leases import Leases, retry_delay, visibility_left
from ai_worker.worker.polling import Capacity, Inbox, Poller
from ai_worker.worker.prefetch import Prefetch
from ai_worker.worker.slots import SlotPool

log = logging.getLogger(__name__)

TICK_S: Final = 0.05  # loop period when idle: bounds the latency of dispatch, leases and drain
HEARTBEAT_EVERY_S: Final = 5.0
POLL_JOIN_MARGIN_S: Final = 5.0  # a long poll in flight at shutdown returns within wait_time_s plus this
# Job types declared with `batch` > 1 (their handler module has `handle_batch`): a job process gets up to this
# many pending jobs of the type at once.
DEFAULT_BATCH_SIZES: Final[Mapping[str, int]] = {name: spec.batch for name, spec in SPECS.items() if spec.batch > 1}
FLUSH_DELAY_S: Final = 0.5  # well inside any lease (renewed at half-life, >= 5 s left), so nothing lapses
SENDER_BACKLOG: Final = 4  # batches of settling calls that may wait for the sender thread before the loop waits


class Sender(threading.Thread):
    """Makes the loop's settling calls (notices, deletes, visibility changes) in the order they were decided, so
    the loop goes on dispatching while SQS answers. At most SENDER_BACKLOG plans wait; beyond that the loop
    waits too, so settled-but-undeleted messages stay bounded. `close` sends what is left and stops."""

    def __init__(self, send: Callable[[list[tuple[Message, str | None]], list[tuple[Message, int]]], None]) -> None:
        super().__init__(name="ai-worker-sender", daemon=True)
        self._send = send
        self._plans: queue.Queue[tuple[list[tuple[Message, str | None]], list[tuple[Message, int]]] | None] = (
            queue.Queue(maxsize=SENDER_BACKLOG)
        )

    def submit(self, acks: list[tuple[Message, str | None]], changes: list[tuple[Message, int]]) -> None:
        self._plans.put((acks, changes))

    def close(self) -> None:
        if self.is_alive():
            self._plans.put(None)
            self.join()

    def run(self) -> None:
        while (plan := self._plans.get()) is not None:
            try:
                self._send(*plan)
            except Exception:  # each call already logs and survives its own failure; this is a bug
                log.exception("sending settled messages failed; they come back after their lease")


@dataclass
class Job:
    message: Message
    env: Envelope
    started: float | None = None  # monotonic, when a slot took it
    batch: int = 1  # how many jobs ran in the same handler call


def default_slots(kind: WorkerKind) -> int:
    """CPU workers: one slot per CPU. GPU workers: one per visible GPU (at least one), counted without torch."""
    if kind == "cpu":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    else:
        count = len([p for p in Path("/dev").glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)])
    return max(1, count)


def queue_weights(settings: Settings, kind: WorkerKind) -> dict[str, int]:
    """Queue name -> poll weight for the tiers this kind of worker polls (one entry on a shared queue)."""
    weights: dict[str, int] = {}
    for tier in WORKER_TIERS[kind]:
        name = settings.queue_names[tier]
        weights[name] = max(weights.get(name, 0), settings.poll_weights[tier])
    return weights


def job_limits(settings: Settings, env: Envelope) -> tuple[float, int]:
    """The job's (time limit in seconds, memory limit in MB): its job type's declared limits (`JobSpec.timeout_s`,
    `memory_mb`), capped by the worker-wide `job_timeout_s` / `job_memory_mb` that also stand in for undeclared
    ones; the payload's `timeout_s` may lower the time limit, never raise it."""
    spec = SPECS.get(env.job_type or "")
    timeout_s, memory_mb = spec.limits(settings) if spec else (settings.job_timeout_s, settings.job_memory_mb)
    asked = env.payload.get("timeout_s")
    if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
        timeout_s = min(timeout_s, float(asked))
    return timeout_s, memory_mb


def job_time_limit(settings: Settings, env: Envelope) -> float:
    return job_limits(settings, env)[0]


class Engine:
    def __init__(
        self,
        settings: Settings,
        kind: WorkerKind,
        registry: Mapping[str, str],
        stop: threading.Event,
        broker: Broker,
        sink_factory: SinkFactory,
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.kind = kind
        self.registry = dict(registry)
        self.stop = stop
        self.broker = broker
        self.batch_sizes = dict(DEFAULT_BATCH_SIZES if batch_sizes is None else batch_sizes)
        self.sink_factory = sink_factory
        self.sink = sink_factory(settings)  # for failures found before a job runs
        self.weights = queue_weights(settings, kind)
        self.slot_count = settings.slots or default_slots(kind)
        self.capacity = Capacity(self.slot_count)
        self.prefetch = Prefetch(
            self.slot_count, settings.prefetch_max, settings.visibility_timeout_s, batch_sizes=self.batch_sizes
        )
        self.inbox = Inbox()
        self.leases = Leases(settings.visibility_timeout_s)
        self.pending: deque[Job] = deque()
        self.running: dict[str, Job] = {}
        self.protection = ScaleInProtection()
        # Settled messages waiting for the next flush: deleted only once their notice (if any) was sent.
        self._acks: list[tuple[Message, str | None]] = []
        self._visibility: list[tuple[Message, int]] = []
        self._poller: Poller | None = None
        self._sender: Sender | None = None
        self._stall_logged = False
        self._beat_at = 0.0
        self._batch_since: float | None = None  # when the oldest unsent delete/notice/visibility change was made
        self.exit_code = 0

    # --- life cycle ------------------------------------------------------------------------------------

    def run(self) -> int:
        # The job processes start first: their imports are the longest part of a cold start, and they overlap
        # with the queue check and the first receive.
        pool = SlotPool(self.slot_count, self.settings, self.kind, self.sink_factory)
        try:
            self.broker.check(list(self.weights))
        except BrokerError as exc:
            log.error("%s", exc)
            pool.kill_all()
            return 1
        log.info(
            "worker starting",
            extra={**self.settings.describe(), "kind": self.kind, "slots": self.slot_count, "weights": self.weights},
        )
        poller = Poller(
            self.broker,
            self.weights,
            self.capacity,
            self.inbox,
            wait_time_s=self.settings.wait_time_s,
            visibility_s=self.settings.visibility_timeout_s,
        )
        self._poller = poller
        self._sender = Sender(self._send)
        self._sender.start()
        poller.start()
        try:
            self._loop(pool, poller)
        except Exception:
            log.exception("worker loop failed; releasing held messages")
            self.exit_code = 1
        finally:
            self._shutdown(pool, poller)
        return self.exit_code

    def _loop(self, pool: SlotPool, poller: Poller) -> None:
        deadline: float | None = None
        while True:
            if self.stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.settings.drain_timeout_s
                poller.stop_receiving.set()
                log.info("draining: no new receives; %d job(s) running", len(self.running))
            self._intake()
            if deadline is None:
                self._dispatch(pool)
                self.capacity.set_total(self.slot_count + self.prefetch.extra())
            else:
                self._release([job.message for job in self.pending], "worker draining")
                self.pending.clear()
            for finished in pool.collect(TICK_S, wake=[self.inbox.fileno()]) + pool.enforce_limits():
                self._settle(self.running.pop(finished.key), finished.report)
            self._flush(force=deadline is not None)
            self._housekeeping()
            if deadline is None and not poller.is_alive():
                log.error("the poller stopped unexpectedly; shutting down")
                self.exit_code = 1
                self.stop.set()
            if deadline is not None:
                if not self.running and not poller.is_alive() and self.inbox.empty():
                    log.info("drained")
                    return
                if time.monotonic() >= deadline:
                    log.warning("drain deadline reached; releasing %d running job(s)", len(self.running))
                    return

    def _shutdown(self, pool: SlotPool, poller: Poller) -> None:
        poller.stop_receiving.set()
        poller.join(self.settings.wait_time_s + POLL_JOIN_MARGIN_S)
        self._intake()
        killed = [self.running.pop(key, None) for key in pool.kill_busy()]
        self._release([job.message for job in killed if job is not None], "drain deadline")
        self._release([job.message for job in self.pending], "worker stopping")
        self.pending.clear()
        # Whatever is still leased was received but never settled (e.g. the loop failed while taking it in):
        # it is made visible again, never left to wait out its lease.
        self._release(self.leases.messages(), "held when the worker stopped")
        self.running.clear()
        self._flush(force=True)
        if self._sender is not None:
            self._sender.close()  # everything decided is sent before the worker stops
        pool.close()
        self.inbox.close()
        self.protection.update(False)
        log.info("worker stopped", extra={"exit_code": self.exit_code})

    # --- intake and dispatch ---------------------------------------------------------------------------

    def _intake(self) -> None:
        messages = self.inbox.take()
        for message in messages:  # held from here on: whatever happens next, shutdown releases what is leased
            self.leases.add(message)
        for message in messages:
            try:
                self._accept(message)
            except Exception as exc:
                # Nothing in a body may take the loop down: what could not even be looked at is dead (kept
                # intact in the DLQ for a person), and the next message is taken in as usual.
                log.exception("taking in message %s failed", message.message_id)
                if message.receipt_handle in self.leases:
                    self._dead(message, f"the worker could not take it in: {type(exc).__name__}: {exc}"[:300])

    def _accept(self, message: Message) -> None:
        """Parse and validate; a message that cannot run is settled here, the rest wait for a slot."""
        try:
            env = parse_envelope(message.body)
        except UnparseableMessage as exc:
            self._dead(message, str(exc))
            return
        try:
            validate_envelope(env, queue_tiers=self._tiers_of(message.queue))
            if env.job_type not in self.registry:
                raise PermanentError(
                    errors.UNSUPPORTED_JOB_TYPE, f"this {self.kind} worker has no handler for {env.job_type!r}"
                )
            check_input_key(env, self.settings.inputs)
            _refuse_expired(env)
        except PermanentError as exc:
            self._fail_before_running(message, env, exc)
            return
        self.pending.append(Job(message, env))

    def _tiers_of(self, queue_name: str) -> frozenset[str]:
        return frozenset(t for t, name in self.settings.queue_names.items() if name == queue_name)

    def _dispatch(self, pool: SlotPool) -> None:
        for slot in pool.idle():
            batch = self._next_batch()
            if not batch:
                return
            tasks = [
                JobTask(
                    envelope=job.env,
                    handler=self.registry[job.env.job_type or ""],
                    attempts=job.message.receive_count,
                    queued_s=max(0.0, time.time() - job.message.sent_at),
                )
                for job in batch
            ]
            limits = [job_limits(self.settings, job.env) for job in batch]
            limit_s, memory_mb = max(t for t, _ in limits), max(m for _, m in limits)
            try:
                slot.assign(
                    [job.message.receipt_handle for job in batch],
                    tasks if len(tasks) > 1 else tasks[0],
                    limit_s,
                    memory_mb * 2**20,
                )
            except OSError as exc:  # the process died since it was found idle: the jobs wait for the next slot
                log.warning("job process %d is gone (%s); replacing it", slot.index, exc)
                slot.replace()
                self.pending.extendleft(reversed(batch))
                continue
            started = time.monotonic()
            for job in batch:
                job.started, job.batch = started, len(batch)
                self.running[job.message.receipt_handle] = job

    def _next_batch(self) -> list[Job]:
        """The next job, with up to `batch_sizes[type] - 1` more pending jobs of its type when the type is
        batchable (they run in one handler call in one job process; see `JobRunner.run_batch`). Jobs that expired
        while waiting are failed here instead."""
        first: Job | None = None
        while self.pending and first is None:
            job = self.pending.popleft()
            if expired(job.env):  # it waited in this worker past its expiry
                self._fail_before_running(job.message, job.env, _expired_error(job.env))
            else:
                first = job
        if first is None:
            return []
        batch = [first]
        size = self.batch_sizes.get(first.env.job_type or "", 1)
        kept: deque[Job] = deque()
        while size > 1 and self.pending and len(batch) < size:
            job = self.pending.popleft()
            if job.env.job_type != first.env.job_type:
                kept.append(job)
            elif expired(job.env):
                self._fail_before_running(job.message, job.env, _expired_error(job.env))
            else:
                batch.append(job)
        self.pending.extendleft(reversed(kept))
        return batch

    # --- outcomes --------------------------------------------------------------------------------------

    def _settle(self, job: Job, report: JobReport) -> None:
        message, env = job.message, job.env
        if job.started is not None and env.job_type is not None:
            self.prefetch.record(env.job_type, (time.monotonic() - job.started) / job.batch)
        fields = job_fields(env)
        queued_s = max(0.0, message.received_at - message.sent_at)
        if report.outcome == "retry":
            error = report.error or ErrorInfo(errors.INTERNAL_ERROR, "no error reported", retryable=True)
            delay = self._backoff(message, report.retry_after_s)
            self._later(message, delay)
            log.warning(
                "job will be retried in %ds: %s",
                delay,
                error.message,
                extra={"job": fields, "outcome": "retry", "code": error.code, "attempt": message.receive_count},
            )
            metrics.record_outcome(self.settings.metrics_namespace, "retry", job_type=env.job_type, tier=env.tier)
            return
        self._ack(message, None if report.notice is None else json.dumps(report.notice, separators=(",", ":")))
        if report.outcome == "duplicate":
            log.info("job already had a result; acknowledged", extra={"job": fields, "outcome": "duplicate"})
            return
        log.info(
            "job %s",
            report.outcome,
            extra={
                "job": fields,
                "outcome": report.outcome,
                "run_s": report.run_s,
                "error": None if report.error is None else report.error.to_dict(),
            },
        )
        metrics.record_outcome(
            self.settings.metrics_namespace,
            report.outcome,
            job_type=env.job_type,
            tier=env.tier,
            run_s=report.run_s,
            queued_s=queued_s,
        )

    def _fail_before_running(self, message: Message, env: Envelope, error: JobError) -> None:
        doc = build_document(
            env,
            status="failed",
            kind=self.kind,
            settings=self.settings,
            attempts=message.receive_count,
            error=error.to_dict(),
            queued_s=max(0.0, message.received_at - message.sent_at),
        )
        try:
            ref = self.sink.write(doc)
        except TransientError as exc:
            self._settle(Job(message, env), JobReport("retry", error=exc.info()))
            return
        outcome: Outcome = "failed" if ref.created else "duplicate"
        report = JobReport(outcome, error=error.info(), notice=notice(env, ref))
        self._settle(Job(message, env), report)

    def _dead(self, message: Message, reason: str) -> None:
        dlq = message.queue + self.settings.dlq_suffix
        try:
            self.broker.send(dlq, message.body, message.attributes)
        except Exception as exc:
            # Not lost: the message comes back after a backoff, and SQS's redrive policy moves it in the end.
            log.error("could not move an unparseable message to %s: %s", dlq, exc)
            self._later(message, self._backoff(message))
            return
        self._ack(message)
        log.error(
            "unparseable message moved to the DLQ: %s",
            reason,
            extra={"outcome": "dead", "queue": message.queue, "dlq": dlq, "message_id": message.message_id},
        )
        metrics.record_outcome(self.settings.metrics_namespace, "dead", job_type=None, tier=None)

    def _release(self, messages: list[Message], reason: str) -> None:
        for message in messages:
            self._later(message, 0)
            metrics.record_outcome(self.settings.metrics_namespace, "released", job_type=None, tier=None)
        if messages:
            log.info("released %d message(s): %s", len(messages), reason, extra={"outcome": "released"})

    def _backoff(self, message: Message, retry_after_s: float | None = None) -> int:
        return retry_delay(message.receive_count, self.settings.retry_base_s, self.settings.retry_max_s, retry_after_s)

    def _ack(self, message: Message, notice_body: str | None = None) -> None:
        self._acks.append((message, notice_body))
        self._settled(message)

    def _later(self, message: Message, seconds: int) -> None:
        self._visibility.append((message, min(seconds, visibility_left(message, time.time()))))
        self._settled(message)

    def _settled(self, message: Message) -> None:
        self.leases.drop(message)
        self.capacity.release(1)

    # --- batched calls and housekeeping ----------------------------------------------------------------

    def _flush(self, force: bool = False) -> None:
        """Hand what was decided to the sender thread, in batches: settled messages wait up to FLUSH_DELAY_S for
        company, so a busy worker deletes and notifies ten at a time; renewals and shutdown go at once. When a
        batch fills up first, only whole batches go: settling two jobs at once can take 9 waiting acks to 11,
        and sending all 11 would make a call for one; the remainder waits for the next ten, or FLUSH_DELAY_S
        from then (so a settled message waits at most twice that for its delete, still far inside its lease).
        The loop does not wait for the calls (it goes on dispatching), unless the sender is SENDER_BACKLOG plans
        behind."""
        renewals = self.leases.due()
        waiting = bool(self._acks or self._visibility)
        if not (renewals or waiting):
            return
        now = time.monotonic()
        if self._batch_since is None:
            self._batch_since = now
        batch = self.broker.max_batch
        if force or renewals or now - self._batch_since >= FLUSH_DELAY_S:
            acks, self._acks = self._acks, []
            changes, self._visibility = self._visibility + renewals, []
        elif max(len(self._acks), len(self._visibility)) >= batch:  # whole batches only
            whole_acks, whole_changes = len(self._acks) // batch * batch, len(self._visibility) // batch * batch
            acks, self._acks = self._acks[:whole_acks], self._acks[whole_acks:]
            changes, self._visibility = self._visibility[:whole_changes], self._visibility[whole_changes:]
        else:
            return
        self._batch_since = now if (self._acks or self._visibility) else None
        if self._sender is not None and self._sender.is_alive():
            self._sender.submit(acks, changes)
        else:  # not started, or gone: the calls are made here
            self._send(acks, changes)

    def _send(self, acks: list[tuple[Message, str | None]], changes: list[tuple[Message, int]]) -> None:
        """Notices first, then deletes of the messages whose notice went out (a message whose notice could not be
        sent is kept and comes back after a backoff, and its redelivery re-sends the notice: notices are
        at-least-once), then visibility changes (retries, releases and lease renewals together)."""
        deletes = [m for m, body in acks if body is None or not self.settings.results_queue]
        notified = [(m, body) for m, body in acks if body is not None and self.settings.results_queue]
        if notified:
            refused = set(self.broker.send_many(self.settings.results_queue or "", [b for _, b in notified]))
            for i, (message, _) in enumerate(notified):
                if i in refused:
                    delay = self._backoff(message)
                    log.warning(
                        "notice for message %s not sent; the message is kept and comes back in %ds",
                        message.message_id,
                        delay,
                        extra={"outcome": "notice_failed", "message_id": message.message_id},
                    )
                    changes = [*changes, (message, min(delay, visibility_left(message, time.time())))]
                else:
                    deletes.append(message)
        if deletes:
            self._call("delete", lambda: self.broker.delete(deletes))
        if changes:
            self._call("change visibility", lambda: self.broker.change_visibility(changes))

    def _call(self, what: str, call: Callable[[], object]) -> None:
        # botocore has already retried; a message whose delete or lease change failed comes back and is
        # acknowledged as a duplicate (its result exists), so the loop goes on.
        try:
            call()
        except Exception as exc:
            log.error("%s failed: %s", what, exc)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._beat_at >= min(HEARTBEAT_EVERY_S, self.settings.heartbeat_max_age_s / 3):
            self._beat_at = now
            status = {}
            if self._poller is not None and self._poller.is_alive():
                status = {
                    "receive_ok_at": self._poller.progress_at,
                    "receive_stalled_after_s": self._poller.stall_after_s,
                }
                stalled = self._poller.stalled_for()
                if stalled > self._poller.stall_after_s and not self._stall_logged:
                    log.error("no receive has completed for %.0fs: the connection to SQS looks stalled", stalled)
                self._stall_logged = stalled > self._poller.stall_after_s
            try:
                heartbeat.touch(self.settings.heartbeat_file, status)
            except OSError as exc:
                log.error("cannot write the heartbeat file: %s", exc)
        self.protection.update(len(self.leases) > 0)


def _expired_error(env: Envelope) -> PermanentError:
    return PermanentError(errors.JOB_EXPIRED, f"received after its expires_at ({env.expires_at}); not run")


def _refuse_expired(env: Envelope) -> None:
    if expired(env):
        raise _expired_error(env)
