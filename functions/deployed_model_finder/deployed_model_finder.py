"""Find the model an endpoint serves, for the quality gate of the tuning-with-deployment state machine.

The gate scores that model on this run's validation rows, so it needs the model's artifact: the endpoint's
current configuration names the model of its production variant, whose primary container holds the artifact
URL, and the registered version it deployed (its ``h2o-sagemaker:model-package`` tag; none for a configuration
made before the registry). No endpoint: nothing serves, so there is nothing to beat. It only reads.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import Field
from workflow_common.aws_clients import AwsClients
from workflow_common.ml_parameters import ParameterFileError, parse_document
from workflow_common.models import CamelCaseModel
from workflow_common.sagemaker_names import RESOURCE_NAME_MAX_LENGTH
from workflow_common.service_errors import is_not_found, transient_errors_raised_as_unavailable

logger = Logger()
tracer = Tracer()
aws_client = AwsClients()


class InvalidFinderRequest(ValueError):
    """The state machine passed an input this function cannot use."""


class DeployedModelUnreadable(RuntimeError):
    """The endpoint serves something whose artifact cannot be found: the gate cannot score it."""


class FinderRequest(CamelCaseModel):
    endpoint_name: str = Field(min_length=1, max_length=RESOURCE_NAME_MAX_LENGTH)


MODEL_PACKAGE_TAG = "h2o-sagemaker:model-package"


class DeployedModel(CamelCaseModel):
    found: bool
    endpoint_config_name: str | None = None
    model_name: str | None = None
    model_data_url: str | None = None
    model_package_arn: str | None = None  # the version serving, as the endpoint-deployment run tagged it


def _unreadable(endpoint: str, what: str) -> DeployedModelUnreadable:
    return DeployedModelUnreadable(
        f"Endpoint {endpoint} serves {what}, so the quality gate cannot score the deployed model: fix or delete "
        "the endpoint, or set qualityGate.mustBeatDeployedModel to false in ml-parameters.json."
    )


@tracer.capture_method
def find_deployed_model(request: FinderRequest, sagemaker: Any) -> DeployedModel:
    endpoint = request.endpoint_name
    try:
        config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except ClientError as error:
        if is_not_found(error):
            logger.info("No endpoint serves a model yet", extra={"endpointName": endpoint})
            return DeployedModel(found=False)
        raise
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as error:
        if is_not_found(error):
            raise _unreadable(
                endpoint, f"endpoint configuration {config_name}, which no longer exists"
            ) from None
        raise
    variants = config["ProductionVariants"]
    model_names = {variant.get("ModelName") for variant in variants}
    if len(model_names) != 1 or None in model_names:
        raise _unreadable(
            endpoint, f"{len(variants)} production variants of different models ({config_name})"
        )
    [model_name] = model_names
    try:
        model = sagemaker.describe_model(ModelName=model_name)
    except ClientError as error:
        if is_not_found(error):
            raise _unreadable(endpoint, f"model {model_name}, which no longer exists") from None
        raise
    artifact = model.get("PrimaryContainer", {}).get("ModelDataUrl")
    if not artifact:
        raise _unreadable(endpoint, f"model {model_name}, whose primary container has no ModelDataUrl")
    tags = sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
    deployed = DeployedModel(
        found=True,
        endpoint_config_name=config_name,
        model_name=model_name,
        model_data_url=artifact,
        model_package_arn=next((tag["Value"] for tag in tags if tag["Key"] == MODEL_PACKAGE_TAG), None),
    )
    logger.info("Deployed model found", extra={"deployedModel": deployed.model_dump()})
    return deployed


def parse_request(event: Any) -> FinderRequest:
    try:
        return parse_document(FinderRequest, event, "deployed model finder input")
    except ParameterFileError as error:
        raise InvalidFinderRequest(str(error)) from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    with transient_errors_raised_as_unavailable():
        return find_deployed_model(request, aws_client("sagemaker")).model_dump()
