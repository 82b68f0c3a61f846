#!/usr/bin/env bash
# Create a virtualenv from PyPI that mirrors the pixi `cpu` environment, and install ai-worker into it.
# For machines that cannot reach conda-forge. Usage: bash scripts/setup-pypi-env.sh [VENV_DIR]   (default .venv)
# Idempotent: rerunning on an existing venv only installs what is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv}"
requirements="$root/scripts/requirements-cpu.txt"
python="${PYTHON:-python3}"

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ai-worker needs Python >= 3.11")'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)

# torch first and alone, pinned: an unpinned or later-resolved torch pulls a multi-GB CUDA build.
torch_pin="$(grep -E '^torch==' "$requirements")"
"${pip[@]}" install "$torch_pin"
"${pip[@]}" install -r "$requirements"
"${pip[@]}" install --no-deps -e "$root"

# The pixi environment has conda-forge's `ffmpeg` on PATH; here imageio-ffmpeg's binary plays that part.
ffmpeg_exe="$("$venv/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')"
ln -sf "$ffmpeg_exe" "$venv/bin/ffmpeg"

echo "PyPI mirror environment ready: $venv (activate with: . $venv/bin/activate)"
