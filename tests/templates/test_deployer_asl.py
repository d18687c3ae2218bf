"""Structural rules of the endpoint-deployment state machine (the rules every state machine follows are in
test_asl_rules.py): a failure waits for a busy endpoint or deletes the unused configuration before it is
notified, every wait loop is bounded, and the steps that fix the original's auto-scaling bugs stay in place."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from templates import asl

APP = Path(__file__).resolve().parents[2] / "sagemaker-model-deployer"
ASL_FILE = APP / "statemachine" / "endpoint-deployment.asl.json"
DEFINITION: dict[str, Any] = json.loads(ASL_FILE.read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]
BUSY_STATUSES = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
NOTIFY = asl.NOTIFY
# Tasks after which, when they fail, no endpoint serves this run's new configuration.
CONFIG_UNUSED_ON_FAILURE = {
    "CreateEndpoint",
    "DetachBlockingAutoScaling",
    "UpdateEndpoint",
    "UpdateServerlessEndpoint",
}
RESTORE = "RestoreDetachedAutoScaling"
# With and without data capture: the same configuration, through two integrations.
CREATE_ENDPOINT_CONFIG = ("CreateEndpointConfig", "CreateEndpointConfigWithDataCapture")


def reachable(start: str) -> set[str]:
    return asl.reachable(STATES, start)


def has_cycle(removed: set[str]) -> bool:
    """Depth-first search for a cycle among the states left after removing ``removed``."""
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> bool:
        if name in removed or name in done:
            return False
        if name in visiting:
            return True
        visiting.add(name)
        found = any(visit(target) for target in asl.transitions(STATES[name]))
        visiting.discard(name)
        done.add(name)
        return found

    return any(visit(name) for name in STATES)


@pytest.mark.parametrize("name", asl.failing_tasks(STATES))
def test_a_failure_waits_for_a_busy_endpoint_or_deletes_the_unused_configuration_before_notifying(
    name: str,
) -> None:
    """The rest of each catch is the shared rule (test_asl_rules.py)."""
    (catcher,) = STATES[name]["Catch"]
    marker = STATES[catcher["Next"]]
    if marker["Type"] == "Choice":
        # An endpoint busy with another run's operation is waited for first; a rolled-back update is marked in
        # the registry first (its message read from the error).
        assert {choice["Next"] for choice in marker["Choices"]} in (
            {"HasWaitBudgetForIdleEndpoint"},
            {"ReadRollbackMessage"},
        )
        marker = STATES[marker["Default"]]
    # A failure before any endpoint took this run's configuration deletes it first; one while waiting for an
    # idle endpoint, maybe after a detach, restores the endpoint's auto scaling.
    cleanup = (
        "DeleteUnusedEndpointConfig"
        if name in CONFIG_UNUSED_ON_FAILURE
        else RESTORE
        if name == "InspectEndpoint"
        else NOTIFY
    )
    assert marker["Next"] == cleanup


def test_a_failure_before_the_endpoint_took_the_new_configuration_deletes_it() -> None:
    assert asl.failure_reporting_tasks(STATES) == {
        NOTIFY,
        "DeleteUnusedEndpointConfig",
        "MarkModelPackageRolledBack",
        RESTORE,
    }
    cleanup = STATES["DeleteUnusedEndpointConfig"]
    assert cleanup["Resource"] == "arn:${Partition}:states:::aws-sdk:sagemaker:deleteEndpointConfig"
    assert cleanup["Parameters"] == {"EndpointConfigName.$": "$.endpointConfigName"}
    assert cleanup["Next"] == RESTORE
    assert cleanup["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.cleanupError", "Next": RESTORE}
    ]
    assert {name for name, state in STATES.items() if state.get("Next") == "DeleteUnusedEndpointConfig"} == {
        f"{name}Failed" for name in CONFIG_UNUSED_ON_FAILURE
    }


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("CreateEndpoint", "Cannot create already existing endpoint"),
        ("UpdateEndpoint", "Cannot update in-progress endpoint"),
        ("UpdateServerlessEndpoint", "Cannot update in-progress endpoint"),
    ],
)
def test_an_endpoint_another_run_made_busy_is_waited_for_then_updated(task: str, message: str) -> None:
    """Two runs that both found the endpoint absent or idle: the second's call fails with SageMaker's message
    (a ValidationException); it waits for the endpoint like a busy one found by the inspection, then updates it
    with the configuration it already made."""
    choice = STATES[STATES[task]["Catch"][0]["Next"]]
    (busy,) = choice["Choices"]
    assert busy == {
        "Variable": "$.error.Cause",
        "StringMatches": f"*{message}*",
        "Next": "HasWaitBudgetForIdleEndpoint",
    }
    assert STATES["IsEndpointIdle"]["Default"] == "HasEndpointConfig"
    config_made = STATES["HasEndpointConfig"]
    assert config_made["Choices"] == [
        {"Variable": "$.createdEndpointConfig", "IsPresent": True, "Next": "DoesEndpointExist"}
    ]
    assert config_made["Default"] == "IsServerlessEndpoint"
    for create in (*CREATE_ENDPOINT_CONFIG, "CreateServerlessEndpointConfig"):
        assert STATES[create]["ResultPath"] == "$.createdEndpointConfig"


def test_retries_never_repeat_the_inspectors_verdicts() -> None:
    for name, state in STATES.items():
        for retrier in state.get("Retry", []):
            assert not {"States.ALL", "EndpointFailed", "EndpointUpdateRolledBack"} & set(
                retrier["ErrorEquals"]
            ), name
            assert retrier["MaxAttempts"] <= 4, name


def test_the_inspector_task_retries_lambda_hiccups_and_timeouts() -> None:
    for name in ("InspectEndpoint", "InspectDeployment"):
        state = STATES[name]
        assert state["Resource"] == "${EndpointInspectorFunctionArn}"
        errors = set(state["Retry"][0]["ErrorEquals"])
        assert {
            "Lambda.TooManyRequestsException",
            "Lambda.ServiceException",
            "Lambda.ClientExecutionTimeoutException",
            "States.Timeout",
        } <= errors
        assert state["TimeoutSeconds"] > 60, "longer than the function's own timeout"


def test_errors_raised_by_the_workflow_itself_have_a_name_and_a_cause() -> None:
    builders = [
        name
        for name, state in STATES.items()
        if state["Type"] == "Pass" and state.get("ResultPath") == "$.error"
    ]
    assert len(builders) == 5
    for name in builders:
        parameters = STATES[name]["Parameters"]
        assert re.fullmatch(r"[A-Z]\w+", parameters["Error"]), name
        assert parameters["Cause.$"].startswith("States.Format("), name
        assert STATES[STATES[name]["Next"]]["Next"] in asl.failure_reporting_tasks(STATES)


def test_waits_take_their_length_from_the_input() -> None:
    waits = [state for state in STATES.values() if state["Type"] == "Wait"]
    assert len(waits) == 2
    assert all(
        state == {"Type": "Wait", "SecondsPath": "$.pollIntervalSeconds", "Next": state["Next"]}
        for state in waits
    )


def test_every_loop_is_bounded_by_max_poll_attempts() -> None:
    budget_checks = {
        name
        for name, state in STATES.items()
        if state["Type"] == "Choice"
        and any(
            choice.get("Variable") == "$.polling.attempts"
            and choice.get("NumericGreaterThanEqualsPath") == "$.maxPollAttempts"
            for choice in state["Choices"]
        )
    }
    counters = {
        name
        for name, state in STATES.items()
        if state["Type"] == "Pass"
        and state.get("Parameters", {}).get("attempts.$") == "States.MathAdd($.polling.attempts, 1)"
        and state["ResultPath"] == "$.polling"
    }
    resets = {
        name
        for name, state in STATES.items()
        if state.get("Result") == {"attempts": 0} or state.get("Parameters", {}).get("attempts") == 0
    }
    assert has_cycle(set()), "the state machine polls"
    assert not has_cycle(budget_checks), "a loop skips the maxPollAttempts check"
    assert not has_cycle(counters), "a loop does not count its attempts"
    assert len(budget_checks) == len(counters) == len(resets) == 2
    for reset in resets:
        assert reset not in reachable(STATES[reset]["Next"]), f"{reset} restarts the count inside its loop"


@pytest.mark.parametrize(
    ("choice", "status_path"),
    [("IsEndpointIdle", "$.endpointState.status"), ("IsDeploymentDone", "$.deploymentState.status")],
)
def test_busy_endpoints_are_waited_for(choice: str, status_path: str) -> None:
    (busy,) = (rule for rule in STATES[choice]["Choices"] if "Or" in rule)
    assert {rule["StringEquals"] for rule in busy["Or"]} == BUSY_STATUSES
    assert all(rule["Variable"] == status_path for rule in busy["Or"])
    assert STATES[busy["Next"]]["Type"] == "Choice", "busy leads to the bounded wait"


def test_the_new_configuration_starts_at_the_endpoints_current_capacity() -> None:
    for create in CREATE_ENDPOINT_CONFIG:
        (variant,) = STATES[create]["Parameters"]["ProductionVariants"]
        assert variant["InitialInstanceCount.$"] == "$.endpointState.instanceCount"
        assert variant["ModelName.$"] == "$.modelName"
    assert STATES["UpdateEndpoint"]["Parameters"]["RetainAllVariantProperties"] is True


def test_a_configuration_with_data_capture_differs_only_by_it() -> None:
    """The optimised createEndpointConfig takes no DataCaptureConfig, so a run with dataCaptureConfig creates its
    configuration through the SDK integration; everything else is the same task."""
    assert STATES["HasDataCaptureConfig"] == {
        "Type": "Choice",
        "Choices": [
            {
                "Variable": "$.dataCaptureConfig",
                "IsPresent": True,
                "Next": "CreateEndpointConfigWithDataCapture",
            }
        ],
        "Default": "CreateEndpointConfig",
    }
    plain, captured = (dict(STATES[name]) for name in CREATE_ENDPOINT_CONFIG)
    assert captured["Resource"] == "arn:${Partition}:states:::aws-sdk:sagemaker:createEndpointConfig"
    assert captured["Parameters"].pop("DataCaptureConfig.$") == "$.dataCaptureConfig"
    assert captured["Retry"][0]["ErrorEquals"] == [
        "SageMaker.SageMakerException"
    ]  # the SDK integration's name
    assert STATES[captured["Catch"][0]["Next"]]["Result"] == "CreateEndpointConfigWithDataCapture"
    for state in (plain, captured):
        for key in ("Comment", "Resource", "Retry", "Catch"):
            del state[key]
    assert captured == plain


def test_blocking_auto_scaling_is_detached_before_the_update_and_attached_after_in_service() -> None:
    assert STATES["DoesEndpointExist"]["Choices"][0]["Next"] == "DetachBlockingAutoScaling"
    detach = STATES["DetachBlockingAutoScaling"]
    assert detach["ItemsPath"] == "$.endpointState.scalableTargetsToDeregister"
    assert detach["Next"] == "IsBlueGreenUpdate"
    inner = detach["ItemProcessor"]["States"]["DeregisterScalableTarget"]
    assert (
        inner["Resource"]
        == "arn:${Partition}:states:::aws-sdk:applicationautoscaling:deregisterScalableTarget"
    )
    assert "Catch" not in inner, "the Map's own Catch reports the failure"
    in_service = next(
        rule for rule in STATES["IsDeploymentDone"]["Choices"] if rule.get("StringEquals") == "InService"
    )
    assert in_service["Next"] == "HasAutoScaling"
    assert STATES["HasAutoScaling"]["Choices"] == [
        {"Variable": "$.autoscaling", "IsPresent": True, "Next": "RegisterScalableTarget"}
    ]
    assert STATES["RegisterScalableTarget"]["Next"] == "PutScalingPolicy"
    policy = STATES["PutScalingPolicy"]["Parameters"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ResourceId.$"] == STATES["RegisterScalableTarget"]["Parameters"]["ResourceId.$"]
    # An existing endpoint is never created: only the existence check leads to CreateEndpoint.
    assert {name for name, state in STATES.items() if "CreateEndpoint" in asl.transitions(state)} == {
        "DoesEndpointExist"
    }


def test_auto_scaling_detached_for_an_update_that_fails_is_restored_as_it_was() -> None:
    """The record starts empty, each inspection of the endpoint adds to it what a detach would delete, and every
    failure after a detach on which the endpoint still serves its previous configuration registers it again."""
    record = "$.endpointState.autoScalingToRestore"
    assert STATES["StartWithNothingDetached"]["Result"] == {"autoScalingToRestore": []}
    assert STATES["StartWithNothingDetached"]["ResultPath"] == "$.endpointState"
    assert STATES["InspectEndpoint"]["Parameters"]["autoScalingToRestore.$"] == record
    assert STATES["InspectEndpoint"]["ResultPath"] == "$.endpointState"
    restore = STATES[RESTORE]
    assert restore["ItemsPath"] == record
    assert (restore["Next"], restore["Catch"]) == (
        NOTIFY,
        [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.autoScalingRestoreError", "Next": NOTIFY}],
    )
    register = restore["ItemProcessor"]["States"]["RegisterDetachedScalableTarget"]
    assert (
        register["Resource"]
        == "arn:${Partition}:states:::aws-sdk:applicationautoscaling:registerScalableTarget"
    )
    assert register["Next"] == "RestoreScalingPolicies"
    policies = restore["ItemProcessor"]["States"]["RestoreScalingPolicies"]
    assert policies["ItemsPath"] == "$.ScalingPolicies"
    put = policies["ItemProcessor"]["States"]["PutDetachedScalingPolicy"]
    assert put["Parameters"]["PolicyType"] == "TargetTrackingScaling"

    def notified_without_restoring(start: str) -> set[str]:
        """The states from ``start`` that go on to the notification other than through the restore."""
        seen, pending = set(), [start]
        while pending:
            name = pending.pop()
            if name not in seen and name != RESTORE:
                seen.add(name)
                pending += asl.transitions(STATES[name])
        return {name for name in seen if NOTIFY in asl.transitions(STATES[name]) and name != RESTORE}

    # Left alone: an endpoint that never reached InService (Failed, UpdateRollbackFailed, still updating when
    # the wait ran out), and the success path, where the new configuration's own auto scaling is attached.
    # CreateEndpointConfig is on the busy loop's way only in the graph: a run that detached has its configuration.
    assert notified_without_restoring("DetachBlockingAutoScaling") == {
        "CreateEndpointConfigFailed",
        "CreateEndpointConfigWithDataCaptureFailed",
        "CreateServerlessEndpointConfigFailed",
        "InspectDeploymentFailed",
        "RegisterScalableTargetFailed",
        "PutScalingPolicyFailed",
        "NotifyDeployedFailed",
    }


def test_the_output_is_the_documented_contract() -> None:
    (last,) = (state for state in STATES.values() if state.get("End"))
    assert set(last["Parameters"]) == {
        "endpointName.$",
        "endpointConfigName.$",
        "endpointArn.$",
        "instanceCount.$",
        "updated.$",
    }
    assert last["Parameters"]["updated.$"] == "$.endpointState.exists"


def test_the_poll_loop_waits_not_a_sync_task() -> None:
    for name, state in STATES.items():
        if state["Type"] == "Task" and state["Resource"].startswith("arn:${Partition}:states:::"):
            assert not state["Resource"].endswith(".sync"), f"{name}: the poll loop waits, not a .sync task"


def test_the_template_names_nothing_and_grants_wildcards_only_where_unavoidable() -> None:
    template = cfn_yaml.load(str(APP / "template.yaml"))
    assert {"Environment", "SharedLayerArn", "NotificationTopicArn"} <= set(template["Parameters"])
    assert "Default" not in template["Parameters"]["SharedLayerArn"]
    for resource in template["Resources"].values():
        assert not {"FunctionName", "StateMachineName", "TopicName", "RoleName"} & set(resource["Properties"])
    wildcard_actions = set()
    for resource in template["Resources"].values():
        for policy in resource["Properties"].get("Policies", []):
            statements = policy.get("Statement") or policy.get("PolicyDocument", {}).get("Statement", [])
            for statement in statements:
                if statement["Resource"] == "*":
                    actions = statement["Action"]
                    wildcard_actions |= {actions} if isinstance(actions, str) else set(actions)
    assert {action.split(":")[0] for action in wildcard_actions} == {
        "application-autoscaling",
        "logs",
        "sagemaker",
        "xray",
    }
    # The teardown finds the runs' resources by listing: SageMaker's List actions have no resource types.
    assert {action for action in wildcard_actions if action.startswith("sagemaker:")} == {
        "sagemaker:ListEndpoints",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
    }
    assert {action for action in wildcard_actions if action.startswith("xray:")} == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert {action for action in wildcard_actions if action.startswith("application-autoscaling:")} == {
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
    }
    assert {"StateMachineArn", "StateMachineName", "NotificationTopicArn"} <= set(template["Outputs"])


def test_only_an_approved_version_with_its_model_is_deployed() -> None:
    """The registry gates deployment: the version is read first, and anything but an Approved version naming
    its SageMaker model ends in a notified failure before any endpoint resource is made."""
    assert DEFINITION["StartAt"] == "DescribeModelPackage"
    describe = STATES["DescribeModelPackage"]
    assert describe["Resource"] == "arn:${Partition}:states:::aws-sdk:sagemaker:describeModelPackage"
    assert describe["Parameters"] == {"ModelPackageName.$": "$.modelPackageArn"}
    # Each path is tested for presence before it is compared (a missing one would be an uncatchable error).
    assert STATES["HasApprovalStatus"]["Choices"] == [
        {
            "Variable": "$.modelPackage.ModelApprovalStatus",
            "IsPresent": True,
            "Next": "IsModelPackageApproved",
        }
    ]
    assert STATES["IsModelPackageApproved"]["Choices"] == [
        {
            "Variable": "$.modelPackage.ModelApprovalStatus",
            "StringEquals": "Approved",
            "Next": "HasModelOfPackage",
        }
    ]
    assert STATES["HasModelOfPackage"]["Default"] == "ModelPackageWithoutModel"
    assert STATES["UseModelOfPackage"]["Next"] == "StartWithNothingDetached"
    assert STATES["StartWithNothingDetached"]["Next"] == "StartWaitingForIdleEndpoint"
    refused = {"ModelPackageNotApproved", "ModelPackageWithoutModel"}
    assert {STATES["HasApprovalStatus"]["Default"], STATES["IsModelPackageApproved"]["Default"]} == {
        "ModelPackageNotApproved"
    }
    assert not {*CREATE_ENDPOINT_CONFIG, "CreateEndpoint", "UpdateEndpoint"} & set().union(
        *(reachable(name) for name in refused)
    )


def test_a_rolled_back_update_marks_the_version_rejected_and_keeps_the_alarms_reason() -> None:
    assert STATES["UpdateEndpoint"]["Parameters"]["DeploymentConfig.$"] == "$.deploymentConfig"
    inspect = STATES["InspectDeployment"]["Parameters"]
    assert inspect["deploymentConfig.$"] == "$.deploymentConfig"
    assert inspect["deploymentStartedAt.$"] == "$.polling.startedAt"
    assert STATES["WasUpdateRolledBack"]["Choices"] == [
        {
            "Variable": "$.error.Error",
            "StringEquals": "EndpointUpdateRolledBack",
            "Next": "ReadRollbackMessage",
        }
    ]
    assert STATES["ReadRollbackMessage"]["Next"] == "DeploymentRolledBack"
    mark = STATES["MarkModelPackageRolledBack"]
    assert mark["Resource"] == "arn:${Partition}:states:::aws-sdk:sagemaker:updateModelPackage"
    assert mark["Parameters"]["ModelApprovalStatus"] == "Rejected"
    # The inspector's message names the alarm; the Lambda error's stack trace is left out (1024 characters at most).
    assert STATES["ReadRollbackMessage"]["Parameters"] == {"error.$": "States.StringToJson($.error.Cause)"}
    assert "$.rollback.error.errorMessage" in mark["Parameters"]["ApprovalDescription.$"]
    assert mark["ResultPath"] is None and mark["Next"] == RESTORE


def test_a_serverless_endpoint_gets_its_own_configuration_and_sagemakers_default_update_without_auto_scaling() -> (
    None
):
    """The input's variant carries ServerlessConfig instead of instances, its deploymentConfig is empty and it has
    no autoscaling (workflow_common.execution_input)."""
    assert STATES["IsServerlessEndpoint"]["Choices"] == [
        {
            "Variable": "$.variant.ServerlessConfig",
            "IsPresent": True,
            "Next": "CreateServerlessEndpointConfig",
        }
    ]
    assert STATES["IsServerlessEndpoint"]["Default"] == "HasDataCaptureConfig"
    serverless = dict(STATES["CreateServerlessEndpointConfig"])
    plain = dict(STATES["CreateEndpointConfig"])
    assert (
        serverless["Resource"]
        == plain["Resource"]
        == "arn:${Partition}:states:::sagemaker:createEndpointConfig"
    )
    assert serverless["Parameters"].pop("ProductionVariants") == [
        {
            "VariantName.$": "$.variant.VariantName",
            "ModelName.$": "$.modelName",
            "ServerlessConfig.$": "$.variant.ServerlessConfig",
        }
    ]
    plain["Parameters"] = {
        key: value for key, value in plain["Parameters"].items() if key != "ProductionVariants"
    }
    for state in (serverless, plain):
        state.pop("Comment")
        state["Catch"] = [{**catcher, "Next": None} for catcher in state["Catch"]]
    assert serverless == plain, "the same task but for the variant"
    assert STATES["IsBlueGreenUpdate"]["Choices"] == [
        {"Variable": "$.deploymentConfig.BlueGreenUpdatePolicy", "IsPresent": True, "Next": "UpdateEndpoint"}
    ]
    assert STATES["IsBlueGreenUpdate"]["Default"] == "UpdateServerlessEndpoint"
    update = STATES["UpdateServerlessEndpoint"]
    assert update["Resource"] == STATES["UpdateEndpoint"]["Resource"]
    # Not RetainAllVariantProperties: it would keep the endpoint's old ServerlessConfig.
    assert update["Parameters"] == {
        "EndpointName.$": "$.endpointName",
        "EndpointConfigName.$": "$.endpointConfigName",
    }
    assert update["Next"] == STATES["UpdateEndpoint"]["Next"] == "StartWaitingForDeployment"
    assert STATES["HasAutoScaling"]["Default"] == "NotifyDeployed"
