"""Deploy a model version when someone approves it in the registry (ml-parameters' modelApproval Manual, or a
rejected or rolled-back version approved again).

EventBridge delivers SageMaker's "Model Package State Change" events of the stack's model package group. Only an
approval deploys: an event whose update set ModelApprovalStatus to Approved. A version registered already
Approved (modelApproval Automatic) is deployed by its own run, and its creation event is ignored here; so are
rejections and other updates. The package is read again (events can be late or repeated) and must still be
Approved. The endpoint-deployment state machine is started with the stored ml-parameters' deployment settings;
its execution is named after the version and the approval's time, so a repeated event starts nothing more.
Settings that no longer validate are reported on the topic; AWS errors propagate for Lambda's retries.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field
from workflow_common.execution_input import ModelRegistration, StackResources, build_deployment_input
from workflow_common.ml_parameters import MlParameters, ParameterFileError, decode_json, parse_document
from workflow_common.models import PascalCaseModel

logger = Logger()
tracer = Tracer()

APPROVED = "Approved"


@dataclass(frozen=True)
class Settings:
    parameter_store_path: str
    state_machine_arn: str  # the endpoint-deployment state machine
    notification_topic_arn: str
    stack: StackResources

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            parameter_store_path=os.environ["PARAMETER_STORE_PATH"],
            state_machine_arn=os.environ["DEPLOYMENT_STATE_MACHINE_ARN"],
            notification_topic_arn=os.environ["NOTIFICATION_TOPIC_ARN"],
            stack=StackResources.from_environment(),
        )


class PackageStateChange(PascalCaseModel):
    """The part of the event's detail this function reads; SageMaker sends more."""

    model_config = PascalCaseModel.model_config | {"extra": "ignore"}

    model_package_arn: str
    model_package_group_name: str
    model_approval_status: str | None = None
    updated_model_package_fields: list[str] = Field(default_factory=list)


def approval_in(event: dict[str, Any]) -> PackageStateChange | None:
    """The approved package of an approval event; None for creation events and other changes."""
    change = PackageStateChange.model_validate(event.get("detail", {}))
    if (
        change.model_approval_status != APPROVED
        or "ModelApprovalStatus" not in change.updated_model_package_fields
    ):
        return None
    return change


def deployment_id(package: dict[str, Any]) -> str:
    """``v<version>-<digest>``: one per approval of a version (an approval updates LastModifiedTime)."""
    approved_at = package.get("LastModifiedTime") or package["CreationTime"]
    digest = hashlib.sha256(f"{package['ModelPackageArn']}/{approved_at}".encode()).hexdigest()[:4]
    return f"v{package['ModelPackageVersion']}-{digest}"


def load_ml_parameters(ssm: Any, path: str) -> MlParameters:
    name = f"{path}/ml-parameters"
    document = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    return parse_document(MlParameters, decode_json(document, "ml-parameters"), "ml-parameters")


def notify_rejection(sns: Any, topic_arn: str, package_arn: str, reason: str) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject="ML workflow: approved model not deployed",
        Message=json.dumps(
            {"workflow": "ml-parameter-provider", "modelPackageArn": package_arn, "error": reason}
        ),
    )


def start_deployment(sfn: Any, state_machine_arn: str, deployment_input: dict[str, Any]) -> str:
    name = deployment_input["endpointConfigName"]
    try:
        return sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(deployment_input)
        )["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        logger.info(
            "Deployment already started for this approval; duplicate event ignored", extra={"arn": arn}
        )
        return arn


@tracer.capture_method
def handle_approval(
    change: PackageStateChange, settings: Settings, sagemaker: Any, ssm: Any, sfn: Any, sns: Any
) -> dict[str, Any]:
    arn = change.model_package_arn
    if change.model_package_group_name != settings.stack.model_package_group_name:
        return {"modelPackageArn": arn, "status": "IGNORED", "reason": "not this stack's model package group"}
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    if package.get("ModelApprovalStatus") != APPROVED:
        reason = f"the version is {package.get('ModelApprovalStatus')} now"
        logger.info("Stale approval event ignored", extra={"modelPackageArn": arn, "reason": reason})
        return {"modelPackageArn": arn, "status": "IGNORED", "reason": reason}
    registration = ModelRegistration(
        model_package_arn=arn,
        model_package_version=package["ModelPackageVersion"],
        model_approval_status=APPROVED,
    )
    try:
        params = load_ml_parameters(ssm, settings.parameter_store_path)
        deployment_input = build_deployment_input(
            params, settings.stack, registration, deployment_id(package)
        )
    except ParameterFileError as error:
        logger.error("Approved version not deployed", extra={"modelPackageArn": arn, "reason": str(error)})
        notify_rejection(sns, settings.notification_topic_arn, arn, str(error))
        return {"modelPackageArn": arn, "status": "REJECTED", "reason": str(error)}
    execution_arn = start_deployment(sfn, settings.state_machine_arn, deployment_input)
    logger.info("Deployment started", extra={"modelPackageArn": arn, "executionArn": execution_arn})
    return {"modelPackageArn": arn, "status": "STARTED", "executionArn": execution_arn}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = approval_in(event)
    if change is None:
        return {"status": "IGNORED", "reason": "not an approval"}
    return handle_approval(
        change,
        Settings.from_environment(),
        boto3.client("sagemaker"),
        boto3.client("ssm"),
        boto3.client("stepfunctions"),
        boto3.client("sns"),
    )
