"""docker-compose.yml: a local SQS/S3 backend, the queue/bucket set-up, worker-cpu, and worker-gpu under `gpu`.

Structure is checked with PyYAML (always); `docker compose config` / `docker-compose config` validates it against
the Compose specification where a Compose client is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
STOP_TIMEOUT = "120s"  # ECS stopTimeout of the task definitions


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_backend_is_a_moto_server_on_host_loopback(services: dict[str, Any]) -> None:
    backend = services["backend"]
    assert backend["command"][:3] == ["python", "-m", "moto.server"]
    assert all(port.startswith("127.0.0.1:") for port in backend["ports"])
    assert "healthcheck" in backend


def test_queues_and_buckets_are_created_before_any_worker(services: dict[str, Any]) -> None:
    init = services["init"]
    assert init["depends_on"]["backend"]["condition"] == "service_healthy"
    script = init["command"][-1]
    assert "create_queues(" in script and "create_buckets(" in script
    for name in ("worker-cpu", "worker-gpu"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_workers_use_their_image_and_the_local_endpoint_with_production_stop(
    services: dict[str, Any], kind: str
) -> None:
    worker = services[f"worker-{kind}"]
    assert worker["image"].startswith(f"ai-worker-{kind}:")
    env = worker["environment"]
    assert env["AWS_ENDPOINT_URL"] == "http://backend:5000"
    assert env["AI_WORKER_BACKEND"] == "aws"  # the production code path, pointed at the backend by the SDK
    assert env["AI_WORKER_KIND"] == kind
    assert worker["stop_signal"] == "SIGTERM"
    assert worker["stop_grace_period"] == STOP_TIMEOUT
    assert worker["init"] is True


def test_gpu_worker_only_under_the_gpu_profile_with_an_nvidia_reservation(services: dict[str, Any]) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert all("profiles" not in s for name, s in services.items() if name != "worker-gpu")


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_client_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no Compose client (docker compose plugin or docker-compose) installed")
    for profile in ([], ["--profile", "gpu"]):
        run = subprocess.run(
            [*client, "-f", str(COMPOSE), *profile, "config", "-q"], capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stderr
