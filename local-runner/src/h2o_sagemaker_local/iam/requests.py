"""Which IAM authorizations an AWS API call needs: action, resource ARN and request context, as AWS evaluates it.

One call can need several (UpdateEndpoint: the endpoint and the endpoint configuration; CreateModel with Tags:
sagemaker:CreateModel, sagemaker:AddTags and iam:PassRole for its execution role). The resource types and
their ARN formats are those of AWS's Service Authorization Reference, which the policy simulator validates
every request against (an ARN of the wrong type, or an action that does not exist, is an error there, not a
silent allow). A call missing from ``_CALLS`` is refused for every principal but the local administrator:
adding an API call to a Lambda or a state machine means adding its authorization here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True)
class ApiCall:
    service: str  # boto3's name: sagemaker, stepfunctions, application-autoscaling, s3, ...
    operation: str  # the API's name: CreateModel, GetObject, ...
    params: dict[str, Any]
    region: str
    account: str
    partition: str = "aws"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


@dataclass(frozen=True)
class Authorization:
    """One request to the policy evaluator."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


# Actions whose policies here are conditioned on the resource's tags: IAM evaluates them with the resource's
# tags as aws:ResourceTag/<key> (SageMaker supports the key for its endpoint, endpoint-config and model types).
RESOURCE_TAG_ACTIONS: Final = frozenset(
    {"sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"}
)


class UnmappedCall(LookupError):
    """No authorization is known for this API call."""


Rule = Callable[[ApiCall], list[Authorization]]


def authorizations(call: ApiCall) -> list[Authorization]:
    """The authorizations ``call`` needs, in the order AWS would check them."""
    rule = _CALLS.get((call.service, call.operation))
    if rule is None:
        raise UnmappedCall(f"{call.service} {call.operation}")
    return rule(call)


# --- helpers -------------------------------------------------------------------------------------------------


def _sagemaker_arn(call: ApiCall, kind: str, name_or_arn: str) -> str:
    # SageMaker writes names in lower case in its ARNs.
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return call.arn("sagemaker", f"{kind}/{name_or_arn.lower()}")


def _sagemaker(kind: str, name_parameter: str, *, tagged: bool = False) -> Rule:
    """sagemaker:<Operation> on the ``kind`` named by ``name_parameter`` (and AddTags when tags are given)."""

    def rule(call: ApiCall) -> list[Authorization]:
        resource = _sagemaker_arn(call, kind, call.params[name_parameter])
        found = [Authorization(f"sagemaker:{call.operation}", resource)]
        if tagged and call.params.get("Tags"):
            found.append(_tagging(call, resource))
        return found

    return rule


def _tagging(call: ApiCall, resource: str) -> Authorization:
    """SageMaker authorizes tags given on create as sagemaker:AddTags on the new resource."""
    keys = [tag["Key"] for tag in call.params.get("Tags", [])]
    return Authorization("sagemaker:AddTags", resource, {"aws:TagKeys": keys})


def _pass_role(role_arn: str, service: str) -> Authorization:
    return Authorization("iam:PassRole", role_arn, {"iam:PassedToService": service})


def _with(*rules: Rule) -> Rule:
    return lambda call: [authorization for rule in rules for authorization in rule(call)]


# --- SageMaker -----------------------------------------------------------------------------------------------


def _tuning_job_roles(call: ApiCall) -> list[Authorization]:
    definitions = [call.params.get("TrainingJobDefinition"), *call.params.get("TrainingJobDefinitions", [])]
    roles = {definition["RoleArn"] for definition in definitions if definition and definition.get("RoleArn")}
    return [_pass_role(role, "sagemaker.amazonaws.com") for role in sorted(roles)]


def _processing_job_role(call: ApiCall) -> list[Authorization]:
    return [_pass_role(call.params["RoleArn"], "sagemaker.amazonaws.com")]


def _model_role(call: ApiCall) -> list[Authorization]:
    return [_pass_role(call.params["ExecutionRoleArn"], "sagemaker.amazonaws.com")]


def _endpoint_and_config(call: ApiCall) -> list[Authorization]:
    endpoint = _sagemaker_arn(call, "endpoint", call.params["EndpointName"])
    config = _sagemaker_arn(call, "endpoint-config", call.params["EndpointConfigName"])
    found = [
        Authorization(f"sagemaker:{call.operation}", endpoint),
        Authorization(f"sagemaker:{call.operation}", config),
    ]
    if call.params.get("Tags"):
        found.append(_tagging(call, endpoint))
    return found


def _list_tags(call: ApiCall) -> list[Authorization]:
    return [Authorization("sagemaker:ListTags", call.params["ResourceArn"])]


def _create_model_package(call: ApiCall) -> list[Authorization]:
    """A versioned package is authorized on its group's name (its version is not known yet), with the approval
    status it asks for as sagemaker:ModelApprovalStatus."""
    resource = _sagemaker_arn(call, "model-package", call.params["ModelPackageGroupName"])
    context = {
        "sagemaker:ModelApprovalStatus": call.params.get("ModelApprovalStatus", "PendingManualApproval")
    }
    found = [Authorization("sagemaker:CreateModelPackage", resource, context)]
    if call.params.get("Tags"):
        found.append(_tagging(call, resource))
    return found


def _update_model_package(call: ApiCall) -> list[Authorization]:
    context = (
        {"sagemaker:ModelApprovalStatus": call.params["ModelApprovalStatus"]}
        if "ModelApprovalStatus" in call.params
        else {}
    )
    return [Authorization("sagemaker:UpdateModelPackage", call.params["ModelPackageArn"], context)]


def _invoke_endpoint(call: ApiCall) -> list[Authorization]:
    return [
        Authorization(
            "sagemaker:InvokeEndpoint", _sagemaker_arn(call, "endpoint", call.params["EndpointName"])
        )
    ]


# --- Application Auto Scaling ---------------------------------------------------------------------------------

# The role Application Auto Scaling creates on the first SageMaker registration of an account, with the
# caller's iam:CreateServiceLinkedRole.
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
AUTOSCALING_ROLE_PATH = (
    f"role/aws-service-role/{AUTOSCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def _scalable_target(call: ApiCall) -> Authorization:
    # A scalable target's ARN carries an id AWS assigns; a stable one per resource id stands in for it.
    target_id = hashlib.sha256(call.params["ResourceId"].encode()).hexdigest()[:32]
    return Authorization(
        f"application-autoscaling:{call.operation}",
        call.arn("application-autoscaling", f"scalable-target/{target_id}"),
        {
            "application-autoscaling:service-namespace": call.params["ServiceNamespace"],
            "application-autoscaling:scalable-dimension": call.params["ScalableDimension"],
        },
    )


def _variant_endpoint(call: ApiCall) -> str | None:
    """endpoint/<name>/variant/<variant> -> the endpoint's ARN (SageMaker variants only)."""
    parts = call.params["ResourceId"].split("/")
    if call.params["ServiceNamespace"] != "sagemaker" or len(parts) != 4:
        return None
    return _sagemaker_arn(call, "endpoint", parts[1])


def _register_scalable_target(call: ApiCall) -> list[Authorization]:
    """Registering a SageMaker variant: Application Auto Scaling checks that the caller may read and resize it
    (https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html)."""
    found = [_scalable_target(call)]
    endpoint = _variant_endpoint(call)
    if endpoint:
        found += [
            Authorization("sagemaker:DescribeEndpoint", endpoint),
            Authorization("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint),
        ]
    return found


def _put_scaling_policy(call: ApiCall) -> list[Authorization]:
    """A target-tracking policy creates its CloudWatch alarms with the caller's permissions."""
    found = [_scalable_target(call)]
    if call.params.get("PolicyType") == "TargetTrackingScaling":
        alarm = call.arn("cloudwatch", f"alarm:TargetTracking-{call.params['ResourceId']}-AlarmHigh-local")
        found += [
            Authorization("cloudwatch:PutMetricAlarm", alarm),
            Authorization("cloudwatch:DescribeAlarms", alarm),
        ]
    return found


def _deregister_scalable_target(call: ApiCall) -> list[Authorization]:
    """Deregistering deletes the target's policies and, with them, their alarms."""
    alarm = call.arn("cloudwatch", f"alarm:TargetTracking-{call.params['ResourceId']}-AlarmHigh-local")
    return [_scalable_target(call), Authorization("cloudwatch:DeleteAlarms", alarm)]


def _delete_scaling_policy(call: ApiCall) -> list[Authorization]:
    """A target-tracking policy's alarms are deleted with it, with the caller's permissions."""
    alarm = call.arn("cloudwatch", f"alarm:TargetTracking-{call.params['ResourceId']}-AlarmHigh-local")
    return [_scalable_target(call), Authorization("cloudwatch:DeleteAlarms", alarm)]


def _alarms(action: str) -> Rule:
    """CloudWatch's alarm reads: each named alarm, or every alarm when none is named."""

    def rule(call: ApiCall) -> list[Authorization]:
        names = call.params.get("AlarmNames") or (
            [call.params["AlarmName"]] if "AlarmName" in call.params else []
        )
        return [Authorization(action, call.arn("cloudwatch", f"alarm:{name}")) for name in names] or [
            Authorization(action, "*")
        ]

    return rule


def _anything(action: str) -> Rule:
    """An action AWS supports no resource-level permissions for: evaluated against "*"."""
    return lambda call: [Authorization(action, "*")]


# --- S3, SSM, Step Functions, SNS, Secrets Manager, Lambda ----------------------------------------------------


def _object(action: str) -> Rule:
    return lambda call: [
        Authorization(action, f"arn:{call.partition}:s3:::{call.params['Bucket']}/{call.params['Key']}")
    ]


def _list_bucket(call: ApiCall) -> list[Authorization]:
    return [
        Authorization(
            "s3:ListBucket",
            f"arn:{call.partition}:s3:::{call.params['Bucket']}",
            {"s3:prefix": call.params.get("Prefix", "")},
        )
    ]


def _bucket(action: str) -> Rule:
    return lambda call: [Authorization(action, f"arn:{call.partition}:s3:::{call.params['Bucket']}")]


def _parameter_arn(call: ApiCall, name: str) -> str:
    return call.arn("ssm", f"parameter/{name.lstrip('/')}")


def _parameter(parameter: str, *, tagged: bool = False) -> Rule:
    def rule(call: ApiCall) -> list[Authorization]:
        resource = _parameter_arn(call, call.params[parameter])
        found = [Authorization(f"ssm:{call.operation}", resource)]
        if tagged and call.params.get("Tags"):
            found.append(Authorization("ssm:AddTagsToResource", resource))
        return found

    return rule


def _parameter_tags(call: ApiCall) -> list[Authorization]:
    return [Authorization(f"ssm:{call.operation}", _parameter_arn(call, call.params["ResourceId"]))]


def _states(parameter: str) -> Rule:
    return lambda call: [Authorization(f"states:{call.operation}", call.params[parameter])]


def _publish(call: ApiCall) -> list[Authorization]:
    return [Authorization("sns:Publish", call.params.get("TopicArn") or call.params["TargetArn"])]


def _secret_value(call: ApiCall) -> list[Authorization]:
    """IAM evaluates a secret's full ARN (with its random suffix): only a call naming the ARN is mapped, as the
    Slack notifier's does."""
    secret_id = call.params["SecretId"]
    if not secret_id.startswith("arn:"):
        raise UnmappedCall(f"secretsmanager:GetSecretValue of {secret_id!r}: pass the secret's ARN")
    return [Authorization("secretsmanager:GetSecretValue", secret_id)]


def _invoke_function(call: ApiCall) -> list[Authorization]:
    name = call.params["FunctionName"]
    arn = name if name.startswith("arn:") else call.arn("lambda", f"function:{name}")
    if call.params.get("Qualifier"):
        arn = f"{arn}:{call.params['Qualifier']}"
    return [Authorization("lambda:InvokeFunction", arn)]


_CALLS: Final[dict[tuple[str, str], Rule]] = {
    ("sagemaker", "CreateHyperParameterTuningJob"): _with(
        _sagemaker("hyper-parameter-tuning-job", "HyperParameterTuningJobName", tagged=True),
        _tuning_job_roles,
    ),
    ("sagemaker", "DescribeHyperParameterTuningJob"): _sagemaker(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "StopHyperParameterTuningJob"): _sagemaker(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"): _sagemaker(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "ListHyperParameterTuningJobs"): _anything("sagemaker:ListHyperParameterTuningJobs"),
    ("sagemaker", "DescribeTrainingJob"): _sagemaker("training-job", "TrainingJobName"),
    ("sagemaker", "CreateProcessingJob"): _with(
        _sagemaker("processing-job", "ProcessingJobName", tagged=True), _processing_job_role
    ),
    ("sagemaker", "DescribeProcessingJob"): _sagemaker("processing-job", "ProcessingJobName"),
    ("sagemaker", "StopProcessingJob"): _sagemaker("processing-job", "ProcessingJobName"),
    # A transform job runs as its model's execution role, which CreateModel passed: CreateTransformJob passes none.
    ("sagemaker", "CreateTransformJob"): _sagemaker("transform-job", "TransformJobName", tagged=True),
    ("sagemaker", "DescribeTransformJob"): _sagemaker("transform-job", "TransformJobName"),
    ("sagemaker", "StopTransformJob"): _sagemaker("transform-job", "TransformJobName"),
    ("sagemaker", "DescribeAlgorithm"): _sagemaker("algorithm", "AlgorithmName"),
    ("sagemaker", "CreateModel"): _with(_sagemaker("model", "ModelName", tagged=True), _model_role),
    ("sagemaker", "DescribeModel"): _sagemaker("model", "ModelName"),
    ("sagemaker", "CreateEndpointConfig"): _sagemaker("endpoint-config", "EndpointConfigName", tagged=True),
    ("sagemaker", "DescribeEndpointConfig"): _sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DeleteEndpointConfig"): _sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DeleteEndpoint"): _sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "DeleteModel"): _sagemaker("model", "ModelName"),
    ("sagemaker", "ListEndpoints"): _anything("sagemaker:ListEndpoints"),
    ("sagemaker", "ListEndpointConfigs"): _anything("sagemaker:ListEndpointConfigs"),
    ("sagemaker", "ListModels"): _anything("sagemaker:ListModels"),
    ("sagemaker", "CreateEndpoint"): _endpoint_and_config,
    ("sagemaker", "UpdateEndpoint"): _endpoint_and_config,
    ("sagemaker", "DescribeEndpoint"): _sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "ListTags"): _list_tags,
    ("sagemaker", "CreateModelPackage"): _create_model_package,
    ("sagemaker", "DescribeModelPackage"): _sagemaker("model-package", "ModelPackageName"),
    ("sagemaker", "UpdateModelPackage"): _update_model_package,
    ("sagemaker", "ListModelPackages"): _anything("sagemaker:ListModelPackages"),
    ("sagemaker", "DescribeModelPackageGroup"): _sagemaker("model-package-group", "ModelPackageGroupName"),
    ("sagemaker-runtime", "InvokeEndpoint"): _invoke_endpoint,
    ("cloudwatch", "DescribeAlarms"): _alarms("cloudwatch:DescribeAlarms"),
    ("cloudwatch", "DescribeAlarmHistory"): _alarms("cloudwatch:DescribeAlarmHistory"),
    ("application-autoscaling", "RegisterScalableTarget"): _register_scalable_target,
    ("application-autoscaling", "DeregisterScalableTarget"): _deregister_scalable_target,
    ("application-autoscaling", "PutScalingPolicy"): _put_scaling_policy,
    ("application-autoscaling", "DeleteScalingPolicy"): _delete_scaling_policy,
    ("application-autoscaling", "DescribeScalableTargets"): _anything(
        "application-autoscaling:DescribeScalableTargets"
    ),
    ("application-autoscaling", "DescribeScalingPolicies"): _anything(
        "application-autoscaling:DescribeScalingPolicies"
    ),
    ("s3", "GetObject"): _object("s3:GetObject"),
    ("s3", "HeadObject"): _object("s3:GetObject"),
    ("s3", "PutObject"): _object("s3:PutObject"),
    ("s3", "CreateMultipartUpload"): _object("s3:PutObject"),
    ("s3", "UploadPart"): _object("s3:PutObject"),
    ("s3", "CompleteMultipartUpload"): _object("s3:PutObject"),
    ("s3", "AbortMultipartUpload"): _object("s3:AbortMultipartUpload"),
    ("s3", "ListObjectsV2"): _list_bucket,
    ("s3", "ListObjects"): _list_bucket,
    ("s3", "GetBucketLocation"): _bucket("s3:GetBucketLocation"),
    ("ssm", "GetParametersByPath"): _parameter("Path"),
    ("ssm", "GetParameter"): _parameter("Name"),
    ("ssm", "PutParameter"): _parameter("Name", tagged=True),
    ("ssm", "DeleteParameter"): _parameter("Name"),
    ("ssm", "AddTagsToResource"): _parameter_tags,
    ("ssm", "ListTagsForResource"): _parameter_tags,
    ("stepfunctions", "StartExecution"): _states("stateMachineArn"),
    ("stepfunctions", "DescribeExecution"): _states("executionArn"),
    ("stepfunctions", "StopExecution"): _states("executionArn"),
    ("sns", "Publish"): _publish,
    ("secretsmanager", "GetSecretValue"): _secret_value,
    ("lambda", "Invoke"): _invoke_function,
}


# --- what an optimised integration does with the state machine's role beyond its API call --------------------

# SageMaker action -> the resource it creates or changes (type, name field); AWS's generated policies for the
# SageMaker integrations grant sagemaker:ListTags beside each (Step Functions guide, "IAM policies for using
# Step Functions with SageMaker").
_SAGEMAKER_RESOURCES: Final = {
    "createHyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "createTrainingJob": ("training-job", "TrainingJobName"),
    "createTransformJob": ("transform-job", "TransformJobName"),
    "createProcessingJob": ("processing-job", "ProcessingJobName"),
    "createModel": ("model", "ModelName"),
    "createEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "createEndpoint": ("endpoint", "EndpointName"),
    "updateEndpoint": ("endpoint", "EndpointName"),
}
# .sync jobs: the action that stops the job when the execution stops, and the managed EventBridge rule through
# which Step Functions learns that it ended (created with the role's events permissions).
_SAGEMAKER_SYNC: Final = {
    "createHyperParameterTuningJob": (
        "StopHyperParameterTuningJob",
        "StepFunctionsGetEventsForSageMakerTuningJobsRule",
    ),
    "createTrainingJob": ("StopTrainingJob", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
    "createTransformJob": ("StopTransformJob", "StepFunctionsGetEventsForSageMakerTransformJobsRule"),
    "createProcessingJob": ("StopProcessingJob", "StepFunctionsGetEventsForSageMakerProcessingJobsRule"),
}
EXECUTION_RULE: Final = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
MANAGED_RULE_ACTIONS: Final = ("events:PutTargets", "events:PutRule", "events:DescribeRule")


def integration_authorizations(
    resource: str, parameters: dict[str, Any], region: str, account: str, partition: str = "aws"
) -> list[Authorization]:
    """The authorizations an optimised Task needs of the state machine's role besides its API call: ListTags for
    SageMaker; for ``.sync``, stopping the job and the managed rule."""
    call = ApiCall("states", "", parameters, region, account, partition)
    parts = resource.split(":")
    if len(parts) < 7 or parts[2] != "states" or parts[5] == "aws-sdk":
        return []
    service, action, sync = parts[5], parts[6].split(".")[0], ".sync" in resource
    found: list[Authorization] = []
    rule: str | None = None
    if service == "sagemaker" and action in _SAGEMAKER_RESOURCES:
        kind, name_field = _SAGEMAKER_RESOURCES[action]
        arn = _sagemaker_arn(call, kind, str(parameters.get(name_field, "")))
        found.append(Authorization("sagemaker:ListTags", arn))
        if sync and action in _SAGEMAKER_SYNC:
            stop, rule = _SAGEMAKER_SYNC[action]
            found.append(Authorization(f"sagemaker:{stop}", arn))
    elif service == "states" and action == "startExecution" and sync:
        machine_name = str(parameters.get("StateMachineArn", "")).rsplit(":", 1)[-1]
        execution = call.arn("states", f"execution:{machine_name}:{parameters.get('Name', '*')}")
        found.append(Authorization("states:StopExecution", execution))
        rule = EXECUTION_RULE
    if rule:
        found += [
            Authorization(action, call.arn("events", f"rule/{rule}")) for action in MANAGED_RULE_ACTIONS
        ]
    return found
