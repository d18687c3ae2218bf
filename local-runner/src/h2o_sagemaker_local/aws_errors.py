"""Error names as AWS Step Functions reports them to Retry and Catch, per integration kind: the one place.

A Task's error name depends on how the state calls the API, not only on the API's error code:

- **Optimised integrations** (``arn:<partition>:states:::sagemaker:createModel``, ``states:startExecution``,
  ``sns:publish``, ``lambda:invoke``) run on the AWS SDK for Java v1 and name an error after its exception
  class: ``<Prefix>.<Shape>Exception`` for an error the API models (``SageMaker.ResourceLimitExceededException``),
  the service's base class for every other error, throttling and internal errors included
  (``SageMaker.AmazonSageMakerException``). Sources: the Step Functions guide's SageMaker page, whose example
  retries ``SageMaker.AmazonSageMakerException``
  (https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html); LocalStack's snapshots of real
  AWS runs, e.g. ``DynamoDB.AmazonDynamoDBException`` for an unmodelled error
  (localstack tests/aws/services/stepfunctions/v2/services/test_task_service_dynamodb.snapshot.json,
  ``test_invalid_param``), ``SNS.NotFoundException`` (test_sns_task_service.snapshot.json) and
  ``StepFunctions.StateMachineDoesNotExistException`` (test_task_service_sfn.snapshot.json).
- **aws-sdk integrations** (``arn:<partition>:states:::aws-sdk:<service>:<action>``) run on the AWS SDK for Java
  v2: ``<Service>.<Shape>Exception`` for a modelled error, ``<Service>.<Service>Exception`` otherwise
  (``SageMaker.SageMakerException``, ``ApplicationAutoScaling.ApplicationAutoScalingException``). "Exception" is
  always appended. Sources: https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
  ("ServiceName.ExceptionName", e.g. ``S3.NoSuchKeyException``); LocalStack's
  tests/aws/services/stepfunctions/v2/error_handling/test_aws_sdk.snapshot.json (``DynamoDb.DynamoDbException``).
- **Lambda** (``lambda:invoke`` or a function ARN as the Resource): an error the function raised keeps its own
  ``errorType``; the service's own are ``Lambda.*`` (``Lambda.ServiceException``, ``Lambda.TooManyRequestsException``,
  ``Lambda.Unknown`` for a crashed or timed-out runtime). Source:
  https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html.
- **Reserved names** (``States.*``). ``States.ALL`` matches every error but ``States.Runtime`` and
  ``States.DataLimitExceeded``, which no Retry or Catch can handle. Source:
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html.

Which errors an API models comes from botocore's service model, the same source the AWS SDKs are generated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from h2o_sagemaker_local.integrations import Integration, UnknownIntegration, integration_of, service_model

# Names a Retry or Catch may list for any Task; States.Runtime and States.DataLimitExceeded are terminal.
RESERVED_TASK_ERRORS: Final = frozenset(
    {
        "States.ALL",
        "States.TaskFailed",
        "States.Timeout",
        "States.HeartbeatTimeout",
        "States.Permissions",
        "States.ResultPathMatchFailure",
        "States.ParameterPathFailure",
        "States.IntrinsicFailure",
    }
)
UNCATCHABLE_ERRORS: Final = frozenset({"States.Runtime", "States.DataLimitExceeded"})


@dataclass(frozen=True)
class _Naming:
    prefix: str
    base_exception: str  # every error the API does not model


# Optimised integrations: Java SDK v1 class names (prefix as Step Functions writes it).
_OPTIMISED: Final = {
    "sagemaker": _Naming("SageMaker", "AmazonSageMakerException"),
    "sns": _Naming("SNS", "AmazonSNSException"),
    "states": _Naming("StepFunctions", "AWSStepFunctionsException"),
    "lambda": _Naming("Lambda", "AWSLambdaException"),
}
# aws-sdk integrations: Java SDK v2 service class names, keyed by the service name in the Resource ARN.
_AWS_SDK_PREFIXES: Final = {
    "applicationautoscaling": "ApplicationAutoScaling",
    "lambda": "Lambda",
    "s3": "S3",
    "sagemaker": "SageMaker",
    "sfn": "Sfn",
    "sns": "Sns",
    "ssm": "Ssm",
    "dynamodb": "DynamoDb",
}
# Errors the Lambda service itself reports for an invocation, beyond the Invoke API's modelled ones.
_LAMBDA_SERVICE_ERRORS: Final = frozenset(
    {
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.Unknown",
    }
)


def _naming(integration: Integration) -> _Naming:
    if integration.kind in ("optimised", "lambda-function"):
        if integration.service not in _OPTIMISED:
            raise UnknownIntegration(
                f"error names of the optimised {integration.service} integration are not known"
            )
        return _OPTIMISED[integration.service]
    if integration.service not in _AWS_SDK_PREFIXES:
        raise UnknownIntegration(
            f"aws-sdk error prefix of {integration.service} is not known: add it with a source"
        )
    prefix = _AWS_SDK_PREFIXES[integration.service]
    return _Naming(prefix, f"{prefix}Exception")


def task_error_name(integration: Integration, error_code: str) -> str:
    """The error name Step Functions gives the task when the API answered with ``error_code``."""
    naming = _naming(integration)
    shape = _modelled_errors(integration.boto_service).get(error_code)
    if shape is None:
        return f"{naming.prefix}.{naming.base_exception}"
    return f"{naming.prefix}.{_exception_class(shape)}"


def error_name_for(resource: str, error_code: str) -> str:
    """``task_error_name`` for a Task's Resource ARN."""
    integration = integration_of(resource)
    if integration is None:
        raise UnknownIntegration(f"{resource} calls no API")
    return task_error_name(integration, error_code)


def possible_error_names(integration: Integration) -> frozenset[str]:
    """Every name AWS can give a failure of this Task (function-raised errors of a Lambda aside)."""
    naming = _naming(integration)
    operation = integration.operation() if integration.kind != "lambda-function" else None
    error_shapes = (operation or service_model("lambda").operation_model("Invoke")).error_shapes
    names = {f"{naming.prefix}.{naming.base_exception}", f"{naming.prefix}.SdkClientException"}
    names |= {f"{naming.prefix}.{_exception_class(shape.name)}" for shape in error_shapes}
    if integration.boto_service == "lambda":
        names |= _LAMBDA_SERVICE_ERRORS
    return frozenset(names | RESERVED_TASK_ERRORS)


def _exception_class(shape_name: str) -> str:
    return shape_name if shape_name.endswith("Exception") else f"{shape_name}Exception"


@cache
def _modelled_errors(boto_service: str) -> dict[str, str]:
    """Error code -> shape name of every error the service models (SNS's codes differ from its shape names)."""
    return {shape.error_code or shape.name: shape.name for shape in service_model(boto_service).error_shapes}
