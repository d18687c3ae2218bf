#!/usr/bin/env bash
# Print the bin folder of the Python that matches the Lambda runtime (python3.13), so `sam build`
# can build without Docker. SAM looks for `python3.13` on PATH.
set -euo pipefail
version=3.13
if command -v "python$version" >/dev/null 2>&1 && "python$version" -c pass 2>/dev/null; then
  dirname "$(command -v "python$version")"
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  prefix=$(pyenv prefix "$(pyenv versions --bare | grep -E "^$version(\.|$)" | tail -n1)" 2>/dev/null || true)
  if [ -n "$prefix" ] && [ -x "$prefix/bin/python$version" ]; then
    echo "$prefix/bin"
    exit 0
  fi
fi
echo "python$version not found: sam build needs it for the Lambda runtime (install it, e.g. 'pyenv install $version')" >&2
exit 1
