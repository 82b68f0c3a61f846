"""The embedded local backend: when it is chosen, what it creates, what it tells the operator, and what it reuses."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest

from ai_worker.aws import make_clients
from ai_worker.config import Settings
from ai_worker.local_backend import AWS_CONFIG_VARS, LocalBackend, LocalBackendError, open_backend, resolve_backend
from ai_worker.tiers import TIERS


@pytest.fixture
def local_settings(unique_prefix: str, free_port: int) -> Settings:
    return dataclasses.replace(
        Settings(),
        backend="local",
        local_port=free_port,
        queue_names={t: f"{unique_prefix}-{t}" for t in TIERS},
        results_bucket=f"{unique_prefix}-bucket",
        results_queue=f"{unique_prefix}-results",
    )


@pytest.fixture
def no_aws_env() -> Iterator[dict[str, str]]:
    """The current environment without any AWS configuration (what a fresh laptop has)."""
    yield {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def test_auto_is_local_only_without_any_aws_configuration() -> None:
    auto = Settings(backend="auto")
    assert resolve_backend(auto, {}) == "local"
    assert resolve_backend(auto, {"HOME": "/root", "AWS_REGION": "eu-west-1"}) == "local"  # a region is not a target
    for name in AWS_CONFIG_VARS:
        assert resolve_backend(auto, {name: "x"}) == "aws", name
    assert resolve_backend(Settings(backend="aws"), {}) == "aws"
    assert resolve_backend(Settings(backend="local"), {"AWS_PROFILE": "prod"}) == "local"


def test_local_backend_starts_creates_everything_and_says_so(
    local_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AI_WORKER_INPUT_ALLOW_HTTP")}
    with open_backend(local_settings) as active:
        endpoint = f"http://127.0.0.1:{local_settings.local_port}"
        assert os.environ["AWS_ENDPOINT_URL"] == endpoint
        assert os.environ["AWS_ENDPOINT_URL_SQS"] == os.environ["AWS_ENDPOINT_URL_S3"] == endpoint
        assert os.environ["AWS_ACCESS_KEY_ID"] == "local"
        # The SSRF guard may fetch inputs from the loopback endpoint, in this process and in its children.
        assert active.inputs.allow_private and active.inputs.allow_http and active.backend == "local"
        assert Settings.from_env().inputs.allow_private

        clients = make_clients(active)
        names = {url.rsplit("/", 1)[1] for url in clients.sqs.list_queues()["QueueUrls"]}
        for tier in TIERS:
            assert {local_settings.queue_names[tier], local_settings.dlq_name(tier)} <= names
        assert local_settings.results_queue in names
        clients.s3.head_bucket(Bucket=local_settings.results_bucket)

    banner = capsys.readouterr().err
    assert "LOCAL MODE" in banner and "nothing is sent to AWS" in banner and endpoint in banner
    assert {k: os.environ.get(k) for k in before} == before  # the environment is restored on close


def test_a_second_process_attaches_to_the_running_backend(local_settings: Settings) -> None:
    owner = LocalBackend(local_settings, announce=False)
    owner.start()
    try:
        guest = LocalBackend(local_settings, announce=False, attach_only=True)
        assert guest.start() == owner.endpoint
        assert not guest.owned
        guest.stop()  # leaves the owner's server running
        assert make_clients(local_settings).sqs.get_queue_url(QueueName=local_settings.queue_names["basic"])
    finally:
        owner.stop()


def test_admin_commands_refuse_when_no_local_backend_runs(local_settings: Settings) -> None:
    with (
        pytest.raises(LocalBackendError, match="no local backend is running"),
        open_backend(local_settings, attach_only=True),
    ):
        pass


def test_a_port_held_by_something_else_is_refused(local_settings: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", local_settings.local_port))
        squatter.listen()
        with pytest.raises(LocalBackendError, match="not an ai-worker local backend"):
            LocalBackend(local_settings, announce=False).start()


def test_cli_submit_without_aws_or_a_running_backend_explains(
    run_cli: Callable[..., subprocess.CompletedProcess[str]], no_aws_env: dict[str, str], free_port: int
) -> None:
    env = {**no_aws_env, "AI_WORKER_LOCAL_PORT": str(free_port)}
    proc = run_cli("submit", "--type", "ocr", "--payload", "{}", env=env, replace_env=True)
    assert proc.returncode == 1
    assert "no local backend is running" in proc.stderr
    assert proc.stdout == ""
