"""Generate ml-parameters.json (and optionally a filled-in manifest.json) for your account.

Replaces the original system's jq scripts. Fills the <placeholders> of template-ml-parameters.json and
manifest.json; VPC settings are dropped when no subnets are given (training and hosting then run without a VPC).

    python examples/generate_ml_parameters.py --account 123456789012 --region eu-west-1 --bucket my-ml-bucket \
        --training-subnets subnet-1,subnet-2 --training-security-groups sg-1 \
        --hosting-subnets subnet-1,subnet-2 --hosting-security-groups sg-2 \
        --manifest-output examples/manifest.filled.json

The local run fills the same templates with this module for its emulated account. Standard library only:
``examples/generate_ml_parameters.py`` runs it with any python3, nothing installed.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"<([a-z0-9-]+)>")


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Where the workflow runs: the account, region and data bucket, the VPCs (none when empty), the images."""

    account: str
    region: str
    bucket: str
    training_subnets: list[str] = field(default_factory=list)
    training_security_groups: list[str] = field(default_factory=list)
    hosting_subnets: list[str] = field(default_factory=list)
    hosting_security_groups: list[str] = field(default_factory=list)
    algorithm_arn: str | None = None
    training_image: str | None = None
    inference_image: str | None = None


@dataclass(frozen=True, kw_only=True)
class GeneratorOptions(Deployment):
    """The command line's options: the deployment, and which files to read and write."""

    template: Path
    output: Path
    manifest_template: Path
    manifest_output: Path | None = None


class PlaceholderWithoutValue(ValueError):
    """A <placeholder> the values do not fill."""


def fill_placeholders(document: Any, values: dict[str, str]) -> Any:
    """Replace every <name> in string values; a placeholder without a value is an error."""
    if isinstance(document, dict):
        return {key: fill_placeholders(item, values) for key, item in document.items()}
    if isinstance(document, list):
        return [fill_placeholders(item, values) for item in document]
    if isinstance(document, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                raise PlaceholderWithoutValue(f"no value for the placeholder <{match.group(1)}>")
            return values[match.group(1)]

        return PLACEHOLDER.sub(replace, document)
    return document


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def generate_ml_parameters(template: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    """template-ml-parameters.json filled for the deployment (the template is left unchanged)."""
    document = copy.deepcopy(template)
    model = document["model"]
    vpc_settings = (
        ("training", model, "trainingSubnets", "trainingSecurityGroupIds"),
        ("hosting", model["hosting"], "subnets", "securityGroupIds"),
    )
    for role, section, subnets_key, groups_key in vpc_settings:
        subnets: list[str] = getattr(deployment, f"{role}_subnets")
        groups: list[str] = getattr(deployment, f"{role}_security_groups")
        if bool(subnets) != bool(groups):
            raise ValueError(f"--{role}-subnets and --{role}-security-groups go together")
        section[subnets_key], section[groups_key] = list(subnets), list(groups)
    if deployment.algorithm_arn:
        document.pop("trainingImage", None)
        document.pop("inferenceImage", None)
        document["algorithmARN"] = deployment.algorithm_arn
    else:
        document["trainingImage"] = deployment.training_image or document["trainingImage"]
        document["inferenceImage"] = deployment.inference_image or document["inferenceImage"]
    result: dict[str, Any] = fill_placeholders(
        document,
        {"account-id": deployment.account, "region": deployment.region, "s3bucket": deployment.bucket},
    )
    return result


def parse_arguments(argv: list[str], examples: Path) -> GeneratorOptions:
    """The command line; the files default to those in ``examples``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--account", required=True, help="12-digit AWS account id")
    parser.add_argument("--region", required=True, help="AWS region, e.g. eu-west-1")
    parser.add_argument(
        "--bucket", required=True, help="data bucket (parameter files, data, manifests, artifacts)"
    )
    parser.add_argument(
        "--training-subnets", default="", help="comma-separated subnet ids for training (VPC)"
    )
    parser.add_argument("--training-security-groups", default="", help="comma-separated security group ids")
    parser.add_argument(
        "--hosting-subnets", default="", help="comma-separated subnet ids for the endpoint (VPC)"
    )
    parser.add_argument("--hosting-security-groups", default="", help="comma-separated security group ids")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--algorithm-arn", help="use a SageMaker algorithm resource instead of image URIs")
    images.add_argument("--training-image", help="training image URI (default: h2o-gbm-trainer in your ECR)")
    parser.add_argument(
        "--inference-image", help="inference image URI (default: h2o-gbm-predictor in your ECR)"
    )
    parser.add_argument("--template", type=Path, default=examples / "template-ml-parameters.json")
    parser.add_argument("--output", type=Path, default=examples / "ml-parameters.json")
    parser.add_argument("--manifest-template", type=Path, default=examples / "manifest.json")
    parser.add_argument(
        "--manifest-output", type=Path, help="also write manifest.json with the bucket filled in"
    )
    options = parser.parse_args(argv)
    if not re.fullmatch(r"\d{12}", options.account):
        parser.error(f"--account must be 12 digits, got {options.account!r}")
    return GeneratorOptions(
        account=options.account,
        region=options.region,
        bucket=options.bucket,
        training_subnets=comma_list(options.training_subnets),
        training_security_groups=comma_list(options.training_security_groups),
        hosting_subnets=comma_list(options.hosting_subnets),
        hosting_security_groups=comma_list(options.hosting_security_groups),
        algorithm_arn=options.algorithm_arn,
        training_image=options.training_image,
        inference_image=options.inference_image,
        template=options.template,
        output=options.output,
        manifest_template=options.manifest_template,
        manifest_output=options.manifest_output,
    )


def main(argv: list[str], examples: Path) -> int:
    """Write the files; a bad option or file is a one-line error with exit code 2."""
    options = parse_arguments(argv, examples)
    try:
        document = generate_ml_parameters(json.loads(options.template.read_text()), options)
        options.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {options.output}")
        if options.manifest_output:
            manifest = fill_placeholders(
                json.loads(options.manifest_template.read_text()), {"s3bucket": options.bucket}
            )
            options.manifest_output.write_text(json.dumps(manifest, indent=2) + "\n")
            print(f"wrote {options.manifest_output}")
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
