"""scripts/build.sh (run with --dry-run in a throwaway repository) and scripts/build.ps1 (read; run where pwsh is)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "ap-northeast-2"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository holding build.sh, the lock and the model directory: a clean build can start."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "build.sh", tmp_path / "scripts" / "build.sh")
    (tmp_path / "pixi.lock").write_text("version: 6\n")
    (tmp_path / "build" / "models" / "embedding").mkdir(parents=True)
    (tmp_path / ".gitignore").write_text("build/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return tmp_path


def build_sh(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCOUNT_ID", "AWS_REGION", "DOCKER")}
    return subprocess.run(
        ["bash", str(repo / "scripts" / "build.sh"), *args],
        capture_output=True, text=True, check=False, env={**environ, **env},
    )  # fmt: skip


def revision(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_refuses_without_the_lock_and_says_how_to_make_it(repo: Path) -> None:
    (repo / "pixi.lock").unlink()
    run = build_sh(repo, "cpu", "--dry-run")
    assert run.returncode == 2 and run.stdout == ""
    assert "pixi.lock is missing" in run.stderr and "`pixi lock`" in run.stderr and "commit" in run.stderr
    # An environment built elsewhere needs no lock here.
    assert build_sh(repo, "cpu", "--dry-run", "--env-stage", "env:cpu").returncode == 0


def test_refuses_without_the_model_directory(repo: Path) -> None:
    (repo / "build" / "models" / "embedding").rmdir()
    run = build_sh(repo, "cpu", "--dry-run")
    assert run.returncode == 2 and "build/models/embedding is missing" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say what to build"),
        (("cpu", "gpu"), "one target only"),
        (("cpu", "--bogus"), "unknown argument: --bogus"),
        (("gpu", "--multi-arch"), "cpu image only"),
        (("cpu", "--push"), "--push needs --account and --region"),
        (("both", "--env-stage", "x"), "provides one environment"),
        (("cpu", "--region"), "--region needs a value"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(repo: Path, args: tuple[str, ...], message: str) -> None:
    run = build_sh(repo, *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_cpu_build_is_tagged_with_the_revision(repo: Path) -> None:
    run = build_sh(repo, "cpu", "--dry-run")
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    rev = revision(repo)
    assert line.startswith("env DOCKER_BUILDKIT=1 docker build -f docker/ai-worker-cpu/Dockerfile")
    assert f"-t ai-worker-cpu:{rev} -t ai-worker-cpu:latest" in line and f"IMAGE_TAG={rev}" in line
    assert "--platform" not in line  # the builder's own architecture: amd64 or arm64


def test_uncommitted_changes_mark_the_tag_dirty(repo: Path) -> None:
    (repo / "new-file").write_text("x")
    assert f"ai-worker-cpu:{revision(repo)}-dirty" in build_sh(repo, "cpu", "--dry-run").stdout


def test_both_builds_cpu_then_gpu_and_gpu_is_amd64_only(repo: Path) -> None:
    lines = build_sh(repo, "both", "--dry-run").stdout.splitlines()
    assert len(lines) == 2
    assert "docker/ai-worker-cpu/Dockerfile" in lines[0]
    assert "docker build --platform linux/amd64 -f docker/ai-worker-gpu/Dockerfile" in lines[1]


def test_push_logs_in_to_ecr_then_tags_and_pushes_each_image(repo: Path) -> None:
    lines = build_sh(repo, "both", "--dry-run", "--push", AWS_ACCOUNT_ID=ACCOUNT, AWS_REGION=REGION).stdout.splitlines()
    rev = revision(repo)
    assert (
        lines[0]
        == f"aws ecr get-login-password --region {REGION} | docker login --username AWS --password-stdin {REGISTRY}"
    )
    assert f"docker push {REGISTRY}/ai-worker-cpu:{rev} " in "\n".join(lines) + " "
    assert lines[-2] == f"docker tag ai-worker-gpu:{rev} {REGISTRY}/ai-worker-gpu:{rev} "
    assert lines[-1] == f"docker push {REGISTRY}/ai-worker-gpu:{rev} "


def test_pushed_cpu_image_is_the_architecture_the_stack_runs_by_default(repo: Path) -> None:
    """`cpu --push` from any machine (an Apple-silicon laptop included) pushes what the CPU service runs unless told
    otherwise: deploy/ai-worker.yaml's default CpuArchitecture."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((REPO / "deploy" / "ai-worker.yaml").read_text(), Loader=Loader)
    default = template["Parameters"]["CpuArchitecture"]["Default"]
    run = build_sh(repo, "cpu", "--push", "--dry-run", AWS_ACCOUNT_ID=ACCOUNT, AWS_REGION=REGION)
    assert run.returncode == 0, run.stderr
    (build,) = [line for line in run.stdout.splitlines() if " build " in line]
    platform = re.search(r"--platform (\S+)", build)
    assert platform, build
    assert {"linux/amd64": "X86_64", "linux/arm64": "ARM64"}[platform.group(1)] == default
    assert '$CpuPushPlatform = "linux/amd64"' in PS1 and "elseif ($Push)" in PS1


def test_multi_arch_cpu_goes_through_buildx_and_pushes(repo: Path) -> None:
    run = build_sh(repo, "cpu", "--multi-arch", "--dry-run", "--account", ACCOUNT, "--region", REGION)
    assert run.returncode == 0, run.stderr
    build = run.stdout.splitlines()[-1]
    assert build.startswith("docker buildx build --platform linux/amd64\\,linux/arm64 ")
    assert build.endswith(f"-t {REGISTRY}/ai-worker-cpu:{revision(repo)} --push . ")


def test_env_stage_and_extra_docker_arguments_pass_through(repo: Path) -> None:
    run = build_sh(repo, "gpu", "--dry-run", "--env-stage", "packed-env:gpu", "--", "--network", "host")
    assert "--build-arg ENV_STAGE=packed-env:gpu" in run.stdout
    assert run.stdout.rstrip().endswith("--network host .")


# ---- build.ps1: PowerShell is not installed on these machines; read it, and run it where pwsh exists -------------

PS1 = (REPO / "scripts" / "build.ps1").read_text()


def test_ps1_offers_the_options_of_build_sh() -> None:
    params = set(re.findall(r"\[(?:string|switch|string\[\])\]\s+\$(\w+)", PS1))
    assert {"Target", "Push", "MultiArch", "Account", "Region", "EnvStage", "DryRun", "Extra"} <= params
    assert '[ValidateSet("cpu", "gpu", "both")]' in PS1
    sh = (REPO / "scripts" / "build.sh").read_text()
    for option in ("--push", "--multi-arch", "--account", "--region", "--env-stage", "--dry-run"):
        assert option in sh


def test_ps1_builds_the_same_images_with_the_same_refusals() -> None:
    assert "docker/$Image/Dockerfile" in PS1 and '"ai-worker-$EnvName"' in PS1
    assert '$GpuPlatform = "linux/amd64"' in PS1 and '$CpuPlatforms = "linux/amd64,linux/arm64"' in PS1
    assert 'Test-Path "pixi.lock"' in PS1 and "``pixi lock``" in PS1
    assert "aws ecr get-login-password" in PS1 and "--password-stdin" in PS1
    assert "git rev-parse --short=12 HEAD" in PS1 and '"$Revision-dirty"' in PS1
    assert PS1.count("exit 2") == 1  # every refusal goes through Fail, with build.sh's exit status


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell (pwsh) is not installed")
def test_ps1_dry_run_matches_build_sh(repo: Path) -> None:
    shutil.copy2(REPO / "scripts" / "build.ps1", repo / "scripts" / "build.ps1")
    run = subprocess.run(
        ["pwsh", "-NoProfile", "-File", str(repo / "scripts" / "build.ps1"), "gpu", "-DryRun"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "--platform linux/amd64 -f docker/ai-worker-gpu/Dockerfile" in run.stdout
