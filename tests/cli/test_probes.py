"""`check` (the container health probe), `doctor` and the gpu start rule, run as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_worker.cli import main

Cli = Callable[..., subprocess.CompletedProcess[str]]
ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("boto3", "botocore", "torch", "cv2", "numpy", "pydantic", "onnxruntime", "moto", "PIL", "google")


@pytest.mark.parametrize(("age_s", "healthy"), [(1.0, True), (600.0, False), (None, False)])
def test_check_exit_code_is_the_answer(run_cli: Cli, tmp_path: Path, age_s: float | None, healthy: bool) -> None:
    heartbeat = tmp_path / "heartbeat"
    if age_s is not None:
        heartbeat.touch()
        then = time.time() - age_s
        os.utime(heartbeat, (then, then))
    proc = run_cli("check", env={"AI_WORKER_HEARTBEAT_FILE": str(heartbeat), "AI_WORKER_HEARTBEAT_MAX_AGE_S": "90"})
    assert proc.returncode == (0 if healthy else 1), proc.stdout + proc.stderr
    assert proc.stdout.startswith("healthy" if healthy else "unhealthy")


def test_check_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ai_worker.cli import main\n"
        "rc = main(['check'])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}))\n"
    )
    env = {**os.environ, "AI_WORKER_HEARTBEAT_FILE": str(tmp_path / "missing")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]"


def _values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    elif node is not None:
        yield str(node)


def test_doctor_in_this_cpu_environment_reports_no_cuda_anywhere(run_cli: Cli) -> None:
    proc = run_cli("doctor", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["environment"] == "cpu"
    assert report["torch"]["installed"] and report["torch"]["cuda_build"] is None
    assert report["torch"]["cuda_available"] is False and report["torch"]["devices"] == []
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert not [v for v in _values(report) if "cuda" in v.lower()]  # no CUDA in any reported value
    assert report["python"]["version"] == ".".join(map(str, sys.version_info[:3]))


def test_doctor_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    """The same report as text. In this process: the command line itself is the JSON run's above, and each fresh
    interpreter would import torch and onnxruntime again (seconds of CPU)."""
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "cuda_available: False" in out and "environment: cpu" in out


def test_gpu_worker_refuses_to_start_without_cuda_unless_told_to_fall_back(run_cli: Cli) -> None:
    env = {"AI_WORKER_ALLOW_GPU_FALLBACK": "false", "AI_WORKER_BACKEND": "aws", "AI_WORKER_TIER": ""}
    proc = run_cli("run", "--kind", "gpu", env=env, timeout=120)
    assert proc.returncode == 1
    assert "refusing to start the gpu worker" in proc.stderr and "--allow-cpu-fallback" in proc.stderr
    assert "deprecated" not in proc.stderr


@pytest.fixture
def run_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[..., Any]:
    """`ai-worker run ARGS` through the CLI's `main` in this process, with AI_WORKER_* from `env` only: the ways of
    choosing the worker kind, each ending at the gpu start check above (one fresh interpreter each would import
    torch again). A run that got past the check fails the test instead of starting a worker. Returns the exit code
    and what an operator would read on stderr: what was printed there and what was logged (which a fresh
    interpreter, with no logging set up yet, writes to stderr; here pytest holds it)."""
    import ai_worker.local_backend

    def no_worker(*args: object, **kwargs: object) -> None:
        raise AssertionError("the worker was started")

    monkeypatch.setattr(ai_worker.local_backend, "open_backend", no_worker)

    def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        for name in [k for k in os.environ if k.startswith("AI_WORKER_")]:
            monkeypatch.delenv(name)
        for name, value in {"AI_WORKER_ALLOW_GPU_FALLBACK": "false", "AI_WORKER_BACKEND": "aws", **env}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        caplog.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            code = main(["run", *argv])
        return code, capsys.readouterr().err + caplog.text

    return run


def test_the_kind_setting_is_the_default_of_the_kind_option(run_in_process: Callable[..., Any]) -> None:
    code, err = run_in_process([], {"AI_WORKER_KIND": "gpu"})
    assert code == 1 and "refusing to start the gpu worker" in err and "deprecated" not in err


@pytest.mark.parametrize(
    ("argv", "env", "old"),
    [(["--tier", "gpu"], {}, "--tier"), ([], {"AI_WORKER_TIER": "gpu"}, "AI_WORKER_TIER")],
)
def test_the_old_spelling_of_the_worker_kind_still_works_with_a_warning(
    run_in_process: Callable[..., Any], argv: list[str], env: dict[str, str], old: str
) -> None:
    code, err = run_in_process(argv, env)
    assert code == 1 and "refusing to start the gpu worker" in err  # it chose the gpu kind
    assert old in err and "deprecated" in err


def test_cuda_is_looked_for_only_where_an_nvidia_driver_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without a driver node torch is not consulted (not even imported); with one, torch's answer is the answer."""
    from types import SimpleNamespace

    from ai_worker import doctor

    if sys.platform not in ("linux", "darwin"):
        pytest.skip("the driver check applies on Linux and macOS")
    asked: list[str] = []

    def available() -> bool:
        asked.append("is_available")
        return True

    fake_cuda = SimpleNamespace(is_available=available, get_device_name=lambda index: f"Fake GPU {index}")
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=fake_cuda))
    monkeypatch.setattr(doctor, "NVIDIA_DRIVER_PATHS", (str(tmp_path / "nvidiactl"),))
    assert doctor.cuda_device() is None and asked == []
    assert doctor.gpu_start_check(allow_fallback=False)[0] is False and asked == []
    (tmp_path / "nvidiactl").touch()
    assert doctor.cuda_device() == "Fake GPU 0" and asked == ["is_available"]
    assert doctor.gpu_start_check(allow_fallback=False) == (True, "gpu worker on CUDA device Fake GPU 0")


def test_gpu_fallback_is_explicit_and_warned() -> None:
    from ai_worker.doctor import gpu_start_check

    allowed, message = gpu_start_check(allow_fallback=True)
    assert allowed and message.startswith("WARNING") and "CPU" in message
    allowed, message = gpu_start_check(allow_fallback=False)
    assert not allowed


def test_omr_tools_load_only_when_omr_is_the_command(run_cli: Cli, tmp_path: Path) -> None:
    code = "import sys; from ai_worker.cli import build_parser; build_parser(['check']); print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "ai_worker.jobs.omr" not in loaded.stdout
    proc = run_cli("omr", "sheet", "--questions", "10", "--dpi", "100", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.suffix for p in tmp_path.iterdir())
    assert written == [".json", ".pdf", ".png"]
    assert "sheet" in run_cli("omr", "--help").stdout
