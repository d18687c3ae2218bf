#!/usr/bin/env bash
# H2O needs a Java 17+ runtime. Install Debian's headless OpenJDK 17 when no suitable java is on PATH.
set -euo pipefail
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ]; then
  exit 0
fi
echo "Java 17+ not found" >&2
bash "$(dirname "$0")/apt-install.sh" openjdk-17-jre-headless
java -version
