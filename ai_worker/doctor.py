"""What this machine offers the worker: Python, torch/CUDA, onnxruntime providers, ffmpeg, the backend.

`report()` never raises: a missing or broken library is reported as such, so `ai-worker doctor` always answers.
On a CPU environment nothing in the report claims CUDA (torch built without it, no CUDA provider, no device).
`gpu_start_check` is the rule for starting a gpu worker: refuse without a CUDA device unless fallback is allowed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from typing import Any

import ai_worker
from ai_worker.config import Settings
from ai_worker.local_backend import aws_configuration, resolve_backend

FFMPEG_PROBE_TIMEOUT_S = 10.0
CUDA_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
# Where a CUDA device can be, the NVIDIA driver shows itself: on Linux its device nodes and /proc entry (inside a
# container given a GPU too), on WSL 2 the GPU bridge. On Linux or macOS without any of them there is no CUDA device.
NVIDIA_DRIVER_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/dxg")


def _no_nvidia_driver() -> bool:
    return sys.platform in ("linux", "darwin") and not any(os.path.exists(p) for p in NVIDIA_DRIVER_PATHS)


def cuda_device() -> str | None:
    """The name of CUDA device 0, or None when torch is missing, built without CUDA, or sees no device. Without an
    NVIDIA driver on the machine the answer is None without importing torch (about 2 CPU-s and 300 MB for a gpu
    worker's start check or the demo's labels, on a machine that cannot have a device)."""
    if _no_nvidia_driver():
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def gpu_start_check(allow_fallback: bool) -> tuple[bool, str]:
    """(may start, message) for a gpu worker; premium jobs on CPU only when the operator asked for it."""
    device = cuda_device()
    if device is not None:
        return True, f"gpu worker on CUDA device {device}"
    if allow_fallback:
        return True, "WARNING: no CUDA device; the gpu worker runs premium jobs on CPU (fallback allowed)"
    return False, (
        "refusing to start the gpu worker: no CUDA device is available. "
        "Set AI_WORKER_ALLOW_GPU_FALLBACK=true or pass --allow-cpu-fallback to run premium jobs on CPU."
    )


def _torch() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:
        return {"installed": False, "error": str(exc)}
    available = bool(torch.cuda.is_available())
    return {
        "installed": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,  # None on a CPU build
        "cuda_available": available,
        "device_count": torch.cuda.device_count() if available else 0,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else [],
    }


def _onnxruntime() -> dict[str, Any]:
    try:
        import onnxruntime
    except ImportError as exc:
        return {"installed": False, "error": str(exc)}
    return {
        "installed": True,
        "version": onnxruntime.__version__,
        "providers": list(onnxruntime.get_available_providers()),
    }


def _ffmpeg() -> dict[str, Any]:
    path = shutil.which("ffmpeg")
    if path is None:
        try:
            import imageio_ffmpeg  # ships a static ffmpeg in the PyPI environment

            path = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError):
            return {"path": None, "version": None}
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=FFMPEG_PROBE_TIMEOUT_S)
        version = out.stdout.splitlines()[0] if out.stdout else None
    except (OSError, subprocess.TimeoutExpired) as exc:
        version = f"unusable: {exc}"
    return {"path": path, "version": version}


def report(settings: Settings) -> dict[str, Any]:
    torch_info, ort_info = _torch(), _onnxruntime()
    has_cuda = bool(torch_info.get("cuda_build")) or any(p in CUDA_PROVIDERS for p in ort_info.get("providers", []))
    backend = resolve_backend(settings)
    return {
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "ai_worker": ai_worker.__version__,
        "environment": "gpu" if has_cuda else "cpu",
        "pixi_environment": os.environ.get("PIXI_ENVIRONMENT_NAME"),
        "torch": torch_info,
        "onnxruntime": ort_info,
        "ffmpeg": _ffmpeg(),
        "backend": {
            "selected": backend,
            "setting": settings.backend,
            "aws_configured_by": aws_configuration(),
        },
    }


def format_report(data: dict[str, Any]) -> str:
    """Human-readable `key: value` lines, nested sections indented."""
    lines: list[str] = []

    def walk(node: dict[str, Any], indent: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                lines.append(f"{indent}{key}:")
                walk(value, indent + "  ")
            else:
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                lines.append(f"{indent}{key}: {'none' if shown is None or shown == '' else shown}")

    walk(data, "")
    return "\n".join(lines)
