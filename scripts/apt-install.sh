#!/usr/bin/env bash
# Installs packages from Debian's archive (with sudo when not root): scripts/apt-install.sh <package>...
# The one way the ensure-*.sh scripts and base-image.sh install what a machine lacks.
set -euo pipefail
echo "installing $* from Debian's archive" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
