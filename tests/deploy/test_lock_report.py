"""scripts/lock_report.py against real pixi-written locks (v6) and a hand-made v7 lock with a rich-platform alias."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
REFERENCE_LOCKS = REPO.parent / "shared" / "conda" / "reference"

_spec = importlib.util.spec_from_file_location("lock_report", REPO / "scripts" / "lock_report.py")
assert _spec and _spec.loader
lock_report = importlib.util.module_from_spec(_spec)
sys.modules["lock_report"] = lock_report  # dataclasses resolve their module by name
_spec.loader.exec_module(lock_report)

SINGLE = REFERENCE_LOCKS / "pixi-v6-reference.lock"  # pytorch with CUDA 12.8/12.9 builds
MULTI = REFERENCE_LOCKS / "pixi-v6-multi-env-pypi-reference.lock"  # 14 environments, some with CUDA

needs_reference = pytest.mark.skipif(not SINGLE.is_file(), reason="reference locks live in /work/shared/conda")

V7_LOCK = textwrap.dedent(
    """\
    version: 7
    platforms:
    - name: linux-aarch64
    - name: p1
      subdir: linux-64
      virtual-packages:
      - __cuda=12
    environments:
      cpu:
        channels:
        - url: https://conda.anaconda.org/conda-forge/
        packages:
          linux-aarch64:
          - conda: https://conda.anaconda.org/conda-forge/linux-aarch64/python-3.12.11-h1_cpython.conda
          - conda: https://conda.anaconda.org/conda-forge/linux-aarch64/libcublas-12.9.1.4-h2_0.conda
          - pypi: ./
      gpu:
        channels:
        - url: https://conda.anaconda.org/conda-forge/
        packages:
          p1:
          - conda: https://conda.anaconda.org/conda-forge/linux-64/python-3.12.11-h3_cpython.conda
          - conda: https://conda.anaconda.org/conda-forge/linux-64/pytorch-2.8.0-cuda129_generic_py312_h4_0.conda
          - conda: .
    packages:
    - conda: https://conda.anaconda.org/conda-forge/linux-aarch64/python-3.12.11-h1_cpython.conda
      size: 31000000
    - conda: https://conda.anaconda.org/conda-forge/linux-aarch64/libcublas-12.9.1.4-h2_0.conda
      size: 400000000
    - conda: https://conda.anaconda.org/conda-forge/linux-64/python-3.12.11-h3_cpython.conda
      size: 32000000
    - conda: https://conda.anaconda.org/conda-forge/linux-64/pytorch-2.8.0-cuda129_generic_py312_h4_0.conda
      size: 25000000
    - conda: .
      name: ai-worker-source
      version: 0.1.0
      build: pyh0
    - pypi: ./
      name: ai-worker
      version: 0.1.0
    """
)


def _sizes_by_hand(lock: Path, environment: str, platform: str) -> tuple[int, int]:
    """Package count and summed `size` for one slice, computed straight from the YAML."""
    data = yaml.safe_load(lock.read_text())
    sizes = {p["conda"]: p.get("size", 0) for p in data["packages"] if "conda" in p}
    refs = data["environments"][environment]["packages"][platform]
    return len(refs), sum(sizes.get(r.get("conda"), 0) for r in refs)


@needs_reference
def test_v6_totals_are_the_sum_of_archive_sizes() -> None:
    for piece in lock_report.load(SINGLE):
        count, total = _sizes_by_hand(SINGLE, piece.environment, piece.platform)
        assert len(piece.packages) == count
        assert piece.download_bytes == total
    assert {p.platform for p in lock_report.load(SINGLE)} == {"linux-64", "osx-arm64", "win-64"}


@needs_reference
def test_cuda_is_found_exactly_in_the_cuda_environments() -> None:
    linux = {p.environment: p for p in lock_report.load(MULTI) if p.platform == "linux-64"}
    assert len(linux) == 14
    for env, piece in linux.items():
        names = {c.name for c in piece.cuda}
        assert bool(names) == ("cuda" in env), (env, sorted(names))
    assert {"cudnn", "nccl", "libcublas", "cuda-cudart"} <= {c.name for c in linux["tests-cuda"].cuda}
    # libcurl shares the `libcu` prefix but is no CUDA library.
    assert "libcurl" not in {c.name for c in linux["tests-cuda"].cuda}


@needs_reference
def test_cuda_build_of_pytorch_in_a_cuda_free_environment_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert lock_report.main([str(SINGLE), "--manifest", "/nonexistent", "--cuda-free", "default"]) == 1
    err = capsys.readouterr().err
    assert "default/linux-64 must be CUDA-free" in err and "libcudnn" in err and "pytorch" in err
    # osx-arm64 is the cpu_generic build: no complaint about it.
    assert "osx-arm64" not in err


@needs_reference
def test_budget_from_the_manifest_decides_the_exit_status(tmp_path: Path) -> None:
    manifest = tmp_path / "pixi.toml"
    manifest.write_text('[tool.ai-worker.size-budgets]\ndefault = "3GiB"\n')
    # linux-64 downloads 3.55 GiB, win-64 2.73 GiB: one platform over, so the run fails.
    assert lock_report.main([str(SINGLE), "--manifest", str(manifest), "--cuda-free", "none"]) == 1
    manifest.write_text('[tool.ai-worker.size-budgets]\ndefault = "4GiB"\n')
    assert lock_report.main([str(SINGLE), "--manifest", str(manifest), "--cuda-free", "none"]) == 0


def test_v7_aliases_relative_paths_and_unsized_packages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "pixi.lock"
    lock.write_text(V7_LOCK)
    pieces = {(p.environment, p.platform): p for p in lock_report.load(lock)}
    gpu = pieces[("gpu", "p1")]
    assert gpu.subdir == "linux-64"
    assert gpu.download_bytes == 32_000_000 + 25_000_000
    assert [p.name for p in gpu.unsized] == ["ai-worker-source"]
    assert [p.name for p in gpu.cuda] == ["pytorch"]  # a CUDA build string, not a CUDA name
    cpu = pieces[("cpu", "linux-aarch64")]
    assert cpu.download_bytes == 431_000_000
    assert [p.name for p in cpu.largest(1)] == ["libcublas"]

    (tmp_path / "pixi.toml").write_text('[tool.ai-worker.size-budgets]\ncpu = "450MiB"\ngpu = "4GiB"\n')
    assert lock_report.main([str(lock)]) == 1
    out, err = capsys.readouterr()
    assert "== gpu / p1 (linux-64): 3 packages, 54.4 MiB  budget 4.00 GiB: ok" in out
    assert "cpu/linux-aarch64 must be CUDA-free but holds: libcublas" in err


def test_missing_lock_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lock_report.main([str(tmp_path / "pixi.lock")]) == 2
    assert "`pixi lock`" in capsys.readouterr().err


def test_unknown_lock_version_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "pixi.lock"
    lock.write_text("version: 5\nenvironments: {}\npackages: []\n")
    assert lock_report.main([str(lock)]) == 2
    assert "version 5" in capsys.readouterr().err


def test_budgets_of_the_real_manifest() -> None:
    assert lock_report.load_budgets(REPO / "pixi.toml") == {"cpu": 450 * 2**20, "gpu": 4 * 2**30}


@pytest.mark.parametrize(
    ("text", "expected"), [("450MiB", 471_859_200), ("4GiB", 4 * 2**30), ("1.5 GB", 1_500_000_000), ("1024", 1024)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert lock_report.parse_size(text) == expected


def test_parse_size_rejects_unknown_units() -> None:
    with pytest.raises(ValueError, match="not a size"):
        lock_report.parse_size("4 bananas")
