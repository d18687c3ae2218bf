"""Structural rules of the model-tuning state machine and its template: every failure is notified and surfaces
its cause, retries never re-create a tuning job that already ran, the one MetricDefinitions list matches the
trainer's metric-line contract, the output is the contract the parent relies on, and IAM stays scoped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from best_model_selector import BestModel
from cfnlint.decode import cfn_yaml

APP = Path(__file__).resolve().parents[2] / "sagemaker-model-tuner"
ASL_FILE = APP / "statemachine" / "model-tuning.asl.json"
DEFINITION: dict[str, Any] = json.loads(ASL_FILE.read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]
TEMPLATE: dict[str, Any] = cfn_yaml.load(str(APP / "template.yaml"))
NOTIFY = "NotifyFailure"
CREATE_MODEL_TASKS = ("CreateModel", "CreateModelInVpc")
# The trainer's metric-line contract: `<channel>:<metric>=<value>;` for these metrics of each model category.
METRICS_BY_CATEGORY = {
    "binomial": ("auc", "logloss", "rmse", "mse", "gini", "aucpr"),
    "multinomial": ("logloss", "rmse", "mse", "mean_per_class_error"),
    "regression": ("rmse", "mse", "mae", "r2", "rmsle"),
}
CHANNELS = ("validation", "training")
OUTPUT_KEYS = {
    "modelName",
    "hyperParameterTuningJobName",
    "trainingJobName",
    "modelDataUrl",
    "inferenceImage",
    "objective",
    "hyperParameters",
}


def transitions(state: dict[str, Any]) -> set[str]:
    targets = {state[key] for key in ("Next", "Default") if key in state}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    targets |= {catcher["Next"] for catcher in state.get("Catch", [])}
    return targets


def reachable(start: str) -> set[str]:
    seen, pending = set(), [start]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(transitions(STATES[name]))
    return seen


def values_of(key: str, value: Any) -> list[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(value, dict):
        return [item for name, item in value.items() if name == key] + [
            found for item in value.values() for found in values_of(key, item)
        ]
    if isinstance(value, list):
        return [found for item in value for found in values_of(key, item)]
    return []


def metric_definitions() -> list[dict[str, str]]:
    (definitions,) = values_of("MetricDefinitions", DEFINITION)
    return definitions


def state_machine_properties() -> dict[str, Any]:
    (machine,) = (
        resource["Properties"]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    )
    return machine


def policy_statements() -> list[dict[str, Any]]:
    statements = []
    for resource in TEMPLATE["Resources"].values():
        properties = resource["Properties"]
        for policy in properties.get("Policies", []):
            statements.extend(
                policy.get("Statement", []) or policy.get("PolicyDocument", {}).get("Statement", [])
            )
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def failing_tasks() -> list[str]:
    return [name for name, state in STATES.items() if state["Type"] == "Task" and name != NOTIFY]


def test_every_state_is_reachable_and_every_transition_exists() -> None:
    for name, state in STATES.items():
        assert transitions(state) <= set(STATES), f"{name} points at a missing state"
    assert reachable(DEFINITION["StartAt"]) == set(STATES)


def test_the_workflow_has_no_loop_and_no_wait() -> None:
    """The .sync integration does the waiting, so nothing here can spin forever."""
    for name in STATES:
        assert name not in set().union(*(reachable(target) for target in transitions(STATES[name]))), name
    assert not [name for name, state in STATES.items() if state["Type"] == "Wait"]


@pytest.mark.parametrize("name", failing_tasks())
def test_every_failing_task_is_caught_and_notified_under_its_own_name(name: str) -> None:
    (catcher,) = STATES[name]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    assert catcher["ResultPath"] == "$.error"
    marker = STATES[catcher["Next"]]
    assert marker == {"Type": "Pass", "Result": name, "ResultPath": "$.failedState", "Next": NOTIFY}


def test_failures_are_published_then_surface_the_real_error() -> None:
    notify = STATES[NOTIFY]
    assert notify["Resource"] == "arn:${Partition}:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == "${NotificationTopicArn}"
    assert notify["Parameters"]["Subject"]
    assert notify["Parameters"]["Message"] == {
        "workflow": "sagemaker-model-tuner",
        "execution.$": "$$.Execution.Id",
        "state.$": "$.failedState",
        "error.$": "$.error.Error",
        "cause.$": "$.error.Cause",
    }
    assert notify["ResultPath"] is None, "the error must survive the publish"
    assert notify["Next"] == notify["Catch"][0]["Next"] == "Failed"
    # A Fail state may not raise a States.* name (a failed job's States.TaskFailed): the workflow's own error,
    # and the original error and cause in the Cause.
    assert STATES["Failed"] == {
        "Type": "Fail",
        "Error": "ModelTuningFailed",
        "CausePath": "States.Format('{}: {}', $.error.Error, $.error.Cause)",
    }


def test_the_algorithm_source_decides_the_training_specification() -> None:
    choice = STATES["ChooseAlgorithmSource"]
    assert DEFINITION["StartAt"] == "ChooseAlgorithmSource"
    assert choice["Choices"] == [
        {"Variable": "$.algorithm.algorithmArn", "IsPresent": True, "Next": "UseAlgorithmResource"}
    ]
    assert choice["Default"] == "UseTrainingImage"
    resource = STATES["UseAlgorithmResource"]["Parameters"]
    image = STATES["UseTrainingImage"]["Parameters"]
    assert resource["AlgorithmSpecification"] == {
        "AlgorithmName.$": "$.algorithm.algorithmArn",
        "TrainingInputMode": "File",
    }, "an algorithm resource declares its own metrics"
    assert image["AlgorithmSpecification"]["TrainingImage.$"] == "$.algorithm.trainingImage"
    for name in ("UseAlgorithmResource", "UseTrainingImage"):
        state = STATES[name]
        assert state["Parameters"]["RoleArn"] == "${SageMakerExecutionRoleArn}"
        assert state["ResultPath"] == "$.trainingJobExtras"
        assert state["Next"] == "TuneHyperparameters"


def test_the_tuning_job_definition_is_the_input_plus_the_algorithm_and_role() -> None:
    tune = STATES["TuneHyperparameters"]
    assert tune["Resource"] == "arn:${Partition}:states:::sagemaker:createHyperParameterTuningJob.sync"
    parameters = tune["Parameters"]
    assert parameters["HyperParameterTuningJobName.$"] == "$.hyperParameterTuningJobName"
    assert parameters["HyperParameterTuningJobConfig.$"] == "$.hyperParameterTuningJobConfig"
    assert (
        parameters["TrainingJobDefinition.$"]
        == "States.JsonMerge($.trainingJobDefinition, $.trainingJobExtras, false)"
    )
    assert {"Key": "workflow-execution", "Value.$": "$$.Execution.Name"} in parameters["Tags"]
    assert tune["ResultPath"] == "$.tuningJob", "the input the next steps read must survive"


def test_tuning_retries_only_failures_to_start() -> None:
    """A tuning job that ran keeps its name: retrying after it failed or timed out could never start it."""
    retried = {
        error for retrier in STATES["TuneHyperparameters"]["Retry"] for error in retrier["ErrorEquals"]
    }
    assert {"SageMaker.ResourceLimitExceededException", "SageMaker.AmazonSageMakerException"} <= retried
    assert not retried & {"States.ALL", "States.TaskFailed", "States.Timeout"}
    limits = next(
        retrier
        for retrier in STATES["TuneHyperparameters"]["Retry"]
        if "SageMaker.ResourceLimitExceededException" in retrier["ErrorEquals"]
    )
    assert limits["IntervalSeconds"] >= 30, "a concurrency limit frees up in minutes, not seconds"


def test_the_selector_is_retried_on_lambda_hiccups_but_never_on_its_verdicts() -> None:
    select = STATES["SelectBestModel"]
    assert select["Resource"] == "arn:${Partition}:states:::lambda:invoke"
    assert select["Parameters"] == {
        "FunctionName": "${BestModelSelectorFunctionArn}",
        "Payload": {
            "hyperParameterTuningJobName.$": "$.hyperParameterTuningJobName",
            "algorithm.$": "$.algorithm",
        },
    }
    retrier, unavailable = select["Retry"]
    assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "States.Timeout"} <= set(
        retrier["ErrorEquals"]
    )
    assert not {
        error for error in retrier["ErrorEquals"] if not error.startswith(("Lambda.", "States.Timeout"))
    }
    # SageMaker throttled or failing beyond the SDK's retries: the selector's one retried verdict.
    assert unavailable["ErrorEquals"] == ["AwsServiceUnavailable"]
    assert select["TimeoutSeconds"] > 60, "longer than the function's own timeout"


def test_the_selectors_output_is_read_key_by_key_from_the_function_contract() -> None:
    selector = STATES["SelectBestModel"]["ResultSelector"]
    function_keys = {field.alias or name for name, field in BestModel.model_fields.items()}
    assert selector == {f"{key}.$": f"$.Payload.{key}" for key in function_keys}
    assert STATES["SelectBestModel"]["ResultPath"] == "$.bestModel"


def test_the_model_is_created_from_the_selected_job_inside_its_vpc_when_given() -> None:
    choice = STATES["HasModelVpcConfig"]
    assert STATES["SelectBestModel"]["Next"] == "HasModelVpcConfig"
    assert choice["Choices"] == [
        {"Variable": "$.model.vpcConfig", "IsPresent": True, "Next": "CreateModelInVpc"}
    ]
    assert choice["Default"] == "CreateModel"
    plain, in_vpc = (STATES[name] for name in CREATE_MODEL_TASKS)
    assert plain["Resource"] == in_vpc["Resource"] == "arn:${Partition}:states:::sagemaker:createModel"
    parameters = dict(in_vpc["Parameters"])
    assert parameters.pop("VpcConfig.$") == "$.model.vpcConfig"
    assert parameters == plain["Parameters"], "the two model tasks differ only by the VPC"
    assert parameters["ModelName.$"] == "$.model.modelName"
    assert parameters["ExecutionRoleArn"] == "${SageMakerExecutionRoleArn}"
    assert parameters["PrimaryContainer"] == {
        "Image.$": "$.bestModel.inferenceImage",
        "ModelDataUrl.$": "$.bestModel.modelDataUrl",
    }
    assert parameters["EnableNetworkIsolation"] is True
    for name in CREATE_MODEL_TASKS:
        assert STATES[name]["Next"] == "Summarize"
        assert STATES[name]["ResultPath"] is None


def test_the_output_is_the_contract_the_parent_merges_into_the_deployment() -> None:
    (last,) = (state for state in STATES.values() if state.get("End"))
    assert last is STATES["Summarize"]
    assert {key.removesuffix(".$") for key in last["Parameters"]} == OUTPUT_KEYS
    assert last["Parameters"]["modelName.$"] == "$.model.modelName"
    for key in OUTPUT_KEYS - {"modelName"}:
        assert last["Parameters"][f"{key}.$"] == f"$.bestModel.{key}"


def test_metric_definitions_cover_every_metric_line_the_trainer_prints() -> None:
    expected = {
        f"{channel}:{metric}"
        for channel in CHANNELS
        for metrics in METRICS_BY_CATEGORY.values()
        for metric in metrics
    }
    definitions = metric_definitions()
    names = [definition["Name"] for definition in definitions]
    assert len(names) == len(set(names)), "a metric is defined twice"
    assert set(names) == expected
    assert len(definitions) <= 40, "SageMaker accepts at most 40 metric definitions"
    for definition in definitions:
        assert definition == {"Name": definition["Name"], "Regex": f"{definition['Name']}=([-+0-9.eE]+);"}


def test_each_regex_reads_its_own_line_only() -> None:
    """`mse` must not match inside `rmse`, nor `auc` inside `aucpr`, nor one channel the other's line."""
    lines = {
        definition["Name"]: f"{definition['Name']}={index}.5e-3;"
        for index, definition in enumerate(metric_definitions())
    }
    output = "\n".join(["Training finished", *lines.values(), "validation:auc=nan"])
    for index, definition in enumerate(metric_definitions()):
        assert re.findall(definition["Regex"], output) == [f"{index}.5e-3"], definition["Name"]
    assert re.search(metric_definitions()[0]["Regex"], "validation:auc=-0.25;").group(1) == "-0.25"


def test_metric_definitions_live_in_one_place() -> None:
    assert len(values_of("MetricDefinitions", DEFINITION)) == 1
    assert "MetricDefinitions" not in (APP / "template.yaml").read_text()


def test_only_portable_constructs_are_used() -> None:
    text = ASL_FILE.read_text()
    for key in ("QueryLanguage", "Assign", "Arguments", "Output", "RoleArn.$"):
        assert not values_of(key, DEFINITION), key
    assert "{%" not in text, "JSONPath only"


def test_placeholders_and_definition_substitutions_match() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_FILE.read_text()))
    properties = state_machine_properties()
    assert used == set(properties["DefinitionSubstitutions"])
    assert properties["DefinitionUri"] == "statemachine/model-tuning.asl.json"
    assert properties["Type"] == "STANDARD"


def test_the_template_names_nothing_and_takes_the_conventional_parameters() -> None:
    parameters = TEMPLATE["Parameters"]
    assert {"Environment", "SharedLayerArn", "NotificationTopicArn", "DataBucketName"} <= set(parameters)
    assert "Default" not in parameters["SharedLayerArn"]
    assert parameters["NotificationTopicArn"]["Default"] == ""
    for resource in TEMPLATE["Resources"].values():
        assert not {"FunctionName", "StateMachineName", "TopicName", "RoleName"} & set(resource["Properties"])
    assert {
        "StateMachineArn",
        "StateMachineName",
        "NotificationTopicArn",
        "SageMakerExecutionRoleArn",
    } <= set(TEMPLATE["Outputs"])


def test_wildcard_resources_are_granted_only_for_actions_without_resource_scoping() -> None:
    wildcard_actions = {
        action
        for statement in policy_statements()
        if statement["Resource"] == "*"
        for action in as_list(statement["Action"])
    }
    assert {action.split(":")[0] for action in wildcard_actions} == {
        "ecr",
        "cloudwatch",
        "ec2",
        "logs",
        "xray",
    }
    assert {action for action in wildcard_actions if action.startswith(("ecr:", "cloudwatch:", "xray:"))} == {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert all(action.startswith("ec2:Describe") for action in wildcard_actions if action.startswith("ec2:"))
    (metrics,) = (s for s in policy_statements() if s["Action"] == "cloudwatch:PutMetricData")
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    assert "s3:::*" not in (APP / "template.yaml").read_text()


def test_sagemaker_role_is_passed_only_to_sagemaker() -> None:
    (pass_role,) = (s for s in policy_statements() if s["Action"] == "iam:PassRole")
    assert pass_role["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    trust = TEMPLATE["Resources"]["SageMakerExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
