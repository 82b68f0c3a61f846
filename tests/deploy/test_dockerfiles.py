"""The two Dockerfiles, read as instructions: hadolint-clean, multi-stage, layer order, production settings, and the
production environment (no test tools) that pixi.toml names for each image."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENVS = ("cpu", "gpu")
# The pixi environment each image installs, from pixi.toml's [tool.ai-worker.images] (cpu-prod, gpu-prod).
IMAGE_ENV = {
    image.removeprefix("ai-worker-"): env
    for image, env in tomllib.loads((REPO / "pixi.toml").read_text())["tool"]["ai-worker"]["images"].items()
}


def instructions(env: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (REPO / "docker" / f"ai-worker-{env}" / "Dockerfile").read_text()
    logical = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    result = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def stages(env: str) -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage name (the text after AS)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current = "<preamble>"
    for keyword, args in instructions(env):
        if keyword == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else args
            out[current] = []
        out.setdefault(current, []).append((keyword, args))
    return out


def arg_default(env: str, name: str) -> str:
    return next(a.split("=", 1)[1] for k, a in instructions(env) if k == "ARG" and a.startswith(name + "="))


@pytest.mark.parametrize("env", ENVS)
def test_hadolint_clean(env: str, tool: Callable[[str], str]) -> None:
    dockerfile = REPO / "docker" / f"ai-worker-{env}" / "Dockerfile"
    run = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_each_image_installs_the_production_twin_of_its_environment() -> None:
    manifest = tomllib.loads((REPO / "pixi.toml").read_text())
    assert IMAGE_ENV == {"cpu": "cpu-prod", "gpu": "gpu-prod"}
    for kind, prod in IMAGE_ENV.items():
        assert "test" not in manifest["environments"][prod]["features"]
        runs = " ".join(a for k, a in stages(kind)["env"] if k == "RUN")
        assert re.findall(r"pixi install --locked -e (\S+)", runs) == [prod]


@pytest.mark.parametrize("env", ENVS)
def test_env_stage_installs_only_the_locked_environment(env: str) -> None:
    prod = IMAGE_ENV[env]
    build = stages(env)["env"]
    assert build[0][1].startswith("${PIXI_IMAGE}")
    copies = [a for k, a in build if k == "COPY"]
    # The slow layer depends on the solve inputs only, never on the source.
    assert copies == ["pixi.toml pixi.lock pyproject.toml ./"]
    runs = " ".join(a for k, a in build if k == "RUN")
    assert f"pixi install --locked -e {prod} --skip ai-worker" in runs
    assert "--mount=type=cache" in runs
    hook = (
        f"pixi shell-hook --locked --no-install --no-completions -e {prod} -s bash > /app/.pixi/envs/{prod}/activate.sh"
    )
    assert hook in runs
    assert "compileall" in runs


@pytest.mark.parametrize("env", ENVS)
def test_bases_are_pinned_slim_debian_of_one_release_and_never_nvidia(env: str) -> None:
    pixi_image = arg_default(env, "PIXI_IMAGE")
    runtime_image = arg_default(env, "RUNTIME_IMAGE")
    match = re.fullmatch(r"ghcr\.io/prefix-dev/pixi:(\d+\.\d+\.\d+)-(\w+)-slim", pixi_image)
    assert match, pixi_image
    assert runtime_image == f"debian:{match.group(2)}-slim"  # same glibc in build and runtime
    assert not any("nvidia/cuda" in a for k, a in instructions(env) if k in ("FROM", "ARG"))


@pytest.mark.parametrize("env", ENVS)
def test_environment_stage_is_replaceable(env: str) -> None:
    prod = IMAGE_ENV[env]
    assert arg_default(env, "ENV_STAGE") == "env"
    assert ("FROM", "${ENV_STAGE} AS environment") in instructions(env)
    runtime = stages(env)["runtime"]
    # Only the environment crosses from the build side: no pixi, no package cache.
    assert [a for k, a in runtime if k == "COPY" and a.startswith("--from")] == [
        f"--from=environment /app/.pixi/envs/{prod} /app/.pixi/envs/{prod}"
    ]


@pytest.mark.parametrize("env", ENVS)
def test_runtime_layers_env_then_model_then_code_last(env: str) -> None:
    runtime = stages(env)["runtime"]
    copies = [a for k, a in runtime if k == "COPY"]
    order = [
        next(i for i, a in enumerate(copies) if a.startswith("--from=environment")),
        next(i for i, a in enumerate(copies) if "/opt/models/embedding" in a),
        next(i for i, a in enumerate(copies) if a == "ai_worker /app/ai_worker"),
    ]
    assert order == sorted(order)
    assert copies[-1] == "ai_worker /app/ai_worker"
    # The model comes from the build context, named by a build arg; nothing is fetched at build or run time.
    assert "${EMBEDDING_MODEL_DIR} /opt/models/embedding" in copies
    assert not any(re.search(r"curl|wget|huggingface|hf_hub", a) for k, a in runtime if k == "RUN")
    last_code_change = max(i for i, (k, a) in enumerate(runtime) if k == "COPY")
    assert all(k != "RUN" for k, _ in runtime[last_code_change:]), "nothing may run after the source is copied"


@pytest.mark.parametrize("env", ENVS)
def test_production_settings_user_signal_and_health(env: str) -> None:
    runtime = stages(env)["runtime"]
    env_text = " ".join(a for k, a in runtime if k == "ENV")
    for setting in (
        "AI_WORKER_BACKEND=aws",
        f"AI_WORKER_KIND={env}",
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "AI_WORKER_EMBEDDING_MODEL=/opt/models/embedding",
        f"APP_ENV_PREFIX=/app/.pixi/envs/{IMAGE_ENV[env]}",
    ):
        assert setting in env_text
    assert "AI_WORKER_TIER" not in env_text  # the deprecated name of AI_WORKER_KIND
    user = next(a for k, a in runtime if k == "USER")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "numeric, non-root"
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    health = next(a for k, a in runtime if k == "HEALTHCHECK")
    assert health.endswith('CMD ["/app/docker/entrypoint.sh", "ai-worker", "check"]')
    assert ("ENTRYPOINT", '["/app/docker/entrypoint.sh"]') in runtime
    assert ("CMD", f'["ai-worker", "run", "--kind", "{env}"]') in runtime


@pytest.mark.parametrize("env", ENVS)
def test_the_command_is_one_the_cli_accepts(env: str) -> None:
    """CMD goes through the real argument parser: a renamed or dropped option fails here, not on ECS."""
    from ai_worker.cli import build_parser

    cmd = json.loads(next(a for k, a in stages(env)["runtime"] if k == "CMD"))
    assert cmd[0] == "ai-worker"
    args = build_parser().parse_args(cmd[1:])
    assert env in vars(args).values()


def test_cuda_override_only_in_the_gpu_build_stage() -> None:
    for env in ENVS:
        for stage, body in stages(env).items():
            has_override = any("CONDA_OVERRIDE_CUDA" in a for k, a in body if k == "ENV")
            assert has_override == (env == "gpu" and stage == "env"), (env, stage)


def test_dockerignore_sends_only_what_the_images_use() -> None:
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {"pixi.toml", "pixi.lock", "pyproject.toml", "ai_worker", "docker/entrypoint.sh", "build/models"}
    # Every file a COPY names from the context is allowed through.
    for env in ENVS:
        for keyword, args in instructions(env):
            if keyword == "COPY" and not args.startswith("--from"):
                sources = args.split()[:-1]
                for source in sources:
                    source = "build/models" if source == "${EMBEDDING_MODEL_DIR}" else source.rstrip("/")
                    assert any(source == a or source.startswith(a + "/") for a in allowed), source


def test_the_two_dockerfiles_differ_only_where_the_gpu_needs_it() -> None:
    """Dockerfiles have no include: this keeps the twins in step (environment name, tier, CUDA additions only)."""
    cuda_only = ("ARG CUDA_VERSION", "ENV CONDA_OVERRIDE_CUDA=${CUDA_VERSION}")

    def normalized(env: str) -> list[str]:
        lines = [" ".join(f"{k} {a}".replace(env, "<env>").split()) for k, a in instructions(env)]
        lines = [line.replace(" NVIDIA_DRIVER_CAPABILITIES=compute,utility", "") for line in lines]
        return [line for line in lines if not line.startswith(cuda_only)]

    assert normalized("gpu") == normalized("cpu")
