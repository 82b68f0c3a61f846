"""The `ai-worker` command: argument parsing only; the work lives in admin, demo, doctor and broker.local.

Each subcommand imports what it needs when it runs, so `ai-worker check` (the container HEALTHCHECK) reads one
file's age and imports nothing heavy. Exit codes: 0 success or healthy, 1 failure or unhealthy, 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ai_worker import __version__
from ai_worker.config import ConfigError, Settings
from ai_worker.jobs import JOB_TYPES, SPECS, lowest_tier
from ai_worker.tiers import TIERS, WORKER_KINDS, WorkerKind

Command = Callable[[argparse.Namespace, Settings], int]
OMR_COMMAND = "omr"


def _fail(message: str, code: int = 1) -> int:
    print(f"ai-worker: {message}", file=sys.stderr)
    return code


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


class CommandError(Exception):
    """A command that cannot be carried out; `main` prints the message and exits 1."""


@contextmanager
def _admin_session(settings: Settings) -> Iterator[tuple[Settings, Any]]:
    """The active settings and boto3 clients; a local backend must already be running (see `attach_only`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ai_worker.admin import AdminError
    from ai_worker.aws import make_clients
    from ai_worker.local_backend import LocalBackendError, open_backend

    try:
        with open_backend(settings, announce=False, attach_only=True) as active:
            yield active, make_clients(active)
    except (AdminError, LocalBackendError, ClientError, BotoCoreError) as exc:
        raise CommandError(str(exc)) from exc


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker.local_backend import LocalBackendError, open_backend

    if args.tier:
        message = "`ai-worker run --tier` is deprecated: use --kind (tiers are lite/basic/premium; kinds cpu/gpu)"
        warnings.warn(message, DeprecationWarning, stacklevel=1)
        print(f"ai-worker: warning: {message}", file=sys.stderr)
    kind: WorkerKind = args.kind or args.tier or settings.worker_kind
    if kind == "gpu":
        from ai_worker.doctor import gpu_start_check

        allowed, message = gpu_start_check(args.allow_cpu_fallback or settings.allow_gpu_fallback)
        print(message, file=sys.stderr)
        if not allowed:
            return 1
        settings = dataclasses.replace(settings, allow_gpu_fallback=True)
    from ai_worker.worker import run_worker

    try:
        with open_backend(settings) as active:
            return run_worker(active, kind)
    except LocalBackendError as exc:
        raise CommandError(str(exc)) from exc


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker import admin

    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        return _fail(f"--payload is not JSON: {exc}", 2)
    if not isinstance(payload, dict):
        return _fail("--payload must be a JSON object", 2)
    tier = args.tier or lowest_tier(args.type)
    with _admin_session(settings) as (active, clients):
        job = admin.submit(
            clients.sqs,
            clients.s3,
            active,
            job_type=args.type,
            tier=tier,
            payload=payload,
            file=args.file,
            tenant_id=args.tenant,
            job_id=args.job_id,
        )
        print(job.job_id, flush=True)
        if not args.wait:
            return 0
        document = admin.wait_for_results(clients.s3, active, [job], args.timeout)[job.job_id]
    if document is None:
        return _fail(f"no result for job {job.job_id} within {args.timeout:.0f}s")
    _print_json(document)
    return 0 if document.get("status") == "done" else 1


def cmd_queues_create(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker import admin

    with _admin_session(settings) as (active, clients):
        rows = admin.create_queues(clients.sqs, active)
    for row in rows:
        tiers = ",".join(row["tiers"]) or "results"
        print(f"{row['queue']:<40} tiers={tiers:<20} dlq={row['dlq'] or '-'}")
    return 0


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker import admin

    with _admin_session(settings) as (active, clients):
        depths = admin.dlq_depths(clients.sqs, active, args.tier)
        messages = [admin.describe_message(m) for m in admin.list_dlq(clients.sqs, active, args.tier, args.limit)]
    if args.json:
        _print_json({"depths": depths, "messages": messages})
        return 0
    for name, depth in depths.items():
        print(f"{name}: ~{depth} message(s)")
    for m in messages:
        print("  " + "  ".join(f"{k}={v}" for k, v in m.items() if v is not None))
    return 0


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker import admin

    with _admin_session(settings) as (active, clients):
        moved = admin.redrive_dlq(clients.sqs, active, args.tier, args.max)
    for name, count in moved.items():
        print(f"{name}: moved {count} message(s) back to {name.removesuffix(settings.dlq_suffix)}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker.worker.heartbeat import check

    healthy, reason = check(settings)
    print(("healthy: " if healthy else "unhealthy: ") + reason)
    return 0 if healthy else 1


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker.doctor import format_report, report

    data = report(settings)
    if args.json:
        _print_json(data)
    else:
        print(format_report(data))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker.demo import run_demo

    return run_demo(settings, timeout_s=args.timeout, as_json=args.json, job_types=args.only)


def _job_types(value: str) -> list[str]:
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = sorted(set(types) - set(JOB_TYPES))
    if unknown or not types:
        raise argparse.ArgumentTypeError(f"unknown job type(s) {unknown}; known: {', '.join(JOB_TYPES)}")
    return types


def _job_type_list() -> str:
    """The declared job types, one line each: name, the tiers that may run it, what it returns."""
    rows = [(spec.name, f"[{','.join(spec.tiers)}]", spec.description) for spec in SPECS.values()]
    name_w, tiers_w = (max(len(row[i]) for row in rows) for i in (0, 1))
    return "job types:\n" + "\n".join(f"  {name:<{name_w}}  {tiers:<{tiers_w}}  {text}" for name, tiers, text in rows)


def _add_omr(sub: Any) -> None:
    """The OMR tools belong to the OMR job package, imported only when `omr` is the command being run."""
    omr = sub.add_parser(OMR_COMMAND, help="OMR answer-sheet tools")
    try:
        from ai_worker.jobs.omr.cli import add_subcommands
    except ModuleNotFoundError as exc:
        if exc.name != "ai_worker.jobs.omr.cli":
            raise
        reason = "the OMR tools (ai_worker.jobs.omr.cli) are not part of this build"
        omr.set_defaults(func=lambda args, settings: _fail(reason))
        return
    add_subcommands(omr.add_subparsers(dest="omr_command", metavar="COMMAND", required=True))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the `omr` subcommands are loaded only when `argv` selects `omr`."""
    parser = argparse.ArgumentParser(prog="ai-worker", description="Run and operate the ai-worker SQS job worker.")
    parser.add_argument("--version", action="version", version=f"ai-worker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run a worker (local SQS/S3 backend when no AWS is configured)")
    run.add_argument("--kind", choices=WORKER_KINDS, help="cpu polls basic+lite, gpu polls premium [AI_WORKER_KIND]")
    run.add_argument("--tier", choices=WORKER_KINDS, help=argparse.SUPPRESS)  # the old name of --kind, deprecated
    run.add_argument(
        "--allow-cpu-fallback",
        action="store_true",
        help="let a gpu worker start without a CUDA device [AI_WORKER_ALLOW_GPU_FALLBACK]",
    )
    run.set_defaults(func=cmd_run)

    submit = sub.add_parser(
        "submit",
        help="enqueue a job on the queue of its tier and print its job_id",
        epilog=_job_type_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("--type", required=True, choices=JOB_TYPES, help="job type")
    submit.add_argument("--tier", choices=TIERS, help="tier (default: the lowest tier that runs the type)")
    submit.add_argument("--file", type=Path, help="input file, uploaded to S3 and passed as payload.s3_key")
    submit.add_argument("--payload", default="{}", help="payload JSON object (default: {})")
    submit.add_argument("--tenant", help="tenant_id")
    submit.add_argument("--job-id", help="job_id (default: a random UUID)")
    submit.add_argument("--wait", action="store_true", help="wait for the result document and print it")
    submit.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits (default: 300)")
    submit.set_defaults(func=cmd_submit)

    queues = sub.add_parser("queues", help="queue administration").add_subparsers(
        dest="queues_command", metavar="COMMAND", required=True
    )
    queues.add_parser(
        "create", help="create or update the tier queues, their DLQs and the results queue (idempotent)"
    ).set_defaults(func=cmd_queues_create)

    dlq = sub.add_parser("dlq", help="dead-letter queues").add_subparsers(
        dest="dlq_command", metavar="COMMAND", required=True
    )
    dlq_list = dlq.add_parser("list", help="show DLQ depths and peek at their messages")
    dlq_list.add_argument("--tier", choices=TIERS, help="only the DLQ of this tier")
    dlq_list.add_argument("--limit", type=int, default=50, help="messages shown per DLQ (default: 50)")
    dlq_list.add_argument("--json", action="store_true", help="print JSON")
    dlq_list.set_defaults(func=cmd_dlq_list)
    redrive = dlq.add_parser("redrive", help="move DLQ messages back to their source queue")
    redrive.add_argument("--tier", choices=TIERS, help="only the DLQ of this tier")
    redrive.add_argument("--max", type=int, help="move at most this many per DLQ (default: all)")
    redrive.set_defaults(func=cmd_dlq_redrive)

    sub.add_parser("check", help="health probe: exit 0 when the worker loop is alive, 1 when not").set_defaults(
        func=cmd_check
    )

    doctor = sub.add_parser("doctor", help="print torch/CUDA/onnxruntime/ffmpeg facts of this environment")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(func=cmd_doctor)

    demo = sub.add_parser("demo", help="run sample jobs of every available type on a local backend")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all results (default: 300)")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument(
        "--only", type=_job_types, metavar="TYPE[,TYPE...]", help="run only these job types (default: every type)"
    )
    demo.set_defaults(func=cmd_demo)

    if argv is not None and OMR_COMMAND in argv[:1]:
        _add_omr(sub)
    else:
        sub.add_parser(OMR_COMMAND, help="OMR answer-sheet tools (run `ai-worker omr --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    command: Command = args.func
    try:
        settings = Settings.for_health_probe() if command is cmd_check else Settings.from_env()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    try:
        return command(args, settings)
    except CommandError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        # The reader went away (`ai-worker doctor --json | head`): point stdout at devnull so the interpreter's
        # final flush does not fail again, and exit without a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
