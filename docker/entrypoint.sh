#!/bin/bash
# Entrypoint of both images: activate the environment the way `pixi shell-hook` wrote it at build time (pixi itself
# is not in the image), then replace this shell with the command, so the worker is the process that receives
# SIGTERM from `docker stop` / ECS and drains.
# No `set -e`/`set -u`: conda packages' activation scripts are written for interactive shells and may test unset
# variables or end on a failed test; a missing APP_ENV_PREFIX still stops here with a message.
# shellcheck source=/dev/null
source "${APP_ENV_PREFIX:?APP_ENV_PREFIX names the environment directory}/activate.sh"
exec "$@"
