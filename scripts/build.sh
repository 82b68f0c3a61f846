#!/usr/bin/env bash
# Build the ai-worker images, tag them with the git revision, and optionally push them to ECR.
#
#   scripts/build.sh cpu|gpu|both [options] [-- extra docker build arguments]
#     --multi-arch          cpu only: linux/amd64 + linux/arm64 in one manifest (docker buildx; implies --push)
#     --push                push to ECR (needs --account/--region or AWS_ACCOUNT_ID/AWS_REGION, and the aws CLI);
#                           the cpu image is then built for linux/amd64 whatever this machine is (the stack's
#                           default CpuArchitecture, X86_64): ARM64 on Fargate needs --multi-arch
#     --account ID          AWS account of the ECR registry           [AWS_ACCOUNT_ID]
#     --region REGION       AWS region of the ECR registry            [AWS_REGION]
#     --env-stage IMAGE     take /app/.pixi/envs/<env> from IMAGE instead of solving it here (pixi-pack, CI cache)
#     --dry-run             print the commands instead of running them
#
# The GPU image is linux/amd64 only (its environment is solved for linux-64). A local cpu build (no --push) is for
# this machine's architecture. Tags: ai-worker-<env>:<revision>
# and :latest locally; <account>.dkr.ecr.<region>.amazonaws.com/ai-worker-<env>:<revision> when pushing.
# DOCKER names the client (default: docker); the build needs BuildKit (buildx, or Debian's docker.io client).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKER="${DOCKER:-docker}"
MODEL_DIR="build/models/embedding"  # the Dockerfiles' default EMBEDDING_MODEL_DIR
CPU_PLATFORMS="linux/amd64,linux/arm64"
CPU_PUSH_PLATFORM="linux/amd64"  # = deploy/ai-worker.yaml's default CpuArchitecture (X86_64)
GPU_PLATFORM="linux/amd64"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() { echo "build.sh: $*" >&2; exit 2; }

target="" push=0 multi_arch=0 dry_run=0 env_stage=""
account="${AWS_ACCOUNT_ID:-}" region="${AWS_REGION:-}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    cpu|gpu|both) [ -z "$target" ] || die "one target only (got $target and $1)"; target="$1" ;;
    --push) push=1 ;;
    --multi-arch) multi_arch=1; push=1 ;;
    --account) [ $# -ge 2 ] || die "--account needs a value"; account="$2"; shift ;;
    --region) [ $# -ge 2 ] || die "--region needs a value"; region="$2"; shift ;;
    --env-stage) [ $# -ge 2 ] || die "--env-stage needs a value"; env_stage="$2"; shift ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[ -n "$target" ] || { usage >&2; die "say what to build: cpu, gpu or both"; }
[ "$multi_arch" = 0 ] || [ "$target" = cpu ] || die "--multi-arch is for the cpu image only (the gpu image is amd64)"
[ -z "$env_stage" ] || [ "$target" != both ] || die "--env-stage provides one environment: build cpu or gpu with it"
if [ "$push" = 1 ]; then
  [ -n "$account" ] && [ -n "$region" ] || die "--push needs --account and --region (or AWS_ACCOUNT_ID and AWS_REGION)"
fi

cd "$REPO"
if [ -z "$env_stage" ] && [ ! -f pixi.lock ]; then
  die "pixi.lock is missing. The images install the locked environments only: run \`pixi lock\` on a machine that
reaches conda-forge and commit pixi.lock (or take the lock CI proposes as an artifact), then build again."
fi
[ -d "$MODEL_DIR" ] || die "$MODEL_DIR is missing: put the sentence-transformers model to bake into the images there
(a directory written by SentenceTransformer.save(); see README \"Images\")."

revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unversioned)"
# A build from uncommitted changes must never pass for the commit it started from.
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision="${revision}-dirty"; fi
registry="${account}.dkr.ecr.${region}.amazonaws.com"

run() {
  if [ "$dry_run" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

if [ "$push" = 1 ]; then
  if [ "$dry_run" = 1 ]; then
    echo "aws ecr get-login-password --region $region | $DOCKER login --username AWS --password-stdin $registry"
  else
    aws ecr get-login-password --region "$region" | "$DOCKER" login --username AWS --password-stdin "$registry"
  fi
fi

build_one() {
  local env="$1" image="ai-worker-$1"
  local args=(-f "docker/$image/Dockerfile" --build-arg "IMAGE_TAG=$revision")
  [ -z "$env_stage" ] || args+=(--build-arg "ENV_STAGE=$env_stage")
  if [ "$multi_arch" = 1 ]; then
    # A multi-platform result cannot be loaded into the local engine: buildx pushes it straight to the registry.
    run "$DOCKER" buildx build --platform "$CPU_PLATFORMS" "${args[@]}" \
      -t "$registry/$image:$revision" --push "${extra[@]}" .
    return
  fi
  local platform=()
  [ "$env" = gpu ] && platform=(--platform "$GPU_PLATFORM")
  [ "$env" = cpu ] && [ "$push" = 1 ] && platform=(--platform "$CPU_PUSH_PLATFORM")
  run env DOCKER_BUILDKIT=1 "$DOCKER" build "${platform[@]}" "${args[@]}" \
    -t "$image:$revision" -t "$image:latest" "${extra[@]}" .
  if [ "$push" = 1 ]; then
    run "$DOCKER" tag "$image:$revision" "$registry/$image:$revision"
    run "$DOCKER" push "$registry/$image:$revision"
  fi
}

case "$target" in
  both) build_one cpu; build_one gpu ;;
  *) build_one "$target" ;;
esac
