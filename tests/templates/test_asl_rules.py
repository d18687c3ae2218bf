"""The rules every state machine follows, checked on each ASL file: every state is reachable, every failing task
is caught and notified under its own name, the notification keeps the error and the Fail state surfaces it, and
only constructs that run the same on AWS and under moto's interpreter are used.

What one workflow does beyond these is checked in its own file (test_tuner_asl.py, test_deployer_asl.py,
test_parent_asl.py, test_batch_transform_asl.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from templates.asl import (
    ASL_FILES,
    NOTIFY,
    StateMachine,
    failing_tasks,
    failure_reporting_tasks,
    keys_anywhere,
    reachable,
    relative,
    state_machines,
    transitions,
    values_of,
    walk_states,
)

MACHINES = state_machines()
# The workflow name each failure notification carries, and the error its Fail state raises (a Fail state may
# not raise a States.* name such as a failed job's States.TaskFailed).
WORKFLOWS = {
    "statemachine/model-tuning-with-endpoint-deployment.asl.json": (
        "TuningWithDeployment",
        "TuningWithDeploymentFailed",
    ),
    "sagemaker-model-tuner/statemachine/model-tuning.asl.json": ("ModelTuning", "ModelTuningFailed"),
    "statemachine/batch-transform.asl.json": ("BatchTransform", "BatchTransformFailed"),
    "sagemaker-model-deployer/statemachine/endpoint-deployment.asl.json": (
        "EndpointDeployment",
        "EndpointDeploymentFailed",
    ),
}
# Every notification's message attributes, so a subscription's filter policy can pick stages, e.g. failures only.
NOTIFICATION_ATTRIBUTES = {"workflow", "stage", "status", "endpoint"}
SNS_PUBLISH = "arn:${Partition}:states:::sns:publish"
FAILING_TASKS = [(machine, name) for machine in MACHINES for name in failing_tasks(machine.states)]


def test_every_asl_file_belongs_to_a_template_and_has_its_rules_here() -> None:
    declared = {machine.asl_file.resolve() for machine in MACHINES}
    assert declared == {path.resolve() for path in ASL_FILES}
    assert len(ASL_FILES) == 4
    assert set(WORKFLOWS) == {relative(path) for path in ASL_FILES}


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_every_state_is_reachable_and_every_transition_exists(machine: StateMachine) -> None:
    states = machine.states
    for name, state in states.items():
        assert transitions(state) <= set(states), f"{name} points at a missing state"
    assert reachable(states, machine.definition["StartAt"]) == set(states)


@pytest.mark.parametrize(("machine", "name"), FAILING_TASKS, ids=[f"{m}:{n}" for m, n in FAILING_TASKS])
def test_every_failing_task_is_caught_and_notified_under_its_own_name(
    machine: StateMachine, name: str
) -> None:
    states = machine.states
    (catcher,) = states[name]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    assert catcher["ResultPath"] == "$.error"
    marker = states[catcher["Next"]]
    if marker["Type"] == "Choice":  # some errors are handled first (the deployer waits for a busy endpoint)
        marker = states[marker["Default"]]
    cleanup = marker["Next"]
    assert marker == {"Type": "Pass", "Result": name, "ResultPath": "$.failedState", "Next": cleanup}
    assert cleanup in failure_reporting_tasks(states)


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_cleanup_before_the_notification_runs_on_the_failure_path_only_and_keeps_the_error(
    machine: StateMachine,
) -> None:
    states = machine.states
    reporting = failure_reporting_tasks(states)
    for cleanup in reporting - {NOTIFY}:
        callers = {name: state for name, state in states.items() if cleanup in transitions(state)}
        assert callers, cleanup
        for caller, state in callers.items():
            marker = state["Type"] == "Pass" and state["ResultPath"] == "$.failedState"
            assert marker or caller in reporting, f"{caller} -> {cleanup}"
        (catcher,) = states[cleanup]["Catch"]
        assert catcher["Next"] == states[cleanup]["Next"], (
            "the next cleanup runs whether this one failed or not"
        )
        assert catcher["ResultPath"] not in {"$", "$.error", "$.failedState"}, "the original error is kept"


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_failures_are_published_then_surface_the_real_error(machine: StateMachine) -> None:
    workflow, error = WORKFLOWS[str(machine)]
    states = machine.states
    notify = states[NOTIFY]
    assert notify["Resource"] == "arn:${Partition}:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == "${NotificationTopicArn}"
    assert notify["Parameters"]["Subject"]
    message = notify["Parameters"]["Message"]
    assert message == {
        "workflow": workflow,
        "stage": "Failed",
        "execution.$": "$$.Execution.Id",
        "endpoint.$": message["endpoint.$"],
        "step.$": "$.failedState",
        "error.$": "$.error.Error",
        "cause.$": "$.error.Cause",
    }
    attributes = notify["Parameters"]["MessageAttributes"]
    assert attributes["stage"]["StringValue"] == "Failed" and attributes["status"]["StringValue"] == "FAILED"
    assert notify["ResultPath"] is None, "the error must survive the publish"
    assert notify["Next"] == notify["Catch"][0]["Next"] == "Failed"
    # The workflow's own error, with the original error and cause in the Cause.
    assert states["Failed"] == {
        "Type": "Fail",
        "Error": error,
        "CausePath": "States.Format('{}: {}', $.error.Error, $.error.Cause)",
    }


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_every_notification_carries_the_stage_attributes_a_filter_policy_matches(
    machine: StateMachine,
) -> None:
    """The JSON message names its workflow and stage; the attributes repeat them with the status and endpoint,
    as plain strings (SNS refuses an empty one), so a subscription can filter without parsing the message."""
    workflow, _ = WORKFLOWS[str(machine)]
    publishes = [(n, s) for n, s in walk_states(machine.states) if s.get("Resource") == SNS_PUBLISH]
    assert publishes
    for name, state in publishes:
        parameters = state["Parameters"]
        assert parameters["TopicArn"] == "${NotificationTopicArn}", name
        attributes = parameters["MessageAttributes"]
        assert set(attributes) == NOTIFICATION_ATTRIBUTES, name
        for attribute, value in attributes.items():
            assert value["DataType"] == "String", f"{name}: {attribute}"
            assert set(value) in ({"DataType", "StringValue"}, {"DataType", "StringValue.$"}), name
            assert value.get("StringValue", "x"), f"{name}: {attribute} is empty"
        message = parameters["Message"]
        assert attributes["workflow"] == {"DataType": "String", "StringValue": workflow}, name
        assert message["workflow"] == workflow, name
        assert attributes["stage"]["StringValue"] == message["stage"], name
        assert attributes["endpoint"]["StringValue.$"] == message["endpoint.$"], name


def test_each_stage_is_published_by_one_state_machine_only() -> None:
    """A child publishes its own stages (it can run alone), so the parent never publishes them again."""
    publishers: dict[str, list[str]] = {}
    for machine in MACHINES:
        for _, state in walk_states(machine.states):
            if state.get("Resource") == SNS_PUBLISH:
                stage = state["Parameters"]["MessageAttributes"]["stage"]["StringValue"]
                publishers.setdefault(stage, []).append(str(machine))
    assert publishers.pop("Failed") == [str(machine) for machine in MACHINES], "each reports its own failures"
    assert all(len(machines) == 1 for machines in publishers.values()), publishers
    assert {"RunStarted", "TuningCompleted", "Deployed"} <= set(publishers)


def test_the_parent_leaves_a_failed_child_run_to_its_own_notification() -> None:
    """A child run that failed (States.TaskFailed) published its Failed message; the parent publishes failures
    to start or follow it (StepFunctions.*), which no child saw."""
    [parent] = [
        m for m in MACHINES if str(m) == "statemachine/model-tuning-with-endpoint-deployment.asl.json"
    ]
    for task in ("TuneModel", "DeployModel"):
        choice = parent.states[parent.states[task]["Catch"][0]["Next"]]
        assert choice["Type"] == "Choice"
        assert choice["Choices"] == [
            {"Variable": "$.error.Error", "StringEquals": "States.TaskFailed", "Next": "Failed"}
        ]
        assert parent.states[choice["Default"]]["Next"] == NOTIFY


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_every_fail_state_raises_its_own_error_with_a_cause(machine: StateMachine) -> None:
    fail_states = [(name, state) for name, state in walk_states(machine.states) if state["Type"] == "Fail"]
    assert fail_states
    for name, state in fail_states:
        error = state.get("Error") or state.get("ErrorPath")
        assert error and not error.startswith("States."), name
        assert state.get("Cause") or state.get("CausePath"), name


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_every_state_machine_is_a_standard_workflow(machine: StateMachine) -> None:
    """Express workflows cannot run .sync integrations nor last as long as a tuning job."""
    assert machine.properties["Type"] == "STANDARD"


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_asl_follows_the_portability_rules(machine: StateMachine) -> None:
    text = machine.asl_file.read_text()
    definition: dict[str, Any] = machine.definition
    substitutions = machine.properties.get("DefinitionSubstitutions", {})
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(substitutions), (
        "placeholders and DefinitionSubstitutions differ"
    )
    assert "QueryLanguage" not in keys_anywhere(definition), "JSONPath only: moto's interpreter stubs JSONata"
    assert "{%" not in text, "JSONPath only"
    for key in ("Arguments", "Output"):  # JSONata's fields, ignored under JSONPath
        assert not values_of(key, definition), key
    for name, state in walk_states(definition["States"]):
        assert "Assign" not in state, f"{name}: Assign is not evaluated by moto's interpreter"
        assert "RoleArn.$" not in keys_anywhere(state), f"{name}: RoleArn.$ is never evaluated locally"
        for catcher in state.get("Catch", []):
            assert all(error.startswith("States.") for error in catcher["ErrorEquals"]), (
                f"{name}: catch States.*"
            )
        resource = state.get("Resource", "")
        if resource.startswith("arn:${Partition}:states:::states:startExecution"):
            assert "Name.$" in state["Parameters"] or "Name" in state["Parameters"], (
                f"{name}: child run needs a Name"
            )
        if state["Type"] == "Wait":
            assert "SecondsPath" in state, f"{name}: waits take their length from the input"


# SageMaker resources a run creates: each carries the stack's tag, which the teardown finds them by.
STACK_TAGGED_CREATES = re.compile(
    r":states:::(aws-sdk:)?sagemaker:(createModel|createEndpointConfig|createEndpoint|createHyperParameterTuningJob)\b"
)


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_every_sagemaker_resource_a_run_creates_is_tagged_with_the_stack(machine: StateMachine) -> None:
    creates = [
        (name, state)
        for name, state in walk_states(machine.states)
        if state["Type"] == "Task" and STACK_TAGGED_CREATES.search(state["Resource"])
    ]
    for name, state in creates:
        tags = {tag["Key"]: tag for tag in state["Parameters"].get("Tags", [])}
        assert tags.get("h2o-sagemaker:stack") == {
            "Key": "h2o-sagemaker:stack",
            "Value": "${OwnerStackName}",
        }, name
    if creates:
        assert "OwnerStackName" in machine.properties["DefinitionSubstitutions"]
