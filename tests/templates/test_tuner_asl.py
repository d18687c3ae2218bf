"""Structural rules of the model-tuning state machine and its template (the rules every state machine follows
are in test_asl_rules.py): no loop and no wait, retries never re-create a tuning job that already ran, the one
MetricDefinitions list matches the trainer's metric-line contract, the output is the contract the parent relies
on, and IAM stays scoped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from best_model_selector import BestModel
from cfnlint.decode import cfn_yaml
from h2o_gbm_trainer.environment import CHANNELS
from h2o_gbm_trainer.metrics import METRICS_BY_CATEGORY, metric_lines
from templates import asl

APP = Path(__file__).resolve().parents[2] / "sagemaker-model-tuner"
ASL_FILE = APP / "statemachine" / "model-tuning.asl.json"
DEFINITION: dict[str, Any] = json.loads(ASL_FILE.read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]
TEMPLATE: dict[str, Any] = cfn_yaml.load(str(APP / "template.yaml"))
CREATE_MODEL_TASKS = ("CreateModel", "CreateModelInVpc")
OUTPUT_KEYS = {
    "modelName",
    "hyperParameterTuningJobName",
    "trainingJobName",
    "modelDataUrl",
    "inferenceImage",
    "objective",
    "hyperParameters",
    "warmStartParents",
}


def reachable(start: str) -> set[str]:
    return asl.reachable(STATES, start)


def metric_definitions() -> list[dict[str, str]]:
    (definitions,) = asl.values_of("MetricDefinitions", DEFINITION)
    return definitions


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


def test_the_workflow_has_no_loop_and_no_wait() -> None:
    """The .sync integration does the waiting, so nothing here can spin forever."""
    for name in STATES:
        assert name not in set().union(*(reachable(target) for target in asl.transitions(STATES[name]))), name
    assert not [name for name, state in STATES.items() if state["Type"] == "Wait"]


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
        assert state["Next"] == "IsWarmStart"


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


def test_a_warm_start_is_the_same_tuning_job_with_the_parents_the_trigger_found() -> None:
    assert STATES["IsWarmStart"]["Choices"] == [
        {"Variable": "$.warmStartConfig", "IsPresent": True, "Next": "TuneHyperparametersWarmStart"}
    ]
    assert STATES["IsWarmStart"]["Default"] == "TuneHyperparameters"
    cold, warm = STATES["TuneHyperparameters"], STATES["TuneHyperparametersWarmStart"]
    assert warm["Parameters"] == cold["Parameters"] | {"WarmStartConfig.$": "$.warmStartConfig"}
    assert warm["Catch"] == [
        catcher | {"Next": "TuneHyperparametersWarmStartFailed"} for catcher in cold["Catch"]
    ]
    same = {key: value for key, value in warm.items() if key not in ("Parameters", "Catch", "Comment")}
    assert same == {
        key: value for key, value in cold.items() if key not in ("Parameters", "Catch", "Comment")
    }
    assert STATES["TuneHyperparametersWarmStartFailed"]["Result"] == "TuneHyperparametersWarmStart"


@pytest.mark.parametrize("task", ["TuneHyperparameters", "TuneHyperparametersWarmStart"])
def test_tuning_retries_only_failures_to_start(task: str) -> None:
    """A tuning job that ran keeps its name: retrying after it failed or timed out could never start it."""
    retried = {error for retrier in STATES[task]["Retry"] for error in retrier["ErrorEquals"]}
    assert {"SageMaker.ResourceLimitExceededException", "SageMaker.AmazonSageMakerException"} <= retried
    assert not retried & {"States.ALL", "States.TaskFailed", "States.Timeout"}
    limits = next(
        retrier
        for retrier in STATES[task]["Retry"]
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
    assert {
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.ClientExecutionTimeoutException",
        "States.Timeout",
    } <= set(retrier["ErrorEquals"])
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
    # True unless the endpoint is serverless (test_isolation_and_secrets.py).
    assert parameters["EnableNetworkIsolation.$"] == "$.model.enableNetworkIsolation"
    for name in CREATE_MODEL_TASKS:
        assert STATES[name]["Next"] == "NotifyTuningCompleted"
        assert STATES[name]["ResultPath"] is None


def test_the_output_is_the_contract_the_parent_merges_into_the_deployment() -> None:
    (last,) = (state for state in STATES.values() if state.get("End"))
    assert last is STATES["Summarize"]
    assert {key.removesuffix(".$") for key in last["Parameters"]} == OUTPUT_KEYS
    assert last["Parameters"]["modelName.$"] == "$.model.modelName"
    for key in OUTPUT_KEYS - {"modelName"}:
        assert last["Parameters"][f"{key}.$"] == f"$.bestModel.{key}"


def test_metric_definitions_cover_every_metric_line_the_trainer_prints() -> None:
    """The trainer's own table and line format: each line it can print for any channel and model category."""
    lines = [
        line
        for channel in CHANNELS
        for metrics in METRICS_BY_CATEGORY.values()
        for line in metric_lines(channel, dict.fromkeys(metrics, 0.5))
    ]
    expected = {line.split("=")[0] for line in lines}
    definitions = metric_definitions()
    names = [definition["Name"] for definition in definitions]
    assert len(names) == len(set(names)), "a metric is defined twice"
    assert set(names) == expected
    assert len(definitions) <= 40, "SageMaker accepts at most 40 metric definitions"
    for definition in definitions:
        assert definition == {"Name": definition["Name"], "Regex": f"{definition['Name']}=([-+0-9.eE]+);"}
    regexes = {definition["Name"]: definition["Regex"] for definition in definitions}
    for line in lines:
        assert re.fullmatch(regexes[line.split("=")[0]], line).group(1) == "0.5", line


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
    assert len(asl.values_of("MetricDefinitions", DEFINITION)) == 1
    assert "MetricDefinitions" not in (APP / "template.yaml").read_text()


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
