"""The ml-parameters.json generator that replaces the original jq scripts."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import generate_ml_parameters
import pytest
from events import STACK_RESOURCES
from workflow_common.execution_input import (
    ModelRegistration,
    RunIdentity,
    build_deployment_input,
    build_execution_input,
)
from workflow_common.ml_parameters import Hyperparameters, Manifest, MlParameters, parse_document

ACCOUNT = ["--account", "123456789012", "--region", "eu-west-1", "--bucket", "my-ml-bucket"]
EXAMPLES = generate_ml_parameters.EXAMPLES
TRAINER_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:latest"
PREDICTOR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-predictor:latest"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def expected_without_vpc() -> dict:
    """template-ml-parameters.json as the generator must fill it for ACCOUNT: every placeholder replaced, the
    VPC lists emptied, nothing else changed."""
    document = copy.deepcopy(example("template-ml-parameters.json"))
    document["trainingImage"] = TRAINER_IMAGE
    document["inferenceImage"] = PREDICTOR_IMAGE
    document["spotTrainingCheckpointS3Uri"] = "s3://my-ml-bucket/model-training-checkpoint/"
    document["model"]["artifactsS3OutputPath"] = "s3://my-ml-bucket/model-artifacts/"
    document["model"]["hosting"]["dataCapture"]["destinationS3Uri"] = "s3://my-ml-bucket/data-capture/"
    document["model"]["trainingSubnets"] = document["model"]["trainingSecurityGroupIds"] = []
    document["model"]["hosting"]["subnets"] = document["model"]["hosting"]["securityGroupIds"] = []
    return document


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
    assert document == expected_without_vpc()


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
    expected = expected_without_vpc()
    del expected["trainingImage"], expected["inferenceImage"]
    expected["algorithmARN"] = "arn:aws:sagemaker:eu-west-1:123456789012:algorithm/h2o-gbm"
    expected["model"]["trainingSubnets"] = ["subnet-1", "subnet-2"]
    expected["model"]["trainingSecurityGroupIds"] = ["sg-1"]
    expected["model"]["hosting"]["subnets"] = ["subnet-3"]
    expected["model"]["hosting"]["securityGroupIds"] = ["sg-2"]
    assert document == expected


def test_image_options_replace_the_default_images(tmp_path: Path) -> None:
    document = generate(
        tmp_path, "--training-image", "registry/trainer:1", "--inference-image", "registry/p:2"
    )
    assert document == expected_without_vpc() | {
        "trainingImage": "registry/trainer:1",
        "inferenceImage": "registry/p:2",
    }


def test_manifest_gets_the_bucket(tmp_path: Path) -> None:
    manifest_path = tmp_path / "manifest.json"
    generate(tmp_path, "--manifest-output", str(manifest_path))
    manifest = parse_document(Manifest, json.loads(manifest_path.read_text()), "manifest.json")
    manifest.check_bucket("my-ml-bucket")
    assert [channel.s3_data_source.s3_uri for channel in manifest.channels] == [
        "s3://my-ml-bucket/titanic/training/train.csv",
        "s3://my-ml-bucket/titanic/validation/validation.csv",
    ]
    assert manifest_path.read_text() == (EXAMPLES / "manifest.json").read_text().replace(
        "<s3bucket>", "my-ml-bucket"
    )


def test_the_example_script_runs_with_nothing_installed(tmp_path: Path) -> None:
    """As the README runs it: `python3 examples/generate_ml_parameters.py`, no site-packages (-S), from
    elsewhere; it writes the same file as the module."""
    output = tmp_path / "ml-parameters.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(EXAMPLES / "generate_ml_parameters.py"),
            *ACCOUNT,
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (completed.returncode, completed.stderr) == (0, "")
    assert completed.stdout == f"wrote {output}\n"
    assert json.loads(output.read_text()) == expected_without_vpc()
    assert output.read_text() == json.dumps(expected_without_vpc(), indent=2) + "\n"


def test_half_a_vpc_is_refused_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = generate_ml_parameters.main(
        [*ACCOUNT, "--output", str(tmp_path / "x.json"), "--training-subnets", "subnet-1"]
    )
    assert code == 2
    assert capsys.readouterr().err == "error: --training-subnets and --training-security-groups go together\n"
    assert not (tmp_path / "x.json").exists()


def test_bad_account_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        generate_ml_parameters.main(["--account", "12", "--region", "r", "--bucket", "b"])
    assert exit_info.value.code == 2
    assert "--account must be 12 digits" in capsys.readouterr().err


def test_documented_execution_input_is_what_the_trigger_builds_from_the_examples() -> None:
    """examples/execution-input.json (the README's manual start-execution input) must not drift from the code."""
    options = generate_ml_parameters.parse_arguments(ACCOUNT)
    examples = EXAMPLES
    document = generate_ml_parameters.generate_ml_parameters(
        json.loads((examples / "template-ml-parameters.json").read_text()), options
    )
    manifest = generate_ml_parameters.fill_placeholders(
        json.loads((examples / "manifest.json").read_text()), {"s3bucket": "my-ml-bucket"}
    )
    run = RunIdentity(
        "my-ml-bucket",
        "manifests/titanic/manifest.json",
        "0055AED6DCD90281E5",
        datetime(2026, 11, 22, 21, 0, tzinfo=UTC),
    )
    built = build_execution_input(
        parse_document(MlParameters, document, "ml-parameters.json"),
        parse_document(
            Hyperparameters,
            json.loads((examples / "hyperparameters.json").read_text()),
            "hyperparameters.json",
        ),
        parse_document(Manifest, manifest, "manifest.json"),
        run,
        STACK_RESOURCES,
    )
    assert json.loads((examples / "execution-input.json").read_text()) == built


def test_documented_deployment_input_is_what_the_approval_trigger_builds_from_the_examples() -> None:
    """examples/deployment-input.json (the README's input for deploying a registered version by hand) must not
    drift from the code."""
    document = generate_ml_parameters.generate_ml_parameters(
        json.loads((EXAMPLES / "template-ml-parameters.json").read_text()),
        generate_ml_parameters.parse_arguments(ACCOUNT),
    )
    built = build_deployment_input(
        parse_document(MlParameters, document, "ml-parameters.json"),
        STACK_RESOURCES,
        ModelRegistration(
            model_package_arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/"
            f"{STACK_RESOURCES.model_package_group_name}/1",
            model_package_version=1,
            model_approval_status="Approved",
        ),
        "v1-1a2b",
    )
    assert json.loads((EXAMPLES / "deployment-input.json").read_text()) == built
