"""The three state machines read only what the run contract (workflow_common.execution_input) declares, and the
contract declares nothing they do not read or return.

Each state machine is walked from its start: a state's input is the machine's input model plus whatever the
states before it, on every way to it, added through their ResultPath (their Result, Parameters or ResultSelector, the documented
result of the Lambda or child state machine they call, or a caught error). Every ``$.path`` a state reads from
its input (Parameters, InputPath, ItemsPath, Choice variables, Wait/Fail paths) and every path a ResultSelector
reads from its result must exist in that shape; a path a Choice only tests with IsPresent need only exist on one
way to it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from deployed_model_finder import DeployedModel
from endpoint_inspector import Inspection
from pydantic import BaseModel
from quality_gate_judge import GateDecision
from workflow_common.execution_input import (
    BestModel,
    DeploymentInput,
    DeploymentOutput,
    DeploymentSettings,
    ModelRegistration,
    RunInput,
    TuningInput,
    TuningOutput,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = {
    "parent": REPO_ROOT / "statemachine" / "model-tuning-with-endpoint-deployment.asl.json",
    "tuner": REPO_ROOT / "sagemaker-model-tuner" / "statemachine" / "model-tuning.asl.json",
    "deployer": REPO_ROOT / "sagemaker-model-deployer" / "statemachine" / "endpoint-deployment.asl.json",
}
INPUTS: dict[str, type[BaseModel]] = {"parent": RunInput, "tuner": TuningInput, "deployer": DeploymentInput}
OUTPUTS: dict[str, type[BaseModel]] = {"tuner": TuningOutput, "deployer": DeploymentOutput}
CHILD_MACHINES = {
    "${ModelTuningStateMachineArn}": "tuner",
    "${EndpointDeploymentStateMachineArn}": "deployer",
}
LAMBDA_RESULTS: dict[str, type[BaseModel]] = {
    "${BestModelSelectorFunctionArn}": BestModel,
    "${EndpointInspectorFunctionArn}": Inspection,
    "${DeployedModelFinderFunctionArn}": DeployedModel,
    "${QualityGateJudgeFunctionArn}": GateDecision,
    "${ModelRegistrarFunctionArn}": ModelRegistration,
}

# A shape is what a JSON value is known to hold: a dict of its keys' shapes, LEAF (a value nothing is read
# from, such as a string or a list of them) or ANY (a document passed on as it is, e.g. SageMaker's own request
# parts). A list of objects a Map iterates is {ITEMS: the shape of each}.
Shape = Any
LEAF: Shape = "leaf"
ANY: Shape = "any"
ITEMS = "[]"
# A caught Lambda error's Cause, parsed: the document the Lambda runtime reports (the lambda:invoke integration).
LAMBDA_ERROR_CAUSE: Shape = {"errorMessage": LEAF, "errorType": LEAF, "requestId": LEAF, "stackTrace": LEAF}
CAUGHT_ERROR: Shape = {"Error": LEAF, "Cause": LEAF}
PATH = re.compile(r"(?<![\w$])\$(?!\$)((?:\.[A-Za-z_]\w*)*)")


def annotation_shape(annotation: Any) -> Shape:
    if get_origin(annotation) in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        return merge(*(annotation_shape(arg) for arg in present))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return {ITEMS: annotation_shape(item)} if annotation_shape(item) != LEAF else LEAF
    if annotation is Any or get_origin(annotation) is dict:
        return ANY
    return LEAF


def model_shape(model: type[BaseModel]) -> Shape:
    return {
        field.alias or name: annotation_shape(field.annotation) for name, field in model.model_fields.items()
    }


def merge(*shapes: Shape) -> Shape:
    """What a value holds when it comes from any of ``shapes`` (a key is present on some path)."""
    if any(shape == ANY for shape in shapes):
        return ANY
    dicts = [shape for shape in shapes if isinstance(shape, dict)]
    if not dicts:
        return LEAF
    keys = {key for shape in dicts for key in shape}
    return {key: merge(*(shape[key] for shape in dicts if key in shape)) for key in keys}


def common(*shapes: Shape) -> Shape:
    """What a value surely holds when it comes from any of ``shapes`` (a key is present on every path)."""
    known = [shape for shape in shapes if shape != ANY]
    if not known:
        return ANY
    if not all(isinstance(shape, dict) for shape in known):
        return LEAF
    keys = set.intersection(*(set(shape) for shape in known))
    return {key: common(*(shape[key] for shape in known)) for key in keys}


def lookup(shape: Shape, path: str) -> Shape | None:
    """The shape at ``$.a.b`` in ``shape``, or None when the shape has no such path."""
    for key in path.split(".")[1:]:
        if shape == ANY:
            return ANY
        if not isinstance(shape, dict) or key not in shape:
            return None
        shape = shape[key]
    return shape


def assign(shape: Shape, path: str, value: Shape) -> Shape:
    """``shape`` with ``value`` written at the ResultPath ``path``."""
    keys = path.split(".")[1:]
    if not keys:
        return value
    base = dict(shape) if isinstance(shape, dict) else {}
    base[keys[0]] = assign(base.get(keys[0], {}), "$." + ".".join(keys[1:]) if keys[1:] else "$", value)
    return base


def paths_in(expression: str) -> list[str]:
    """The ``$``-paths an expression reads: a plain path or the arguments of an intrinsic function."""
    return ["$" + match.group(1) for match in PATH.finditer(expression)]


def expression_shape(expression: str, source: Shape) -> Shape:
    if expression.startswith("States.StringToJson(") and paths_in(expression) == ["$.error.Cause"]:
        return LAMBDA_ERROR_CAUSE
    if expression.startswith("States.JsonMerge("):  # nested ones included: every path's object, merged
        return merge(*(lookup(source, path) for path in paths_in(expression)))
    if expression.startswith("$$."):  # the context object's values read here are strings
        return LEAF
    if expression.startswith("States."):
        return LEAF
    found = lookup(source, expression)
    return ANY if found is None else found


def template_shape(template: Any, source: Shape) -> Shape:
    """The shape of a Parameters or ResultSelector template evaluated against ``source``."""
    if not isinstance(template, dict):
        return LEAF
    return {
        key.removesuffix(".$"): expression_shape(value, source)
        if key.endswith(".$")
        else template_shape(value, source)
        for key, value in template.items()
    }


def template_reads(template: Any) -> Iterator[str]:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                yield from paths_in(value)
            else:
                yield from template_reads(value)
    elif isinstance(template, list):
        for item in template:
            yield from template_reads(item)


def choice_reads(rule: dict[str, Any], presence_checks: bool) -> Iterator[str]:
    """The paths a Choice rule reads: those it tests with IsPresent, or the others."""
    for key, value in rule.items():
        if key == "Variable" or (key.endswith("Path") and isinstance(value, str)):
            if ("IsPresent" in rule) == presence_checks:
                yield from paths_in(value)
        elif key in ("And", "Or"):
            for nested in value:
                yield from choice_reads(nested, presence_checks)
        elif key == "Not":
            yield from choice_reads(value, presence_checks)


def presence_checks(state: dict[str, Any]) -> list[str]:
    """The paths a Choice tests with IsPresent: they need only be present on some way to it."""
    return [path for rule in state.get("Choices", []) for path in choice_reads(rule, presence_checks=True)]


def input_reads(state: dict[str, Any]) -> list[str]:
    """Every path the state needs in its input (IsPresent tests aside)."""
    reads = [*template_reads(state.get("Parameters", {})), *template_reads(state.get("ItemSelector", {}))]
    for key in (
        "InputPath",
        "OutputPath",
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "CausePath",
        "ErrorPath",
    ):
        if isinstance(state.get(key), str):
            reads += paths_in(state[key])
    for rule in state.get("Choices", []):
        reads += list(choice_reads(rule, presence_checks=False))
    return [path for path in reads if not path.startswith("$$")]


def task_result(state: dict[str, Any]) -> Shape:
    """What a Task returns, before its ResultSelector."""
    resource, parameters = state["Resource"], state.get("Parameters", {})
    if ":states:::states:startExecution" in resource:
        return {"Output": model_shape(OUTPUTS[CHILD_MACHINES[parameters["StateMachineArn"]]])}
    if resource in LAMBDA_RESULTS:
        return model_shape(LAMBDA_RESULTS[resource])
    if resource.endswith(":states:::lambda:invoke"):
        return {"Payload": model_shape(LAMBDA_RESULTS[parameters["FunctionName"]])}
    return ANY  # an AWS API's response


def fixed_shape(value: Any) -> Shape:
    """A Pass state's fixed Result value: an empty list has no item a Map could read a missing path from."""
    return {ITEMS: ANY} if value == [] else LEAF


def map_item(state: dict[str, Any], source: Shape) -> Shape:
    """The input of a Map's item processor: ItemSelector's result, or each item of the ItemsPath list."""
    if "ItemSelector" in state:
        return template_shape(state["ItemSelector"], source)
    items = lookup(source, state.get("ItemsPath", "$"))
    if items == ANY:
        return ANY
    return items[ITEMS] if isinstance(items, dict) and ITEMS in items else LEAF


def state_result(state: dict[str, Any], source: Shape) -> tuple[Shape, Shape]:
    """The state's result before and after its ResultSelector."""
    if state["Type"] == "Pass":
        if "Result" in state:
            result = state["Result"]
            return LEAF, {key: fixed_shape(value) for key, value in result.items()} if isinstance(
                result, dict
            ) else LEAF
        if "Parameters" in state:
            return LEAF, template_shape(state["Parameters"], source)
        return LEAF, source
    if state["Type"] == "Task":
        raw = task_result(state)
        selected = template_shape(state["ResultSelector"], raw) if "ResultSelector" in state else raw
        return raw, selected
    if state["Type"] == "Map":
        return LEAF, LEAF
    return LEAF, source  # Choice, Wait, Succeed, Fail pass their input on


def written(source: Shape, result_path: str | None, result: Shape) -> Shape:
    return source if result_path is None else assign(source, result_path, result)


def transitions(state: dict[str, Any], source: Shape) -> Iterator[tuple[str, Shape]]:
    """Each next state with the shape it receives."""
    _, result = state_result(state, source)
    output = (
        written(source, state.get("ResultPath", "$"), result)
        if state["Type"] in ("Task", "Pass", "Map")
        else source
    )
    for name in [
        state.get("Next"),
        state.get("Default"),
        *(rule["Next"] for rule in state.get("Choices", [])),
    ]:
        if name:
            yield name, output
    for catcher in state.get("Catch", []):
        yield catcher["Next"], written(source, catcher.get("ResultPath", "$"), CAUGHT_ERROR)


def state_inputs(
    definition: dict[str, Any], start: Shape, combine: Callable[..., Shape] = common
) -> dict[str, Shape]:
    """The shape each state receives, combined over every way of reaching it: by default what it surely
    holds, with ``combine=merge`` what it may hold."""
    inputs = {definition["StartAt"]: start}
    pending = [definition["StartAt"]]
    while pending:
        name = pending.pop()
        for target, shape in transitions(definition["States"][name], inputs[name]):
            combined = combine(inputs[target], shape) if target in inputs else shape
            if combined != inputs.get(target):
                inputs[target] = combined
                pending.append(target)
    return inputs


def missing_paths(definition: dict[str, Any], start: Shape) -> list[str]:
    """Every read, by state, of a path its input or result cannot hold."""
    missing = []
    possible = state_inputs(definition, start, combine=merge)
    for name, source in state_inputs(definition, start).items():
        state = definition["States"][name]
        missing += [f"{name}: {path}" for path in input_reads(state) if lookup(source, path) is None]
        missing += [
            f"{name}: {path}" for path in presence_checks(state) if lookup(possible[name], path) is None
        ]
        if "ResultSelector" in state:
            raw, _ = state_result(state, source)
            missing += [
                f"{name} ResultSelector: {path}"
                for path in template_reads(state["ResultSelector"])
                if lookup(raw, path) is None
            ]
        if "ItemProcessor" in state:
            missing += [
                f"{name}/{path}" for path in missing_paths(state["ItemProcessor"], map_item(state, source))
            ]
    return missing


def load(machine: str) -> dict[str, Any]:
    return json.loads(ASL_FILES[machine].read_text())


def leaf_paths(shape: Shape, prefix: str = "$") -> Iterator[str]:
    if isinstance(shape, dict) and shape and ITEMS not in shape:
        for key, value in shape.items():
            yield from leaf_paths(value, f"{prefix}.{key}")
    else:
        yield prefix


def unread(model: type[BaseModel], machine: str) -> list[str]:
    """Fields of ``model`` that no state of ``machine`` reads, itself or through a path containing it."""
    definition = load(machine)
    reads = {
        path
        for state in definition["States"].values()
        for path in [*input_reads(state), *presence_checks(state)]
    }
    return [
        leaf
        for leaf in leaf_paths(model_shape(model))
        if not any(
            leaf == read or leaf.startswith(read + ".") or read.startswith(leaf + ".") for read in reads
        )
    ]


@pytest.mark.parametrize("machine", ASL_FILES)
def test_every_path_a_state_machine_reads_is_in_the_contract(machine: str) -> None:
    assert missing_paths(load(machine), model_shape(INPUTS[machine])) == []


def test_a_path_the_contract_lacks_is_reported() -> None:
    definition = load("tuner")
    definition["States"]["CreateModel"]["Parameters"]["ModelName.$"] = "$.model.name"
    definition["States"]["Summarize"]["Parameters"]["objective.$"] = "$.bestModel.objectiveValue"

    assert missing_paths(definition, model_shape(TuningInput)) == [
        "CreateModel: $.model.name",
        "Summarize: $.bestModel.objectiveValue",
    ]


def test_a_path_a_map_item_lacks_is_reported_at_any_depth() -> None:
    definition = load("deployer")
    restore = definition["States"]["RestoreDetachedAutoScaling"]["ItemProcessor"]["States"]
    restore["RegisterDetachedScalableTarget"]["Parameters"]["MinCapacity.$"] = "$.Min"
    policies = restore["RestoreScalingPolicies"]["ItemProcessor"]["States"]
    policies["PutDetachedScalingPolicy"]["Parameters"]["PolicyName.$"] = "$.Name"

    assert missing_paths(definition, model_shape(DeploymentInput)) == [
        "RestoreDetachedAutoScaling/RegisterDetachedScalableTarget: $.Min",
        "RestoreDetachedAutoScaling/RestoreScalingPolicies/PutDetachedScalingPolicy: $.Name",
    ]


def test_a_field_only_an_earlier_state_writes_is_not_there_before_it() -> None:
    definition = load("deployer")
    definition["StartAt"] = "CreateEndpointConfig"

    assert "CreateEndpointConfig: $.endpointState.instanceCount" in missing_paths(
        definition, model_shape(DeploymentInput)
    )


def test_the_parent_hands_each_child_its_input_model() -> None:
    definition = load("parent")
    inputs = state_inputs(definition, model_shape(RunInput))
    for name, source in inputs.items():
        state = definition["States"][name]
        if ":states:::states:startExecution" in state.get("Resource", ""):
            child = CHILD_MACHINES[state["Parameters"]["StateMachineArn"]]
            # Each child execution names the parent's, which links them in the console.
            linked = model_shape(INPUTS[child]) | {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": LEAF}
            assert expression_shape(state["Parameters"]["Input.$"], source) == linked, name


@pytest.mark.parametrize("machine", OUTPUTS)
def test_each_child_returns_its_output_model(machine: str) -> None:
    definition = load(machine)
    inputs = state_inputs(definition, model_shape(INPUTS[machine]))
    ends = [name for name, state in definition["States"].items() if state.get("End")]
    for name in ends:
        state = definition["States"][name]
        _, result = state_result(state, inputs[name])
        assert set(written(inputs[name], state.get("ResultPath", "$"), result)) == set(
            model_shape(OUTPUTS[machine])
        ), name


def test_every_contract_field_is_read_or_returned() -> None:
    assert unread(TuningInput, "tuner") == []
    assert unread(DeploymentSettings, "deployer") == []
    # The rest of the deployer's input is the registered version, which the parent returns whole.
    assert set(model_shape(DeploymentInput)) - set(model_shape(DeploymentSettings)) == set(
        model_shape(ModelRegistration)
    )
    parent = load("parent")["States"]
    assert {"$.tuningResult.output", "$.registration", "$.deploymentResult.output"} <= set(
        input_reads(parent["SummarizeDeployment"])
    )
    assert {"$.tuningResult.output", "$.registration", "$.gateDecision"} <= set(
        input_reads(parent["SummarizeRejection"])
    )
    assert {"$.tuningResult.output", "$.registration"} <= set(input_reads(parent["SummarizePendingApproval"]))
    assert not set(unread(RunInput, "parent"))
