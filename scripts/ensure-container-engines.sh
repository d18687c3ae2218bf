#!/usr/bin/env bash
# The images must build and run with docker and with podman, so `make test` tests both:
#   scripts/ensure-container-engines.sh [docker] [podman]   (default: both)
# podman (with buildah and runc) from Debian's archive when absent; a Docker engine that answers: Debian's docker.io
# when no dockerd is installed, then started (systemd's docker service, or dockerd in the background where systemd
# does not run, as in CI sandboxes).
set -euo pipefail
engines=("$@")
[[ ${#engines[@]} -gt 0 ]] || engines=(docker podman)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/h2o-gbm-dockerd.log}"

missing=()
for engine in "${engines[@]}"; do
    case "$engine" in
        podman) command -v podman >/dev/null || missing+=(podman buildah runc) ;;
        # An engine that answers may have no dockerd here (Docker Desktop, a remote DOCKER_HOST).
        docker) docker info >/dev/null 2>&1 || command -v dockerd >/dev/null || [[ -x /usr/sbin/dockerd ]] \
            || missing+=(docker.io) ;;
        *) echo "unknown container engine: $engine (docker or podman)" >&2; exit 2 ;;
    esac
done
[[ ${#missing[@]} -eq 0 ]] || bash "$(dirname "$0")/apt-install.sh" "${missing[@]}"

if [[ " ${engines[*]} " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then
    if [[ -d /run/systemd/system ]]; then
        $SUDO systemctl start docker
    else
        echo "starting dockerd in the background (log: $DOCKERD_LOG)" >&2
        # In a session of its own, holding none of this shell's files: an inherited pipe or lock would keep its
        # reader (CI's log, a flock) waiting for as long as the daemon runs.
        $SUDO python3 -c 'import subprocess, sys
with open(sys.argv[1], "ab") as log:
    subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True, close_fds=True)' "$DOCKERD_LOG"
    fi
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || {
        echo "the Docker engine does not answer (log: $DOCKERD_LOG; may this user use its socket?)" >&2
        exit 1
    }
fi

# dockerd sets the FORWARD policy to DROP and has the kernel pass bridged frames through iptables, which then drops
# the traffic between the containers of an internal podman network (netavark adds no rule for one): a training job
# of several instances with network isolation, run in podman, could not form its H2O cluster. DOCKER-USER is the
# chain Docker keeps for rules of one's own; this one accepts only frames bridged within one podman network, so an
# internal network still has no way out.
if [[ " ${engines[*]} " == *" docker "* && " ${engines[*]} " == *" podman "* ]] \
    && $SUDO iptables -n -L DOCKER-USER >/dev/null 2>&1; then
    rule=(-i 'podman+' -o 'podman+' -m physdev --physdev-is-bridged -j ACCEPT)
    $SUDO iptables -C DOCKER-USER "${rule[@]}" 2>/dev/null || $SUDO iptables -I DOCKER-USER "${rule[@]}"
fi
