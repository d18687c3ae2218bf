#!/usr/bin/env bash
# Prints the container engine to build and run the images with: CONTAINER_ENGINE when set (docker or podman), else
# docker when its engine answers, else podman (installed from Debian's archive when absent). Source it to get
# CONTAINER_ENGINE and, for podman, CONTAINERS_CONF.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${CONTAINER_ENGINE:-}" ]]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        CONTAINER_ENGINE=docker
    else
        bash "$REPO_ROOT/scripts/ensure-container-engines.sh" podman  # installs it when absent
        CONTAINER_ENGINE=podman
    fi
elif [[ "$CONTAINER_ENGINE" != docker && "$CONTAINER_ENGINE" != podman ]]; then
    echo "CONTAINER_ENGINE=$CONTAINER_ENGINE: docker or podman" >&2
    exit 2
fi
if [[ "$CONTAINER_ENGINE" == podman && -z "${CONTAINERS_CONF:-}" ]]; then
    # This project's podman settings, not the user's global configuration (see the file).
    export CONTAINERS_CONF="$REPO_ROOT/scripts/containers.conf"
fi
export CONTAINER_ENGINE
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "$CONTAINER_ENGINE"
fi
