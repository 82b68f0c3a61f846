""".github/workflows/ci.yml against GitHub's workflow schema (check-jsonschema's vendored copy, offline), the jobs
issue 2 asks for, and one pixi version everywhere pixi is named (pixi.toml's requires-pixi is the source)."""

from __future__ import annotations

import re
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


def test_lock_is_checked_or_proposed_and_must_be_committed(workflow: dict[str, Any]) -> None:
    lock = workflow["jobs"]["lock"]
    runs = _runs(lock)
    assert "pixi lock --check" in runs and "pixi lock" in runs
    upload = next(s for s in lock["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "pixi.lock"
    committed = workflow["jobs"]["lock-committed"]
    assert committed["if"] == "always() && needs.lock.outputs.missing == 'true'"
    assert any("exit 1" in r for r in _runs(committed))


def test_tests_lint_and_budgets_in_both_environments(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    cpu = _runs(jobs["test-cpu"])
    assert {"pixi run -e cpu test", "pixi run -e cpu lint", "pixi run -e cpu lock-report"} <= set(cpu)
    assert "pixi run -e gpu test" in _runs(jobs["test-gpu"])
    assert re.fullmatch(r"12\.\d+", jobs["test-gpu"]["env"]["CONDA_OVERRIDE_CUDA"])
    for task in ("test", "lint", "lock-report"):
        assert task in MANIFEST["tasks"]
    for name in ("test-cpu", "test-gpu", "image-cpu"):
        assert jobs[name]["needs"] == "lock"
        download = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
        assert download["with"]["name"] == "pixi-lock"


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
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"(?:pixi[: ]|pixi-version: )v?(\d+\.\d+\.\d+)", readme))
    assert named == {version}
