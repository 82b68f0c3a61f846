#!/usr/bin/env bash
# Create a virtualenv from PyPI that mirrors the pixi `cpu` environment, and install ai-worker into it.
# For machines that cannot reach conda-forge. Usage: bash scripts/setup-pypi-env.sh [--dry-run] [VENV_DIR]
# (default VENV_DIR: .venv). Idempotent: rerunning on an existing venv only installs what is missing.
#
# torch is installed first and alone, as the CPU build: on Linux x86_64 the `torch` of the public PyPI index is the
# CUDA build (it pulls several GB of nvidia-* packages). Where the CPU build comes from, first match wins:
#   1. TORCH_INDEX_URL is set: that index (a mirror of PyTorch's CPU index; "none" disables the index entirely);
#   2. the venv already holds torch==<pin>+cpu: kept;
#   3. macOS: PyPI's torch wheels are CPU builds: the configured pip sources;
#   4. the configured pip sources (pip.conf, PIP_* variables: a company mirror, a find-links directory with a
#      torch-<pin>+cpu wheel) resolve the pin to a +cpu build: those sources;
#   5. PyTorch's CPU index (TORCH_CPU_INDEX, default https://download.pytorch.org/whl/cpu) lists torch-<pin>+cpu:
#      `pip install --index-url <it> torch==<pin>+cpu`;
#   6. none of these: stop with a message, rather than install the CUDA build.
# --dry-run prints the choice and the pip commands, and changes nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
venv="${1:-$root/.venv}"
requirements="$root/scripts/requirements-cpu.txt"
python="${PYTHON:-python3}"
cpu_index="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
system="${SETUP_PYPI_UNAME:-$(uname -s)}"  # SETUP_PYPI_UNAME: for the tests of this decision

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ai-worker needs Python >= 3.11")'

# torch first and alone, pinned: an unpinned or later-resolved torch pulls a multi-GB CUDA build.
torch_pin="$(grep -E '^torch==' "$requirements")"
torch_version="${torch_pin#torch==}"

if [ "$dry_run" = 1 ] && [ ! -x "$venv/bin/python" ]; then
  venv_python="$python"  # nothing is created in a dry run: ask the interpreter's own pip
else
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  venv_python="$venv/bin/python"
fi
pip=("$venv_python" -m pip --disable-pip-version-check --quiet)

installed_torch() {
  [ -x "$venv/bin/python" ] || return 0
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true
}

# The version the configured pip sources would install for the pin (empty when they cannot be reached).
configured_torch() {
  local report
  report="$(mktemp)"
  if "${pip[@]}" install --dry-run --ignore-installed --no-deps --report "$report" "$torch_pin" >/dev/null 2>&1; then
    "$venv_python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["install"][0]["metadata"]["version"])' \
      "$report" 2>/dev/null || true
  fi
  rm -f "$report"
}

# Whether an index lists the CPU build of the pin (its simple page for torch names torch-<version>+cpu wheels).
index_has_cpu_torch() {
  "$venv_python" - "$1" "$torch_version" <<'EOF'
import sys
import urllib.request

index, version = sys.argv[1].rstrip("/"), sys.argv[2]
try:
    with urllib.request.urlopen(f"{index}/torch/", timeout=15) as response:
        page = response.read().decode("utf-8", "replace")
except Exception:
    sys.exit(1)
sys.exit(0 if f"torch-{version}+cpu" in page or f"torch-{version}%2Bcpu" in page else 1)
EOF
}

# Prints: "<how> <why>"; how = keep | configured | index:<url>.
torch_source() {
  if [ -n "${TORCH_INDEX_URL:-}" ] && [ "$TORCH_INDEX_URL" != none ]; then
    echo "index:$TORCH_INDEX_URL TORCH_INDEX_URL names it"; return
  fi
  if [ "$(installed_torch)" = "$torch_version+cpu" ]; then
    echo "keep the venv already holds torch $torch_version+cpu"; return
  fi
  if [ "$system" = Darwin ]; then
    echo "configured PyPI's macOS wheels are CPU builds"; return
  fi
  local chosen
  chosen="$(configured_torch)"
  if [ "$chosen" = "$torch_version+cpu" ]; then
    echo "configured the configured pip sources provide torch $chosen"; return
  fi
  if [ "${TORCH_INDEX_URL:-}" != none ] && index_has_cpu_torch "$cpu_index"; then
    echo "index:$cpu_index PyTorch's CPU index lists torch $torch_version+cpu"; return
  fi
  return 1
}

if ! source="$(torch_source)"; then
  cat >&2 <<EOF
setup-pypi-env: no CPU build of $torch_pin found: the configured pip sources do not offer torch $torch_version+cpu,
and PyTorch's CPU index ($cpu_index) did not list it. PyPI's torch for Linux is the CUDA build (several GB), which
this script will not install. Let this machine reach $cpu_index, or set TORCH_INDEX_URL to a mirror of it, or put
torch-$torch_version+cpu-<python>-<platform>.whl where pip finds it (e.g. a find-links directory in pip.conf).
EOF
  exit 1
fi
how="${source%% *}" why="${source#* }"
case "$how" in
  keep) torch_cmd=() ;;
  configured) torch_cmd=("${pip[@]}" install "$torch_pin") ;;
  index:*)
    # The +cpu pin says which build, whatever other indexes pip is configured with.
    torch_spec="$torch_pin"; [ "$system" = Darwin ] || torch_spec="$torch_pin+cpu"
    torch_cmd=("${pip[@]}" install --index-url "${how#index:}" "$torch_spec") ;;
esac
echo "setup-pypi-env: torch: $how ($why)"

run() {
  if [ "$dry_run" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}
[ "${#torch_cmd[@]}" = 0 ] || run "${torch_cmd[@]}"
run "${pip[@]}" install -r "$requirements"
run "${pip[@]}" install --no-deps -e "$root"
[ "$dry_run" = 0 ] || exit 0

# The pixi environment has conda-forge's `ffmpeg` on PATH; here imageio-ffmpeg's binary plays that part.
ffmpeg_exe="$("$venv/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')"
ln -sf "$ffmpeg_exe" "$venv/bin/ffmpeg"

echo "PyPI mirror environment ready: $venv (activate with: . $venv/bin/activate)"
