#!/usr/bin/env bash
# Builds the SageMaker images: scripts/build-images.sh [trainer] [predictor]   (default: both)
# With docker when its engine answers, else podman (see container-engine.sh); the base is pulled, or made from
# Debian's archive where no registry is reachable (base-image.sh). Tags: h2o-gbm-<name>:${IMAGE_TAG:-local}.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/container-engine.sh"
bash "$REPO_ROOT/scripts/base-image.sh"
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(trainer predictor)
for name in "${names[@]}"; do
    image="h2o-gbm-$name:${IMAGE_TAG:-local}"
    started=$(date +%s)
    # The base is in the local store: never pull it again (a registry may be unreachable).
    pull=$([[ "$CONTAINER_ENGINE" == podman ]] && echo "--pull=never" || echo "--pull=false")
    $CONTAINER_ENGINE build $pull -q -t "$image" "$REPO_ROOT/h2o-gbm-$name" >/dev/null
    echo "$image built in $(( $(date +%s) - started )) s ($CONTAINER_ENGINE)" >&2
done
