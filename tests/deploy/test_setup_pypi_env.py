"""scripts/setup-pypi-env.sh --dry-run: where the CPU build of torch comes from, decided without the network (pip is
pointed at local wheel directories, PyTorch's CPU index at a local server or a closed port)."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "setup-pypi-env.sh"
TORCH_VERSION = re.search(r"^torch==(\S+)$", (REPO / "scripts" / "requirements-cpu.txt").read_text(), re.M).group(1)  # type: ignore[union-attr]


def fake_wheel(directory: Path, version: str) -> Path:
    """A minimal valid wheel called torch at `version` (pip reads only its metadata in a dry run)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr("torch/__init__.py", "")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    return path


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/cpu"  # nothing listens there any more


@pytest.fixture
def cpu_index(tmp_path: Path) -> Iterator[str]:
    """A stand-in for https://download.pytorch.org/whl/cpu: its /torch/ page lists the CPU wheels of the pin."""
    page = f'<a href="torch-{TORCH_VERSION}%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl">torch-{TORCH_VERSION}+cpu</a>'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.rstrip("/").endswith("/torch")
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(page.encode() if found else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/whl/cpu"
    server.shutdown()


def dry_run(tmp_path: Path, wheels: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    """The script in --dry-run with pip's configuration replaced: no config files, no index, `wheels` as the only
    source (None: no source at all)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TORCH_", "SETUP_PYPI_"))}
    environ |= {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PYTHON": sys.executable}
    environ |= {"TORCH_CPU_INDEX": closed_port_url()}
    if wheels is not None:
        environ["PIP_FIND_LINKS"] = str(wheels)
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", str(tmp_path / "venv")],
        capture_output=True, text=True, check=False, env={**environ, **env}, timeout=120,
    )  # fmt: skip


def torch_command(run: subprocess.CompletedProcess[str]) -> str:
    (line,) = [line for line in run.stdout.splitlines() if re.search(r" install .*torch==", line)]
    return line


def test_a_local_cpu_wheel_is_used_when_the_cpu_index_is_unreachable(tmp_path: Path) -> None:
    """This project's CI machine: pip's configuration provides torch-<pin>+cpu; download.pytorch.org is not
    reachable."""
    fake_wheel(tmp_path / "wheels", f"{TORCH_VERSION}+cpu")
    run = dry_run(tmp_path, tmp_path / "wheels")
    assert run.returncode == 0, run.stderr
    assert f"torch: configured (the configured pip sources provide torch {TORCH_VERSION}+cpu)" in run.stdout
    command = torch_command(run)
    assert command.rstrip().endswith(f"install torch=={TORCH_VERSION}") and "--index-url" not in command
    assert not (tmp_path / "venv").exists()  # a dry run creates nothing


def test_a_standard_machine_takes_torch_from_the_pytorch_cpu_index(tmp_path: Path, cpu_index: str) -> None:
    """Only the plain (on Linux: CUDA) build in the configured sources, the CPU index reachable."""
    fake_wheel(tmp_path / "wheels", TORCH_VERSION)
    run = dry_run(tmp_path, tmp_path / "wheels", TORCH_CPU_INDEX=cpu_index, SETUP_PYPI_UNAME="Linux")
    assert run.returncode == 0, run.stderr
    assert f"torch: index:{cpu_index} (PyTorch's CPU index lists torch {TORCH_VERSION}+cpu)" in run.stdout
    assert torch_command(run).rstrip().endswith(f"install --index-url {cpu_index} torch=={TORCH_VERSION}+cpu")
    # Then the rest of the mirror, which finds torch already satisfied.
    assert "install -r " in run.stdout.splitlines()[2]


def test_no_cpu_build_anywhere_stops_instead_of_installing_cuda(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "wheels", TORCH_VERSION)
    run = dry_run(tmp_path, tmp_path / "wheels", SETUP_PYPI_UNAME="Linux")
    assert run.returncode == 1
    assert f"no CPU build of torch=={TORCH_VERSION} found" in run.stderr
    assert "TORCH_INDEX_URL" in run.stderr and "CUDA build" in run.stderr
    assert "install" not in run.stdout


def test_an_index_named_by_the_user_is_used_without_probing(tmp_path: Path) -> None:
    mirror = "https://pypi.example.internal/pytorch-cpu/simple"
    run = dry_run(tmp_path, None, TORCH_INDEX_URL=mirror, SETUP_PYPI_UNAME="Linux")
    assert run.returncode == 0, run.stderr
    assert torch_command(run).rstrip().endswith(f"install --index-url {mirror} torch=={TORCH_VERSION}+cpu")


def test_macos_takes_pypi_torch_which_is_the_cpu_build_there(tmp_path: Path) -> None:
    run = dry_run(tmp_path, None, SETUP_PYPI_UNAME="Darwin")
    assert run.returncode == 0, run.stderr
    assert "torch: configured (PyPI's macOS wheels are CPU builds)" in run.stdout
    assert torch_command(run).rstrip().endswith(f"install torch=={TORCH_VERSION}")
