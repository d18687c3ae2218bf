#!/usr/bin/env bash
# Runs a container registry on loopback for tests: scripts/local-registry.sh PORT STORAGE_DIR (in the foreground).
# Debian's docker-registry (the CNCF distribution registry), installed when absent.
set -euo pipefail
PORT="$1" STORAGE="$2"
command -v docker-registry >/dev/null || bash "$(dirname "$0")/apt-install.sh" docker-registry
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
