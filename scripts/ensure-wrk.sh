#!/usr/bin/env bash
# `make bench` loads the predictor with wrk: a Python client tops out near the server's own rate on 2 cores, so its
# figures would be the client's limit. Debian's wrk, installed when absent.
set -euo pipefail
command -v wrk >/dev/null && exit 0
bash "$(dirname "$0")/apt-install.sh" wrk
