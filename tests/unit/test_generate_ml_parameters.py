"""The ml-parameters.json generator that replaces the original jq scripts."""

from __future__ import annotations

import json
from pathlib import Path

import generate_ml_parameters
import pytest
from workflow_common.ml_parameters import Manifest, MlParameters, parse_document

ACCOUNT = ["--account", "123456789012", "--region", "eu-west-1", "--bucket", "my-ml-bucket"]


def generate(tmp_path: Path, *options: str) -> dict:
    output = tmp_path / "ml-parameters.json"
    assert generate_ml_parameters.main([*ACCOUNT, "--output", str(output), *options]) == 0
    return json.loads(output.read_text())


def test_generated_file_validates_and_runs_without_vpc_by_default(tmp_path: Path) -> None:
    document = generate(tmp_path)
    params = parse_document(MlParameters, document, "ml-parameters.json")
    assert params.training_image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:latest"
    assert params.model.artifacts_s3_output_path == "s3://my-ml-bucket/model-artifacts/"
    assert params.model.training_subnets == [] and params.model.hosting.subnets == []


def test_vpc_options_and_algorithm_resource(tmp_path: Path) -> None:
    document = generate(
        tmp_path,
        "--training-subnets", "subnet-1, subnet-2",
        "--training-security-groups", "sg-1",
        "--hosting-subnets", "subnet-3",
        "--hosting-security-groups", "sg-2",
        "--algorithm-arn", "arn:aws:sagemaker:eu-west-1:123456789012:algorithm/h2o-gbm",
    )  # fmt: skip
    params = parse_document(MlParameters, document, "ml-parameters.json")
    assert params.model.training_subnets == ["subnet-1", "subnet-2"]
    assert params.model.hosting.security_group_ids == ["sg-2"]
    assert params.algorithm_arn and params.training_image is None


def test_manifest_gets_the_bucket(tmp_path: Path) -> None:
    manifest_path = tmp_path / "manifest.json"
    generate(tmp_path, "--manifest-output", str(manifest_path))
    manifest = parse_document(Manifest, json.loads(manifest_path.read_text()), "manifest.json")
    manifest.check_bucket("my-ml-bucket")


def test_half_a_vpc_is_refused_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = generate_ml_parameters.main(
        [*ACCOUNT, "--output", str(tmp_path / "x.json"), "--training-subnets", "subnet-1"]
    )
    assert code == 2
    assert capsys.readouterr().err == "error: --training-subnets and --training-security-groups go together\n"


def test_bad_account_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        generate_ml_parameters.main(["--account", "12", "--region", "r", "--bucket", "b"])
    assert exit_info.value.code == 2
    assert "--account must be 12 digits" in capsys.readouterr().err
