#!/usr/bin/env bash
# Runs a container registry on loopback for tests: scripts/local-registry.sh PORT STORAGE_DIR (in the foreground).
# Debian's docker-registry (the CNCF distribution registry), installed when absent.
set -euo pipefail
PORT="$1" STORAGE="$2"
if ! command -v docker-registry >/dev/null; then
    SUDO=$([[ $(id -u) == 0 ]] || echo sudo)
    $SUDO apt-get install -y -q docker-registry >&2
fi
mkdir -p "$STORAGE"
cat > "$STORAGE/config.yml" <<CONF
version: 0.1
storage:
  filesystem:
    rootdirectory: $STORAGE/data
http:
  addr: 127.0.0.1:$PORT
CONF
exec docker-registry serve "$STORAGE/config.yml"
