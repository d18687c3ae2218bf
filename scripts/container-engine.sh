#!/usr/bin/env bash
# Prints the container engine to build and run the images with: docker when its engine answers, else podman
# (installed from Debian's archive when absent). Source it to get ENGINE and, for podman, CONTAINERS_CONF.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${ENGINE:-}" ]]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        if ! command -v podman >/dev/null; then
            echo "no Docker engine: installing podman from Debian's archive" >&2
            SUDO=$([[ $(id -u) == 0 ]] || echo sudo)
            $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q podman buildah runc debootstrap >&2
        fi
        ENGINE=podman
    fi
fi
if [[ "$ENGINE" == podman && -z "${CONTAINERS_CONF:-}" ]]; then
    # This project's podman settings, not the user's global configuration (see the file).
    export CONTAINERS_CONF="$REPO_ROOT/scripts/containers.conf"
fi
export ENGINE
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "$ENGINE"
fi
