#!/usr/bin/env bash
# A local training job of several instances (trainingInstanceCount > 1) resolves its host names algo-1 ... algo-N
# to 127.0.0.1 through nss_wrapper, preloaded into its processes: Debian's libnss-wrapper, installed when absent.
set -euo pipefail
if compgen -G "/usr/lib/*/libnss_wrapper.so*" >/dev/null || compgen -G "/usr/lib*/libnss_wrapper.so*" >/dev/null; then
  exit 0
fi
echo "nss_wrapper not found: installing Debian's libnss-wrapper" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libnss-wrapper >/dev/null
