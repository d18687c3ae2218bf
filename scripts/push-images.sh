#!/usr/bin/env bash
# Tags and pushes the two images, then prints the image URIs for ml-parameters.json.
#   scripts/push-images.sh                         to this account's ECR (aws CLI credentials and region)
#   REGISTRY=host:port scripts/push-images.sh      to another registry (plain HTTP on loopback allowed)
# TAG defaults to the git revision (with -dirty when the work tree has uncommitted changes).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/container-engine.sh"
TAG="${TAG:-$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD)$(git -C "$REPO_ROOT" diff --quiet HEAD -- || echo -dirty)}"
NAMES=(h2o-gbm-trainer h2o-gbm-predictor)

if [[ -z "${REGISTRY:-}" ]]; then
    command -v aws >/dev/null || { echo "the aws CLI is needed to push to ECR (or set REGISTRY)" >&2; exit 1; }
    REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
    [[ -n "$REGION" ]] || { echo "no AWS region: set AWS_REGION" >&2; exit 1; }
    ACCOUNT="$(aws sts get-caller-identity --query Account --output text)"
    REGISTRY="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com"
    for name in "${NAMES[@]}"; do
        aws ecr describe-repositories --region "$REGION" --repository-names "$name" >/dev/null 2>&1 \
            || aws ecr create-repository --region "$REGION" --repository-name "$name" \
                --image-scanning-configuration scanOnPush=true >/dev/null
    done
    aws ecr get-login-password --region "$REGION" | $CONTAINER_ENGINE login --username AWS --password-stdin "$REGISTRY" >&2
fi

push_options=()
if [[ "$CONTAINER_ENGINE" == podman && "$REGISTRY" =~ ^(127\.|localhost[:/]|localhost$) ]]; then
    push_options=(--tls-verify=false)  # a loopback registry speaks plain HTTP (docker allows 127.0.0.0/8 itself)
fi
for name in "${NAMES[@]}"; do
    $CONTAINER_ENGINE image inspect "$name:local" >/dev/null 2>&1 || { echo "$name:local is not built: make images" >&2; exit 1; }
    $CONTAINER_ENGINE tag "$name:local" "$REGISTRY/$name:$TAG"
    $CONTAINER_ENGINE push "${push_options[@]}" "$REGISTRY/$name:$TAG" >&2
done
cat <<JSON
{
  "trainingImage": "$REGISTRY/h2o-gbm-trainer:$TAG",
  "inferenceImage": "$REGISTRY/h2o-gbm-predictor:$TAG"
}
JSON
