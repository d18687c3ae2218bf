"""The request fields Step Functions accepts per integration, and the check that refuses the others as AWS does.

Optimised integrations (``arn:<partition>:states:::sagemaker:updateEndpoint``) take only a documented subset of
each API's top-level fields; aws-sdk integrations (``arn:<partition>:states:::aws-sdk:sagemaker:updateEndpoint``)
take every field of the API. Below the top level, every field must be one of the API's own (botocore's service
model). A field outside these:

- written in the definition: CreateStateMachine / UpdateStateMachine refuse it, ``InvalidDefinition``
  ``SCHEMA_VALIDATION_FAILED: The field "X" is not supported by Step Functions at /States/<state>/Parameters``
  (seen on AWS: aws-step-functions-data-science-sdk-python#200, aws-cdk#10014; names are case-sensitive and
  nested fields are checked);
- arriving from a path (``"X.$"`` resolving to an object): the state fails with ``States.Runtime``, which no
  Retry or Catch handles (aws-step-functions-data-science-sdk-python#15: ``The field "S3Operations" is not
  supported by Step Functions``).

Where AWS's current behaviour is uncertain this is conservative: an optimised integration not in the table is
refused rather than let through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from botocore.model import ListShape, MapShape, Shape, StructureShape

from h2o_sagemaker_local.integrations import integration_of

_SAGEMAKER_DOCS: Final = (
    "https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html (the per-API field lists survive in "
    "github.com/awsdocs/aws-step-functions-developer-guide doc_source/connect-sagemaker.md, 2021-10-15)"
)
_CDK: Final = "aws-cdk packages/aws-cdk-lib/aws-stepfunctions-tasks/lib/"


@dataclass(frozen=True)
class SupportedFields:
    fields: frozenset[str]
    source: str


def _fields(source: str, *names: str) -> SupportedFields:
    return SupportedFields(frozenset(names), source)


# "<service>:<action>" of the optimised integrations (without .sync / .sync:2 / .waitForTaskToken).
OPTIMISED_INTEGRATION_FIELDS: Final = {
    "sagemaker:createHyperParameterTuningJob": _fields(
        _SAGEMAKER_DOCS,
        "HyperParameterTuningJobConfig",
        "HyperParameterTuningJobName",
        "Tags",
        "TrainingJobDefinition",
        "WarmStartConfig",
    ),
    "sagemaker:createModel": _fields(
        f"{_SAGEMAKER_DOCS}; {_CDK}sagemaker/create-model.ts renders the same seven",
        "Containers",
        "EnableNetworkIsolation",
        "ExecutionRoleArn",
        "ModelName",
        "PrimaryContainer",
        "Tags",
        "VpcConfig",
    ),
    "sagemaker:createEndpointConfig": _fields(
        f"{_SAGEMAKER_DOCS}; {_CDK}sagemaker/create-endpoint-config.ts renders the same four",
        "EndpointConfigName",
        "KmsKeyId",
        "ProductionVariants",
        "Tags",
    ),
    "sagemaker:createEndpoint": _fields(
        f"{_SAGEMAKER_DOCS}; {_CDK}sagemaker/create-endpoint.ts renders the same three",
        "EndpointConfigName",
        "EndpointName",
        "Tags",
    ),
    "sagemaker:updateEndpoint": _fields(
        f"{_SAGEMAKER_DOCS}; {_CDK}sagemaker/update-endpoint.ts renders the same two",
        "EndpointConfigName",
        "EndpointName",
    ),
    "sagemaker:createTrainingJob": _fields(
        f"{_SAGEMAKER_DOCS}; {_CDK}sagemaker/create-training-job.ts also renders EnableNetworkIsolation and "
        "Environment",
        "AlgorithmSpecification",
        "EnableNetworkIsolation",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "RoleArn",
        "StoppingCondition",
        "Tags",
        "TrainingJobName",
        "VpcConfig",
    ),
    "sagemaker:createTransformJob": _fields(
        f"{_SAGEMAKER_DOCS} (the ten request parameters of API_CreateTransformJob then); {_CDK}sagemaker/"
        "create-transform-job.ts renders the same ten and ModelClientConfig",
        "BatchStrategy",
        "Environment",
        "MaxConcurrentTransforms",
        "MaxPayloadInMB",
        "ModelName",
        "Tags",
        "TransformInput",
        "TransformJobName",
        "TransformOutput",
        "TransformResources",
    ),
    "sagemaker:createProcessingJob": _fields(
        "aws-step-functions-data-science-sdk-python src/stepfunctions/steps/sagemaker.py ProcessingStep: the fields "
        "of sagemaker.workflow.airflow.processing_config plus ExperimentConfig and Tags (the connect-sagemaker page "
        "links the API's request parameters; CDK has no processing-job task)",
        "AppSpecification",
        "Environment",
        "ExperimentConfig",
        "NetworkConfig",
        "ProcessingInputs",
        "ProcessingJobName",
        "ProcessingOutputConfig",
        "ProcessingResources",
        "RoleArn",
        "StoppingCondition",
        "Tags",
    ),
    "states:startExecution": _fields(
        "https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html; "
        f"{_CDK}stepfunctions/start-execution.ts",
        "Input",
        "Name",
        "StateMachineArn",
    ),
    "sns:publish": _fields(
        "https://docs.aws.amazon.com/step-functions/latest/dg/connect-sns.html; "
        f"{_CDK}sns/publish.ts adds the FIFO fields MessageDeduplicationId and MessageGroupId",
        "Message",
        "MessageAttributes",
        "MessageDeduplicationId",
        "MessageGroupId",
        "MessageStructure",
        "PhoneNumber",
        "Subject",
        "TargetArn",
        "TopicArn",
    ),
    "lambda:invoke": _fields(
        "https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html; "
        f"{_CDK}lambda/invoke.ts renders the same five",
        "ClientContext",
        "FunctionName",
        "InvocationType",
        "Payload",
        "Qualifier",
    ),
}
# Members the optimised integrations take in another form than the API's: Step Functions serialises them.
_SERIALISED_BY_STEP_FUNCTIONS: Final = {("sns", "Message"), ("states", "Input"), ("lambda", "Payload")}


class UnsupportedIntegration(ValueError):
    """An optimised integration this table does not describe: refused rather than guessed."""


def unsupported_fields(resource: str, parameters: dict[str, Any]) -> list[str]:
    """The fields of a Task's Parameters that Step Functions refuses for ``resource``, as dotted paths.

    Keys ending in ``.$`` name the field their path fills; what a path resolves to is checked at run time."""
    integration = integration_of(resource)
    if integration is None or integration.kind == "lambda-function":
        return []  # an activity's or a function's input is free-form
    shape = integration.operation().input_shape
    assert shape is not None, f"{resource}: an API with no input"
    if integration.kind == "optimised":
        key = f"{integration.service}:{integration.action}"
        if key not in OPTIMISED_INTEGRATION_FIELDS:
            raise UnsupportedIntegration(
                f"{resource}: the optimised {key} integration's supported fields are not known here; add them "
                "to integration_fields.OPTIMISED_INTEGRATION_FIELDS with their source, or use aws-sdk"
            )
        allowed = OPTIMISED_INTEGRATION_FIELDS[key].fields
        problems = [_field_name(name) for name in parameters if _field_name(name) not in allowed]
        free_form = {
            name for service, name in _SERIALISED_BY_STEP_FUNCTIONS if service == integration.service
        }
        nested = {name: value for name, value in parameters.items() if _field_name(name) not in free_form}
        return problems + list(_unknown_members(shape, nested, ""))
    return list(_unknown_members(shape, parameters, ""))


def _field_name(key: str) -> str:
    return key.removesuffix(".$")


def _unknown_members(shape: Shape, value: Any, prefix: str) -> Iterator[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        # States Language writes every API's fields in PascalCase (StateMachineArn for stateMachineArn).
        members = {name[:1].upper() + name[1:]: member for name, member in shape.members.items()}
        for key, item in value.items():
            name = _field_name(key)
            if name not in members:
                yield f"{prefix}{name}"
            elif not key.endswith(".$"):
                yield from _unknown_members(members[name], item, f"{prefix}{name}.")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for item in value:
            yield from _unknown_members(shape.member, item, prefix)
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for item in value.values():
            yield from _unknown_members(shape.value, item, prefix)
