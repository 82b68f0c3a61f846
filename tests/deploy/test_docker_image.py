"""Opt-in (AI_WORKER_DOCKER_TESTS=1 and a Docker engine): each image's runtime stage, built around a stand-in
environment (scripts/docker-standin.sh), starts healthy, grades an OMR sheet on the embedded local backend, and on
`docker stop` drains and exits 0 inside ECS's 120 s stop timeout. A code change rebuilds only the last layer. The
compose stack (docker-compose.yml) grades a sheet submitted from the host.

The GPU image runs here without a GPU: its worker is started with AI_WORKER_ALLOW_GPU_FALLBACK and given a premium
job that needs no torch. DOCKER names the client (default `docker`); it must build with BuildKit (Debian's docker.io
client does).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "docker")
STANDIN_ENV_IMAGE = "ai-worker-standin-env:{env}"
STOP_TIMEOUT_S = 120  # ECS stopTimeout of the task definitions (deploy/)
HEALTHY_WITHIN_S = 60.0
CODE_REBUILD_WITHIN_S = 30.0
OMR_QUESTIONS = 20
OMR_CHOICES = "ABCDE"
# What each image's worker polls, and what it needs to start on a machine without a GPU.
TIER_OF = {"cpu": "basic", "gpu": "premium"}
RUN_ENV = {"cpu": [], "gpu": ["-e", "AI_WORKER_ALLOW_GPU_FALLBACK=true"]}


def _docker_answers() -> bool:
    if shutil.which(DOCKER) is None:
        return False
    return subprocess.run([DOCKER, "info"], capture_output=True, check=False).returncode == 0


pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.environ.get("AI_WORKER_DOCKER_TESTS") != "1", reason="opt-in: AI_WORKER_DOCKER_TESTS=1"),
    pytest.mark.skipif(
        os.environ.get("AI_WORKER_DOCKER_TESTS") == "1" and not _docker_answers(), reason="no Docker engine answers"
    ),
]


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False, timeout=timeout)


def build(context: Path, env: str, tag: str, revision: str = "test") -> tuple[float, str]:
    """Build the image's runtime stage around the stand-in environment, with IMAGE_TAG=`revision` as
    scripts/build.sh passes the git revision; (seconds, BuildKit's plain log)."""
    started = time.monotonic()
    run = subprocess.run(
        [DOCKER, "build", "--network", "none", "--progress", "plain", "-f", f"docker/ai-worker-{env}/Dockerfile",
         "--build-arg", f"ENV_STAGE={STANDIN_ENV_IMAGE.format(env=env)}", "--build-arg", f"IMAGE_TAG={revision}",
         "-t", tag, "."],
        cwd=context, capture_output=True, text=True, check=False, timeout=900,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return time.monotonic() - started, run.stderr


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the build context (what .dockerignore lets through), so the test can edit the code in it."""
    prepared = all(docker("image", "inspect", STANDIN_ENV_IMAGE.format(env=e)).returncode == 0 for e in TIER_OF)
    if not prepared or not (REPO / "build/models/embedding").is_dir():
        subprocess.run(["bash", str(REPO / "scripts" / "docker-standin.sh")], check=True, timeout=1200)
    root = tmp_path_factory.mktemp("context")
    for name in ("pixi.toml", "pyproject.toml", ".dockerignore", "docker"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, root / name)
    shutil.copytree(REPO / "ai_worker", root / "ai_worker", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "build/models/embedding", root / "build/models/embedding")
    return root


@pytest.fixture(scope="module", params=list(TIER_OF))
def image(request: pytest.FixtureRequest, context: Path) -> Iterator[tuple[str, str]]:
    """(environment, tag) of a freshly built image."""
    env = str(request.param)
    tag = f"ai-worker-{env}:standin-{uuid.uuid4().hex[:8]}"
    seconds, _ = build(context, env, tag)
    print(f"\n{env}: runtime stage built around the stand-in in {seconds:.1f}s")
    yield env, tag
    docker("image", "rm", "-f", tag)


def _cached(log: str, step: str) -> bool:
    """Whether BuildKit reported `step` as CACHED (its '#N [stage i/n] step' line followed by '#N CACHED')."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.endswith("] " + step):
            number = line.split(" ", 1)[0]
            return any(later == f"{number} CACHED" for later in lines[i + 1 :])
    raise AssertionError(f"step not in the build log: {step}")


def test_code_change_rebuilds_only_the_code_layer(context: Path, image: tuple[str, str]) -> None:
    """A new commit: changed code and a new revision tag. The environment and the model come from the cache."""
    env, tag = image
    probe = context / "ai_worker" / "_rebuild_probe.py"
    probe.write_text("# touched by the layer-order test\n")
    try:
        seconds, log = build(context, env, tag + "-rebuilt", revision="next-commit")
    finally:
        probe.unlink()
        docker("image", "rm", "-f", tag + "-rebuilt")
    assert _cached(log, f"COPY --from=environment /app/.pixi/envs/{env}-prod /app/.pixi/envs/{env}-prod")
    assert _cached(log, "COPY build/models/embedding /opt/models/embedding")
    assert not _cached(log, "COPY ai_worker /app/ai_worker")
    print(f"\n{env}: code-only rebuild {seconds:.1f}s")
    assert seconds < CODE_REBUILD_WITHIN_S


def _omr_sheet(path: Path) -> list[str]:
    """An answer sheet marked with the key itself; returns the key."""
    from ai_worker.jobs.omr.layout import standard_template
    from ai_worker.jobs.omr.sheet import render_sheet

    key = [OMR_CHOICES[(i * 3) % len(OMR_CHOICES)] for i in range(OMR_QUESTIONS)]
    template = standard_template(OMR_QUESTIONS, len(OMR_CHOICES), "docker image test")
    render_sheet(template, dpi=150, answers=dict(enumerate(key, start=1)), identifier="20261234").save(path)
    return key


def _health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def test_container_starts_healthy_runs_a_job_and_drains_on_stop(image: tuple[str, str], tmp_path: Path) -> None:
    env, tag = image
    container = f"ai-worker-test-{uuid.uuid4().hex[:8]}"
    # The container's own loopback only: the worker starts the embedded local backend (moto) inside it.
    started = time.monotonic()
    run = docker(
        "run", "-d", "--name", container, "--network", "none", "--health-interval", "1s",
        "-e", "AI_WORKER_BACKEND=local", *RUN_ENV[env], tag,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    try:
        while _health(container) != "healthy":
            assert time.monotonic() - started < HEALTHY_WITHIN_S, docker("logs", container).stderr[-3000:]
            assert _health(container) in ("starting", "healthy"), docker("logs", container).stderr[-3000:]
            time.sleep(0.5)
        print(f"\n{env}: start to healthy {time.monotonic() - started:.1f}s")
        assert docker("exec", container, "id", "-u").stdout.strip() == "10001"

        key = _omr_sheet(tmp_path / "sheet.png")
        assert docker("cp", str(tmp_path / "sheet.png"), f"{container}:/tmp/sheet.png").returncode == 0
        payload = json.dumps({"question_count": OMR_QUESTIONS, "n_choices": len(OMR_CHOICES), "answer_key": key})
        submit = docker(
            "exec", container, "/app/docker/entrypoint.sh", "ai-worker", "submit", "--type", "omr_grading",
            "--tier", TIER_OF[env], "--file", "/tmp/sheet.png", "--payload", payload, "--wait", "--timeout", "120",
        )  # fmt: skip
        assert submit.returncode == 0, submit.stdout + submit.stderr
        job_id, _, document_text = submit.stdout.partition("\n")
        document = json.loads(document_text)
        assert document["job_id"] == job_id.strip()
        assert document["status"] == "done" and document["tier"] == TIER_OF[env]
        assert document["result"]["score"]["correct"] == OMR_QUESTIONS
        assert document["result"]["identifier"]["value"] == "20261234"

        stopping = time.monotonic()
        assert docker("stop", "-t", str(STOP_TIMEOUT_S), container, timeout=STOP_TIMEOUT_S + 30).returncode == 0
        drained_s = time.monotonic() - stopping
        print(f"{env}: docker stop to exit {drained_s:.1f}s")
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
        assert state["ExitCode"] == 0 and not state["OOMKilled"]
        assert drained_s < STOP_TIMEOUT_S  # exited by itself, not killed at the deadline
    finally:
        docker("rm", "-f", container)


def _compose() -> list[str]:
    """The Compose client: the docker CLI plugin, else the standalone docker-compose."""
    if subprocess.run([DOCKER, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [DOCKER, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip("no Compose client (docker compose plugin or docker-compose)")
    return [legacy]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_compose_stack_grades_a_sheet_submitted_from_the_host(context: Path, tmp_path: Path) -> None:
    """docker-compose.yml as written: moto backend, queue set-up, worker-cpu; a job sent from the host is done."""
    tag = f"standin-{uuid.uuid4().hex[:8]}"
    build(context, "cpu", f"ai-worker-cpu:{tag}")
    port = _free_port()
    compose = [*_compose(), "-f", str(REPO / "docker-compose.yml"), "-p", f"aiwtest{uuid.uuid4().hex[:8]}"]
    env = {**os.environ, "AI_WORKER_TAG": tag, "AI_WORKER_BACKEND_PORT": str(port)}
    try:
        up = subprocess.run([*compose, "up", "-d"], env=env, capture_output=True, text=True, check=False, timeout=300)
        assert up.returncode == 0, up.stderr
        key = _omr_sheet(tmp_path / "sheet.png")
        payload = json.dumps({"question_count": OMR_QUESTIONS, "n_choices": len(OMR_CHOICES), "answer_key": key})
        host = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AI_WORKER_"))},
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        submit = subprocess.run(
            [sys.executable, "-m", "ai_worker", "submit", "--type", "omr_grading",
             "--file", str(tmp_path / "sheet.png"), "--payload", payload, "--wait", "--timeout", "120"],
            env=host, capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
        assert submit.returncode == 0, submit.stdout + submit.stderr
        document = json.loads(submit.stdout.partition("\n")[2])
        assert document["status"] == "done"
        assert document["result"]["score"]["correct"] == OMR_QUESTIONS
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], env=env, capture_output=True, check=False)
        docker("image", "rm", "-f", f"ai-worker-cpu:{tag}")
