"""Fixtures for the CLI/admin tests: settings whose queues and bucket are unique to one test, on moto's server."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from ai_worker.aws import Clients, make_clients
from ai_worker.config import Settings
from ai_worker.tiers import TIERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(moto_endpoint: str, unique_prefix: str) -> Settings:
    return dataclasses.replace(
        Settings(),
        backend="aws",
        queue_names={t: f"{unique_prefix}-jobs-{t}" for t in TIERS},
        results_bucket=f"{unique_prefix}-results",
        results_queue=f"{unique_prefix}-results",
    )


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on right now, for a local backend of the test's own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clients(settings: Settings) -> Clients:
    return make_clients(settings)


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli() -> CliRunner:
    """Runs `python -m ai_worker ARGS` in a fresh interpreter, as an operator would.

    `env` adds variables to this process's environment, or is the whole environment with `replace_env=True`.
    """

    def run(
        *args: str, env: Mapping[str, str] | None = None, replace_env: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ai_worker", *args],
            cwd=ROOT,
            env=dict(env or {}) if replace_env else {**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
