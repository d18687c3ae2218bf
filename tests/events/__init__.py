"""What the Lambdas receive, in one place for every test: AWS events as JSON files in this folder (an S3
notification, EventBridge's "Object Created", CloudWatch's "Alarm State Change", a CloudFormation custom-resource
request) and the user's parameter files with their placeholders filled in.

``load_event(name, overrides)`` reads ``<name>.json`` and sets (or, with ``DELETE``, removes) fields by dotted
path; the builders below name the fields the tests vary."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from workflow_common.execution_input import StackResources

EVENTS = Path(__file__).resolve().parent
REPO_ROOT = EVENTS.parents[1]
EXAMPLES = REPO_ROOT / "examples"
# The original system's files, kept as it shipped them (its own placeholders).
ORIGINAL_EXAMPLES = REPO_ROOT / "tests" / "fixtures" / "original-examples"
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "my-ml-bucket"
DELETE = object()


def edited(document: Any, path: str, value: Any = DELETE) -> Any:
    """A deep copy of ``document`` with the dotted ``path`` (list indexes as numbers) set to value or removed."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return result


def load_event(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``<name>.json`` from this folder with each dotted path of ``overrides`` set to its value."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    for path, value in (overrides or {}).items():
        event = edited(event, path, value)
    return event


def s3_object_created(
    key: str, bucket: str = BUCKET, sequencer: str | None = None, records: int = 1
) -> dict[str, Any]:
    """An S3 notification of one upload; ``records`` > 1 repeats the record in one batch, as S3 may."""
    overrides = {
        "Records.0.s3.bucket.name": bucket,
        "Records.0.s3.bucket.arn": f"arn:aws:s3:::{bucket}",
        "Records.0.s3.object.key": quote_plus(key),  # S3 URL-encodes keys in notifications
    }
    if sequencer:
        overrides["Records.0.s3.object.sequencer"] = sequencer
    event = load_event("s3-object-created", overrides)
    event["Records"] *= records
    return event


def eventbridge_object_created(key: str, bucket: str = BUCKET) -> dict[str, Any]:
    """EventBridge's "Object Created" for the same upload (keys are not URL-encoded there)."""
    return load_event(
        "eventbridge-object-created",
        {"resources": [f"arn:aws:s3:::{bucket}"], "detail.bucket.name": bucket, "detail.object.key": key},
    )


def model_package_state_change(
    package_arn: str,
    status: str = "Approved",
    updated_fields: Sequence[str] | None = ("ModelApprovalStatus",),
) -> dict[str, Any]:
    """SageMaker's "Model Package State Change" for a version of its group: by default the update approving it
    (``updated_fields`` None: a creation event, which carries no UpdatedModelPackageFields)."""
    group, version = package_arn.rsplit("/", 2)[1:]
    overrides: dict[str, Any] = {
        "resources": [package_arn],
        "detail.ModelPackageArn": package_arn,
        "detail.ModelPackageGroupName": group,
        "detail.ModelPackageVersion": int(version),
        "detail.ModelApprovalStatus": status,
        "detail.UpdatedModelPackageFields": DELETE if updated_fields is None else list(updated_fields),
    }
    return load_event("sagemaker-model-package-state-change", overrides)


def alarm_state_change(state: str = "ALARM", previous: str = "OK") -> dict[str, Any]:
    """CloudWatch's "CloudWatch Alarm State Change" for the stack's 5xx rollback alarm: by default it fired."""
    return load_event(
        "cloudwatch-alarm-state-change", {"detail.state.value": state, "detail.previousState.value": previous}
    )


def serving_endpoint(
    sagemaker: Any,
    endpoint: str,
    config: str,
    model: str,
    container: Mapping[str, str],
    tags: Sequence[Mapping[str, str]] = (),
) -> None:
    """An endpoint in moto serving ``model`` through ``config``, one AllTraffic variant, as a deployment leaves
    it (``tags``: the configuration's)."""
    sagemaker.create_model(
        ModelName=model, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker", PrimaryContainer=container
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        Tags=list(tags),
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)


def sns_notification(
    message: Mapping[str, Any], subject: str = "ML workflow: endpoint deployed"
) -> dict[str, Any]:
    """SNS's delivery of one stage notification to a Lambda subscriber (attributes as the sample's)."""
    return load_event(
        "sns-notification", {"Records.0.Sns.Message": json.dumps(message), "Records.0.Sns.Subject": subject}
    )


def custom_resource_request(
    request_type: str,
    response_url: str,
    physical_resource_id: str | None = None,
    request_id: str | None = None,
    **properties: str,
) -> dict[str, Any]:
    """CloudFormation's request to the parameter-import custom resource; ``properties`` override its own (an
    Update's old properties are the sample's)."""
    event = load_event("cloudformation-parameter-import-create", {"RequestType": request_type})
    event["ResponseURL"] = response_url
    if request_type == "Update":
        event["OldResourceProperties"] = dict(event["ResourceProperties"])
    event["ResourceProperties"] |= properties
    if request_id:
        event["RequestId"] = request_id
    if physical_resource_id:
        event["PhysicalResourceId"] = physical_resource_id
    return event


def filled(path: Path, placeholders: Mapping[str, str]) -> Any:
    """A JSON file with its ``<placeholder>`` texts replaced, as a user fills it in before uploading it."""
    text = path.read_text()
    for placeholder, value in placeholders.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def example(name: str, bucket: str = BUCKET) -> Any:
    """A file of examples/ filled in for the test account, region and bucket."""
    return filled(
        EXAMPLES / name,
        {
            "<account-id>": ACCOUNT,
            "<region>": REGION,
            "<s3bucket>": bucket,
            "<training-security-group>": "sg-1",
            "<training-subnet>": "subnet-1",
            "<hosting-security-group>": "sg-2",
            "<hosting-subnet>": "subnet-2",
        },
    )


def original_ml_parameters(region: str = REGION, bucket: str = BUCKET) -> dict[str, Any]:
    """The original system's template-ml-parameters.json filled in as its jq scripts did."""
    return filled(
        ORIGINAL_EXAMPLES / "template-ml-parameters.json",
        {
            "<region>": region,
            "<account-id>": ACCOUNT,
            "<bucket-name>": bucket,
            "<security-group-1>": "sg-1",
            "<subnet-1>": "subnet-1",
            "<subnet-2>": "subnet-2",
            "<subnet-3>": "subnet-3",
        },
    )


def minimal_ml_parameters(bucket: str = BUCKET) -> dict[str, Any]:
    """The fewest ml-parameters a stack accepts: two images, the budget, the endpoint and the model's output."""
    return {
        "tuningJobName": "survival-tuning",
        "trainingImage": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/h2o-gbm-trainer:1",
        "inferenceImage": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/h2o-gbm-predictor:1",
        "maxParallelTrainingJobs": 2,
        "maxNumberOfTrainingJobs": 4,
        "endpointName": "survival-endpoint",
        "model": {"artifactsS3OutputPath": f"s3://{bucket}/model-artifacts/", "name": "survival-model"},
    }


# What a stack creates for its endpoint from the imported ml-parameters (the triggers' environment names them).
OWNER_STACK_NAME = "h2o-model-tuning-deployment"  # the h2o-sagemaker:stack tag of the run's resources
STACK_RESOURCES = StackResources(
    model_package_group_name="survival-endpoint-1a2b3c4d",
    rollback_alarm_names=(
        "h2o-model-tuning-deployment-survival-endpoint-invocation-5xx-errors",
        "h2o-model-tuning-deployment-survival-endpoint-model-latency",
    ),
)
STACK_RESOURCES_ENVIRONMENT = {
    "MODEL_PACKAGE_GROUP_NAME": STACK_RESOURCES.model_package_group_name,
    "ROLLBACK_ALARM_NAMES": ",".join(STACK_RESOURCES.rollback_alarm_names),
}
