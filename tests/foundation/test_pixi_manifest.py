"""pixi.toml: schema-valid, two environments with the right build pins, tasks, and no drift from the PyPI mirror."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomli
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "schemas" / "pixi-manifest.schema.json"
MIRROR = ROOT / "scripts" / "requirements-cpu.txt"

# conda-forge name -> PyPI name(s) in the mirror. None: a conda-only package with no PyPI counterpart to mirror.
CONDA_TO_PYPI: dict[str, str | None] = {
    "python": None,  # the venv's interpreter
    "pytorch": "torch",
    "pytorch-cpu": "torch",  # metapackage selecting the CPU build of pytorch
    "opencv": "opencv-python-headless",
    "ffmpeg": "imageio-ffmpeg",  # ships an ffmpeg binary; the setup script puts it on the venv's PATH
}
# Mirror packages whose version is not comparable with the conda package they stand in for.
VERSION_NOT_COMPARABLE = {"imageio-ffmpeg"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    # tomli (TOML 1.1) rather than tomllib: pixi manifests may use TOML 1.1 syntax.
    return tomli.loads((ROOT / "pixi.toml").read_text())


def test_manifest_validates_against_pixi_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_workspace_channels_platforms_and_pixi_pin(manifest: dict[str, Any]) -> None:
    assert "project" not in manifest, "use [workspace]; [project] is deprecated"
    ws = manifest["workspace"]
    assert ws["channels"] == ["conda-forge"]
    plain = {p for p in ws["platforms"] if isinstance(p, str)}
    assert {"linux-64", "linux-aarch64"} <= plain
    assert re.fullmatch(r">=(\d+\.\d+\.\d+),<\d+\.\d+", ws["requires-pixi"])


def _rich_platforms(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in manifest["workspace"]["platforms"] if isinstance(p, dict)}


def test_gpu_feature_is_linux64_with_cuda12_in_current_syntax(manifest: dict[str, Any]) -> None:
    assert "system-requirements" not in manifest, "deprecated since pixi 0.72: declare cuda on a platform"
    for name, feature in manifest["feature"].items():
        assert "system-requirements" not in feature, f"feature {name} uses the deprecated system-requirements"
    rich = _rich_platforms(manifest)
    gpu_platforms = manifest["feature"]["gpu"]["platforms"]
    assert len(gpu_platforms) == 1 and gpu_platforms[0] in rich
    platform = rich[gpu_platforms[0]]
    assert platform["platform"] == "linux-64"
    assert str(platform["cuda"]).split(".")[0] == "12"


def test_feature_platforms_are_declared(manifest: dict[str, Any]) -> None:
    declared = {p for p in manifest["workspace"]["platforms"] if isinstance(p, str)} | set(_rich_platforms(manifest))
    for name, feature in manifest["feature"].items():
        for platform in feature.get("platforms", []):
            assert platform in declared, f"feature {name} names undeclared platform {platform}"


def test_two_environments_in_separate_solve_groups(manifest: dict[str, Any]) -> None:
    envs = manifest["environments"]
    assert {"cpu", "gpu"} <= set(envs)
    assert envs["cpu"]["solve-group"] != envs["gpu"]["solve-group"]
    assert "cpu" in envs["cpu"]["features"] and "gpu" not in envs["cpu"]["features"]
    assert "gpu" in envs["gpu"]["features"] and "cpu" not in envs["gpu"]["features"]
    for env in envs.values():
        for feature in env["features"]:
            assert feature in manifest["feature"], f"environment uses undefined feature {feature}"


def _spec(dep: str | dict[str, Any]) -> tuple[str, str | None]:
    """(version, build) of a conda dependency value."""
    if isinstance(dep, str):
        return dep, None
    return dep.get("version", "*"), dep.get("build")


def test_build_pins_shrink_the_environments(manifest: dict[str, Any]) -> None:
    cpu = manifest["feature"]["cpu"]["dependencies"]
    gpu = manifest["feature"]["gpu"]["dependencies"]
    base = manifest["dependencies"]
    assert "pytorch-cpu" in cpu and "pytorch-gpu" in gpu
    assert _spec(cpu["pytorch"])[1] == "cpu_generic*"  # OpenBLAS, not MKL
    gpu_build = _spec(gpu["pytorch"])[1] or ""
    assert gpu_build.startswith("cuda12") and "generic" in gpu_build
    assert _spec(cpu["onnxruntime"])[1] == "*cpu"
    assert _spec(gpu["onnxruntime"])[1] == "*cuda"
    assert (_spec(base["opencv"])[1] or "").startswith("headless")
    assert (_spec(base["ffmpeg"])[1] or "").startswith("lgpl")


def test_every_build_pin_says_why() -> None:
    """Each line pinning a build string is preceded by (or carries) a comment explaining the choice."""
    lines = (ROOT / "pixi.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if "build =" in line and not line.lstrip().startswith("#"):
            assert "#" in line or lines[i - 1].lstrip().startswith("#"), f"pixi.toml:{i + 1} pins a build silently"


def test_cpu_side_has_no_cuda_packages(manifest: dict[str, Any]) -> None:
    names = set(manifest["dependencies"]) | set(manifest["feature"]["cpu"]["dependencies"])
    names |= set(manifest["feature"]["test"]["dependencies"])
    cuda_like = {n for n in names if re.search(r"cuda|cudnn|nccl|nvidia|pytorch-gpu", n)}
    assert not cuda_like


@pytest.mark.parametrize("task", ["worker", "test", "lint", "demo", "bench", "doctor", "check", "lock-report"])
def test_routine_tasks_exist_for_both_environments(manifest: dict[str, Any], task: str) -> None:
    # Tasks in the default feature are available in every environment (cpu and gpu both include it).
    assert task in manifest["tasks"]
    for env in manifest["environments"].values():
        assert not env.get("no-default-feature", False)


def test_every_cli_command_has_a_task(manifest: dict[str, Any]) -> None:
    import argparse

    from ai_worker.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = [task["cmd"] if isinstance(task, dict) else task for task in manifest["tasks"].values()]
    for name in subparsers.choices:
        assert any(cmd.startswith(f"ai-worker {name}") for cmd in commands), f"no pixi task runs `ai-worker {name}`"


def test_task_scripts_exist(manifest: dict[str, Any]) -> None:
    for name, task in manifest["tasks"].items():
        cmd = task["cmd"] if isinstance(task, dict) else task
        for path in re.findall(r"\b((?:bench|scripts)/[\w./-]+\.(?:py|sh))", cmd):
            assert (ROOT / path).is_file(), f"task {name} runs missing {path}"


def _mirror() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in MIRROR.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"mirror pins exact versions: {line}"
            pins[req.name.lower()] = spec.version
    return pins


def _cpu_environment_specs(manifest: dict[str, Any]) -> dict[str, str]:
    """PyPI name -> conda version spec for everything the cpu environment installs."""
    conda: dict[str, Any] = dict(manifest["dependencies"])
    for feature in manifest["environments"]["cpu"]["features"]:
        conda.update(manifest["feature"][feature].get("dependencies", {}))
    specs: dict[str, str] = {}
    for name, dep in conda.items():
        pypi = CONDA_TO_PYPI.get(name, name)
        if pypi is not None:
            specs[pypi] = _spec(dep)[0]
    pypi_deps: dict[str, Any] = dict(manifest.get("pypi-dependencies", {}))
    for feature in manifest["environments"]["cpu"]["features"]:
        pypi_deps.update(manifest["feature"][feature].get("pypi-dependencies", {}))
    for name, dep in pypi_deps.items():
        if name != "ai-worker":  # the project itself, installed editable by the setup script
            specs[name] = dep if isinstance(dep, str) else dep.get("version", "*")
    return specs


def test_pypi_mirror_has_the_same_packages_as_the_cpu_environment(manifest: dict[str, Any]) -> None:
    expected = set(_cpu_environment_specs(manifest))
    mirrored = set(_mirror())
    assert expected - mirrored == set(), "in pixi.toml but missing from scripts/requirements-cpu.txt"
    assert mirrored - expected == set(), "in scripts/requirements-cpu.txt but not in pixi.toml"


def test_pypi_mirror_versions_satisfy_the_manifest(manifest: dict[str, Any]) -> None:
    pins = _mirror()
    for name, conda_spec in _cpu_environment_specs(manifest).items():
        if name in VERSION_NOT_COMPARABLE or conda_spec in ("*", ""):
            continue
        pep440 = conda_spec if conda_spec[0] in "<>=!~" else f"=={conda_spec}"
        assert Version(pins[name]) in SpecifierSet(pep440), f"{name}=={pins[name]} violates pixi.toml {conda_spec}"


def test_torch_is_installed_first_and_pinned() -> None:
    first = next(line for line in MIRROR.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#"))
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+", first.strip())
    script = (ROOT / "scripts" / "setup-pypi-env.sh").read_text()
    assert script.index("torch_pin") < script.index('-r "$requirements"')


def test_this_environment_matches_the_mirror_pins() -> None:
    """The venv the tests run in was built from the mirror list (not from a stale or hand-made install)."""
    from importlib.metadata import PackageNotFoundError, version

    if "/.pixi/envs/" in sys.prefix:
        pytest.skip("running in a pixi environment, whose versions pixi.lock fixes")
    mismatched = {}
    for name, pinned in _mirror().items():
        try:
            installed = Version(version(name)).base_version
        except PackageNotFoundError:
            installed = "missing"
        if installed != Version(pinned).base_version:
            mismatched[name] = (pinned, installed)
    assert not mismatched, f"(pinned, installed): {mismatched}"


def test_environments_select_their_worker_tier(manifest: dict[str, Any]) -> None:
    assert manifest["feature"]["cpu"]["activation"]["env"]["AI_WORKER_TIER"] == "cpu"
    assert manifest["feature"]["gpu"]["activation"]["env"]["AI_WORKER_TIER"] == "gpu"
