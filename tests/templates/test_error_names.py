"""Every error name a Retry or Catch lists is one AWS can send for that Task's integration (``aws_errors``): a
name AWS never sends (a bare ``ThrottlingException`` on a SageMaker task, ``SageMaker.ValidationException``
through aws-sdk) makes its retrier dead code on AWS however well it works locally."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from h2o_sagemaker_local import aws_errors
from h2o_sagemaker_local.integrations import Integration, integration_of
from templates.asl import REPO_ROOT, load_template, walk_states

LAYER = REPO_ROOT / "layers" / "workflow-common"
TEMPLATES = [
    REPO_ROOT / "template.yaml",
    *(REPO_ROOT / app / "template.yaml" for app in ("sagemaker-model-tuner", "sagemaker-model-deployer")),
]


def function_errors(template_path: Path, template: dict[str, Any], logical_id: str) -> set[str]:
    """Exception classes a function's handler module and the shared layer define: the error names it can raise
    to its caller."""
    properties = template["Resources"][logical_id]["Properties"]
    module = properties["Handler"].rsplit(".", 1)[0]
    sources = [template_path.parent / properties["CodeUri"] / f"{module}.py", *LAYER.glob("**/*.py")]
    return {
        node.name
        for source in sources
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ClassDef)
    }


def state_machines() -> list[tuple[str, dict[str, Any], dict[str, set[str]]]]:
    """(ASL file, definition, placeholder -> error names its function raises) for every state machine."""
    found = []
    for path in TEMPLATES:
        template = load_template(path)
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::Serverless::StateMachine":
                continue
            properties = resource["Properties"]
            functions = {
                placeholder: function_errors(path, template, value["Fn::GetAtt"][0])
                for placeholder, value in properties["DefinitionSubstitutions"].items()
                if isinstance(value, dict)
                and "Fn::GetAtt" in value
                and template["Resources"].get(value["Fn::GetAtt"][0], {}).get("Type")
                == "AWS::Serverless::Function"
            }
            asl_file = path.parent / properties["DefinitionUri"]
            found.append((str(asl_file.relative_to(REPO_ROOT)), json.loads(asl_file.read_text()), functions))
    return found


def tasks(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Task, nested ones included, and each Map that retries or catches, as a Task with Resource "map"."""
    found = []
    for name, state in walk_states(states):
        if state["Type"] == "Task":
            found.append((name, state))
        elif (state.get("ItemProcessor") or state.get("Iterator")) and (
            state.get("Retry") or state.get("Catch")
        ):
            found.append((name, {**state, "Resource": "map"}))
    return found


def unsendable_error_names(definition: dict[str, Any], functions: dict[str, set[str]]) -> list[str]:
    """'<state>: <name>' for each listed error name AWS never sends for that state."""
    problems = []
    for name, state in tasks(definition["States"]):
        resource = state["Resource"]
        if resource == "map":  # a Map fails with its iterations' errors, which their own tasks name
            allowed = set(aws_errors.RESERVED_TASK_ERRORS) | {"States.ExceedToleratedFailureThreshold"}
        elif resource.startswith("${") and resource.endswith("Arn}"):  # a function ARN as the Resource
            allowed = aws_errors.possible_error_names(Integration("lambda-function", "lambda", "invoke"))
            allowed |= functions[resource[2:-1]]
        else:
            integration = integration_of(resource.replace("${Partition}", "aws"))
            assert integration is not None, f"{name}: {resource} calls no API"
            allowed = set(aws_errors.possible_error_names(integration))
            if integration.service == "lambda":
                allowed |= functions[state["Parameters"]["FunctionName"][2:-1]]
        for handler in [*state.get("Retry", []), *state.get("Catch", [])]:
            problems += [f"{name}: {error}" for error in handler["ErrorEquals"] if error not in allowed]
    return problems


MACHINES = state_machines()


def test_every_state_machine_is_checked() -> None:
    assert len(MACHINES) == 4


@pytest.mark.parametrize(
    ("asl_file", "definition", "functions"), MACHINES, ids=[item[0] for item in MACHINES]
)
def test_retry_and_catch_list_only_names_aws_sends(
    asl_file: str, definition: dict[str, Any], functions: dict[str, set[str]]
) -> None:
    assert unsendable_error_names(definition, functions) == []


@pytest.mark.parametrize(
    ("asl_file", "definition", "functions"), MACHINES, ids=[item[0] for item in MACHINES]
)
def test_the_check_reports_a_renamed_error(
    asl_file: str, definition: dict[str, Any], functions: dict[str, set[str]]
) -> None:
    """Mutation: each listed name, renamed to one AWS never sends for its task, is reported."""
    for name, state in tasks(definition["States"]):
        for kind in ("Retry", "Catch"):
            for handler_index, handler in enumerate(state.get(kind, [])):
                for error_index, error in enumerate(handler["ErrorEquals"]):
                    if error == "States.ALL":
                        continue
                    mutated = copy.deepcopy(definition)
                    target = dict(tasks(mutated["States"]))[name]
                    renamed = "ThrottlingException" if "." in error else f"{error}.Renamed"
                    target[kind][handler_index]["ErrorEquals"][error_index] = renamed
                    assert f"{name}: {renamed}" in unsendable_error_names(mutated, functions), (
                        f"{asl_file} {name} {kind}: renaming {error} went unnoticed"
                    )


def test_sagemaker_errors_are_named_per_integration_kind() -> None:
    """The same SageMaker error, as the optimised and the aws-sdk integrations report it."""
    cases = {
        ("sagemaker:createEndpoint", "ResourceLimitExceeded"): "SageMaker.ResourceLimitExceededException",
        ("sagemaker:createEndpoint", "ThrottlingException"): "SageMaker.AmazonSageMakerException",
        ("aws-sdk:sagemaker:updateEndpoint", "ValidationException"): "SageMaker.SageMakerException",
        (
            "aws-sdk:sagemaker:updateEndpoint",
            "ResourceLimitExceeded",
        ): "SageMaker.ResourceLimitExceededException",
        ("aws-sdk:applicationautoscaling:putScalingPolicy", "ThrottlingException"): (
            "ApplicationAutoScaling.ApplicationAutoScalingException"
        ),
        ("sns:publish", "Throttled"): "SNS.ThrottledException",
        (
            "states:startExecution.sync:2",
            "ExecutionLimitExceeded",
        ): "StepFunctions.ExecutionLimitExceededException",
    }
    for (resource, code), name in cases.items():
        assert aws_errors.error_name_for(f"arn:aws:states:::{resource}", code) == name


def test_integration_arns_name_the_stacks_partition() -> None:
    """arn:aws: would fail in aws-cn and aws-us-gov; the partition comes from DefinitionSubstitutions."""
    for asl_file, definition, _ in MACHINES:
        for name, state in tasks(definition["States"]):
            resource = state["Resource"]
            if resource != "map" and not resource.startswith("${"):
                assert resource.startswith("arn:${Partition}:"), f"{asl_file} {name}: {resource}"
