"""The commands together, as separate processes on one machine: a local worker, then admin commands attaching to it.

Also `ai-worker demo` end to end. Both run real workers with real job processes, so they are bounded by timeouts
and kept to a few small jobs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from ai_worker.config import Settings
from ai_worker.jobs import ALLOWED_JOB_TYPES, JOB_TYPES
from ai_worker.jobs.specs import omr_grading

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]
START_TIMEOUT_S = 60.0


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def local_env(tmp_path: Path, free_port: int) -> dict[str, str]:
    """A machine without AWS configuration; fast polls so the worker drains quickly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AI_WORKER_"))}
    env.update(
        {
            "AI_WORKER_LOCAL_PORT": str(free_port),
            "AI_WORKER_WAIT_TIME_S": "1",
            "AI_WORKER_SLOTS": "1",
            "AI_WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
        }
    )
    return env


@pytest.fixture
def local_worker(local_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`ai-worker run --kind cpu` on the local backend; its stderr goes to `worker.log` (a pipe could fill up)."""
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ai_worker", "run", "--kind", "cpu"],
            cwd=ROOT,
            env=local_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _listening(int(local_env["AI_WORKER_LOCAL_PORT"])):
        assert worker.poll() is None and time.monotonic() < deadline, "the local worker did not start"
        time.sleep(0.2)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.fixture
def cli_here(local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """An admin command through the CLI's `main` in this process, with `local_env` as its whole AI_WORKER_/AWS_
    environment: still another process than the worker it attaches to, without a fresh interpreter importing boto3
    again for each command (the submit and check below run as fresh interpreters, as an operator runs them)."""
    from ai_worker.cli import main

    for name in [k for k in os.environ if k.startswith(("AWS_", "AI_WORKER_"))]:
        monkeypatch.delenv(name)
    for name, value in local_env.items():
        if name.startswith(("AWS_", "AI_WORKER_")):
            monkeypatch.setenv(name, value)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["ai-worker", *args], code, out, err)

    return run


def test_local_worker_with_submit_check_and_dlq_commands(
    local_worker: subprocess.Popen[str], local_env: dict[str, str], run_cli: Cli, cli_here: Cli, tmp_path: Path
) -> None:
    sample = omr_grading.sample(Settings())
    assert sample.input is not None
    sheet = tmp_path / sample.filename
    sheet.write_bytes(sample.input)

    created = cli_here("queues", "create")
    assert created.returncode == 0, created.stderr
    assert "academy-ai-jobs-basic" in created.stdout and "academy-ai-jobs-basic-dlq" in created.stdout

    refused = cli_here("submit", "--type", "omr_grading", "--tier", "lite", "--file", str(sheet))
    assert refused.returncode == 1 and "may not run" in refused.stderr

    submit = run_cli(
        "submit",
        "--type",
        "omr_grading",
        "--tier",
        "basic",
        "--file",
        str(sheet),
        "--payload",
        json.dumps(sample.payload),
        "--tenant",
        "academy-1",
        "--wait",
        "--timeout",
        "120",
        env=local_env,
        replace_env=True,
        timeout=180,
    )
    assert submit.returncode == 0, submit.stderr
    job_id, document_text = submit.stdout.split("\n", 1)
    document = json.loads(document_text)
    assert document["job_id"] == job_id and document["tenant_id"] == "academy-1"
    assert document["status"] == "done" and document["tier"] == "basic"
    assert document["result"]["score"]["correct"] == 18

    assert run_cli("check", env=local_env, replace_env=True).returncode == 0  # the worker loop is alive

    # A message in the DLQ, listed and moved back by the commands (sent here with the plain SDK).
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{local_env['AI_WORKER_LOCAL_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    dlq_url = sqs.get_queue_url(QueueName="academy-ai-jobs-lite-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody='{"job_id": "stuck-1", "job_type": "ocr", "tier": "lite"}')
    listed = cli_here("dlq", "list", "--tier", "lite", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["job_id"] for m in json.loads(listed.stdout)["messages"]] == ["stuck-1"]
    redriven = cli_here("dlq", "redrive", "--tier", "lite")
    assert redriven.returncode == 0 and "moved 1 message(s)" in redriven.stdout

    local_worker.send_signal(signal.SIGTERM)
    assert local_worker.wait(timeout=60) == 0
    assert "LOCAL MODE" in (tmp_path / "worker.log").read_text()


def test_demo_runs_every_type_it_can_and_reports_skips(run_cli: Cli, local_env: dict[str, str]) -> None:
    env = {**local_env, "OPENAI_API_KEY": ""}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    proc = run_cli("demo", "--json", env=env, replace_env=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {row["job_type"]: row for row in json.loads(proc.stdout)}
    assert list(rows) == list(JOB_TYPES)  # one row per job type, in the contract's order

    assert rows["ocr"]["status"] == "skipped" and "Google" in rows["ocr"]["summary"]
    generation = rows["problem_generation"]
    assert generation["status"] == "skipped" and "OPENAI_API_KEY" in generation["summary"]
    ran = {t: r for t, r in rows.items() if t not in ("ocr", "problem_generation")}
    for job_type, row in ran.items():
        assert row["status"] == "done", row
        expected = ("basic", "cpu") if job_type in ALLOWED_JOB_TYPES["basic"] else ("premium", "gpu (CPU fallback)")
        assert (row["tier"], row["worker"]) == expected, row
        assert row["run_s"] is not None and row["run_s"] > 0
    # Inputs with a known truth: the summaries say what the handlers found.
    assert rows["omr_grading"]["summary"].startswith("18/20 correct, student id 20261234")
    assert rows["question_segmentation"]["summary"].startswith("6 questions, 2 column")
    assert "LOCAL MODE" in proc.stderr


def test_demo_refuses_the_aws_backend(run_cli: Cli, local_env: dict[str, str]) -> None:
    proc = run_cli("demo", env={**local_env, "AI_WORKER_BACKEND": "aws"}, replace_env=True)
    assert proc.returncode == 2 and "only on the local backend" in proc.stderr
