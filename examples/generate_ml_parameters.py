#!/usr/bin/env python3
"""Generate ml-parameters.json (and optionally a filled-in manifest.json) for your account: see
``h2o_sagemaker_local.parameter_files`` (``--help``), which this runs with this folder's files as defaults.

    python examples/generate_ml_parameters.py --account 123456789012 --region eu-west-1 --bucket my-ml-bucket \
        --training-subnets subnet-1,subnet-2 --training-security-groups sg-1 \
        --hosting-subnets subnet-1,subnet-2 --hosting-security-groups sg-2 \
        --manifest-output examples/manifest.filled.json
"""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
# The generator is standard-library code in the local runner's package: from the checkout it runs with any
# python3, the local runner installed or not.
_RUNNER_SOURCE = str(EXAMPLES.parent / "local-runner" / "src")
if _RUNNER_SOURCE not in sys.path:
    sys.path.insert(0, _RUNNER_SOURCE)

from h2o_sagemaker_local import parameter_files  # noqa: E402  (needs the path above)
from h2o_sagemaker_local.parameter_files import (  # noqa: E402
    Deployment,
    GeneratorOptions,
    fill_placeholders,
    generate_ml_parameters,
)

__all__ = ["EXAMPLES", "Deployment", "GeneratorOptions", "fill_placeholders", "generate_ml_parameters"]


def parse_arguments(argv: list[str]) -> GeneratorOptions:
    return parameter_files.parse_arguments(argv, EXAMPLES)


def main(argv: list[str] | None = None) -> int:
    return parameter_files.main(sys.argv[1:] if argv is None else argv, EXAMPLES)


if __name__ == "__main__":
    sys.exit(main())
