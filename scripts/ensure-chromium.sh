#!/usr/bin/env bash
# The run report's browser test opens the report in a real headless Chromium: Debian's, installed when absent
# (playwright drives it; its own browser download is never used).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium
chromium --version
