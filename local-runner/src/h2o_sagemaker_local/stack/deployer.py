"""CreateStack and UpdateStack: a template's parameters, conditions and resources, in dependency order."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import boto3

from h2o_sagemaker_local.stack import intrinsics, resources
from h2o_sagemaker_local.stack.functions import FunctionRegistry
from h2o_sagemaker_local.stack.model import ACCOUNT_ID, REGION, DeploymentFailed, Stack
from h2o_sagemaker_local.stack.templates import Templates, as_list


class Deployer:
    """Creates the resources of a template (and its nested applications) in moto."""

    def __init__(self, registry: FunctionRegistry):
        self.registry = registry
        self.clients = {
            name: boto3.client(name, region_name=REGION)
            for name in (
                "lambda",
                "iam",
                "sns",
                "s3",
                "stepfunctions",
                "scheduler",
                "events",
                "sagemaker",
                "cloudwatch",
            )
        }
        self._templates = Templates()

    def deploy(
        self, name: str, template_path: Path, parameters: dict[str, str], layer_dirs: list[Path] | None = None
    ) -> Stack:
        template = self._templates.read(template_path)
        stack = Stack(name, template_path, {}, self.registry, list(layer_dirs or []))
        _check_known(name, template, parameters)
        for key, spec in template.get("Parameters", {}).items():
            if key in parameters:
                stack.parameters[key] = str(parameters[key])
            elif "Default" in spec:
                stack.parameters[key] = str(spec["Default"])
            else:
                raise DeploymentFailed(f"{name}: parameter {key} has no value")
        check_parameter_constraints(name, template, stack.parameters)
        for resource in self._resources(stack, template):
            stack.resources[resource.logical_id] = self._handler(resource).create(resource)
            stack.applied[resource.logical_id] = (resource.kind, resource.properties, resource.globals_)
        self._outputs(stack, template)
        return stack

    def update(self, stack: Stack, parameters: dict[str, str]) -> Stack:
        """UpdateStack with the stack's template: the given parameter values replace the previous ones, the
        others keep theirs (UsePreviousValue), and what depends on them is re-evaluated.

        As in CloudFormation, only a resource whose properties changed is updated: a custom resource gets an
        ``Update`` request with ``OldResourceProperties`` (a new physical id has the old one deleted once the
        update is done), a nested application is updated with its new parameters, a function gets its new
        settings, a state machine its new definition; other types keep nothing locally that their properties
        change. A resource the template no longer creates is deleted: a custom resource gets ``Delete``, a
        topic is deleted; of other types only the stack's record of it goes."""
        template = self._templates.read(stack.template_path)
        _check_known(stack.name, template, parameters)
        given = {key: str(value) for key, value in parameters.items()}
        check_parameter_constraints(stack.name, template, stack.parameters | given)
        stack.parameters |= given
        replaced = []  # (the resource as it was, its old physical id)
        kept = set()
        for resource in self._resources(stack, template):
            logical_id = resource.logical_id
            kept.add(logical_id)
            previous = stack.applied.get(logical_id)
            if previous == (resource.kind, resource.properties, resource.globals_):
                continue
            if previous is None:
                stack.resources[logical_id] = self._handler(resource).create(resource)
            else:
                old_physical_id = stack.resources[logical_id]["Ref"]
                record = self._handler(resource).update(resource, previous[1])
                if record["Ref"] != old_physical_id:
                    replaced.append((resources.Resource(stack, logical_id, *previous), old_physical_id))
                stack.resources[logical_id] = record
            stack.applied[logical_id] = (resource.kind, resource.properties, resource.globals_)
        # Cleanup, after every resource is updated: replaced and removed resources are deleted, but for those
        # their UpdateReplacePolicy or DeletionPolicy retains.
        declared = template["Resources"]
        for old, physical_id in replaced:
            if declared[old.logical_id].get("UpdateReplacePolicy") != "Retain":
                self._handler(old).delete(old, physical_id)
        for logical_id in [key for key in stack.applied if key not in kept]:
            self._delete_resource(stack, logical_id)
        stack.outputs = {}
        self._outputs(stack, template)
        return stack

    def delete(self, stack: Stack) -> None:
        """DeleteStack: every resource in reverse order of creation, so what depends on a resource goes before
        it (a custom resource gets its ``Delete`` request while its function still exists); a nested
        application is deleted the same way. A failing deletion raises DeploymentFailed (DELETE_FAILED) and
        leaves the rest of the stack in place, as CloudFormation does."""
        for logical_id in reversed(list(stack.applied)):
            self._delete_resource(stack, logical_id)
        stack.outputs = {}

    def _delete_resource(self, stack: Stack, logical_id: str) -> None:
        resource = resources.Resource(stack, logical_id, *stack.applied[logical_id])
        declared = self._templates.read(stack.template_path)["Resources"].get(logical_id, {})
        if declared.get("DeletionPolicy") != "Retain":
            self._handler(resource).delete(resource, stack.resources[logical_id]["Ref"])
        del stack.applied[logical_id], stack.resources[logical_id]

    def _handler(self, resource: resources.Resource) -> resources.ResourceHandler:
        handler = resources.handler_for(resource.kind)
        if handler is None:
            raise DeploymentFailed(
                f"{resource.stack.name}: resource type {resource.kind} ({resource.logical_id}) is not emulated locally"
            )
        return handler(self)

    def _resources(self, stack: Stack, template: dict[str, Any]) -> Iterator[resources.Resource]:
        """Each resource the template creates, in dependency order, evaluated when its turn comes (after what it
        references was created or updated)."""
        conditions: dict[str, bool] = {}
        for key, expression in template.get("Conditions", {}).items():
            with _located(stack.name, f"condition {key}"):
                conditions[key] = bool(intrinsics.evaluate(expression, _scope(stack, conditions)))
        stack.conditions = conditions
        declared = template["Resources"]
        try:
            order = list(
                TopologicalSorter(
                    {
                        logical_id: {
                            dependency
                            for dependency in intrinsics.references(resource)
                            | set(as_list(resource.get("DependsOn")))
                            if dependency in declared
                        }
                        for logical_id, resource in declared.items()
                    }
                ).static_order()
            )
        except CycleError as error:
            raise DeploymentFailed(
                f"{stack.name}: circular dependency between resources {error.args[1]}"
            ) from None
        for logical_id in order:
            resource = declared[logical_id]
            with _located(stack.name, f"resource {logical_id}"):
                if "Condition" in resource and not intrinsics.condition(resource["Condition"], conditions):
                    continue
                scope = _scope(stack, conditions)
                properties = intrinsics.evaluate(resource.get("Properties", {}), scope)
                globals_ = (
                    intrinsics.evaluate(template.get("Globals", {}).get("Function", {}), scope)
                    if resource["Type"] == "AWS::Serverless::Function"
                    else {}  # Globals.Function applies to functions only
                )
            yield resources.Resource(stack, logical_id, resource["Type"], properties, globals_)

    def _outputs(self, stack: Stack, template: dict[str, Any]) -> None:
        for key, output in template.get("Outputs", {}).items():
            with _located(stack.name, f"output {key}"):
                if "Condition" in output and not intrinsics.condition(output["Condition"], stack.conditions):
                    continue
                stack.outputs[key] = intrinsics.evaluate(output["Value"], _scope(stack, stack.conditions))


def _scope(stack: Stack, conditions: dict[str, bool]) -> intrinsics.Scope:
    """What the stack's template is evaluated against now: its resources as created so far."""
    return intrinsics.Scope(
        parameters=stack.parameters,
        pseudo_parameters=intrinsics.pseudo_parameters(
            region=REGION, account_id=ACCOUNT_ID, stack_name=stack.name, stack_id=stack.stack_id
        ),
        resources=stack.resources,
        conditions=conditions,
    )


@contextlib.contextmanager
def _located(stack_name: str, where: str) -> Iterator[None]:
    """Turn an evaluation error into a DeploymentFailed that names the stack and the resource or output."""
    try:
        yield
    except intrinsics.TemplateError as error:
        raise DeploymentFailed(f"{stack_name}: {where}: {error}") from None


def _check_known(stack_name: str, template: dict[str, Any], parameters: dict[str, Any]) -> None:
    unknown = sorted(set(parameters) - set(template.get("Parameters", {})))
    if unknown:
        raise DeploymentFailed(f"{stack_name}: the template has no parameter {', '.join(unknown)}")


def check_parameter_constraints(stack_name: str, template: dict[str, Any], values: dict[str, str]) -> None:
    """What CloudFormation checks of each parameter value before it creates anything: its type (Number), its
    AllowedValues, AllowedPattern (the whole value), MinLength/MaxLength and MinValue/MaxValue; the
    ConstraintDescription, when there is one, is the message (``Parameter X failed to satisfy constraint: ...``)."""
    for key, spec in template.get("Parameters", {}).items():
        value = values.get(key)
        if value is None:
            continue
        broken = _broken_constraint(key, spec, value)
        if broken is not None:
            described = spec.get("ConstraintDescription")
            message = f"Parameter {key} failed to satisfy constraint: {described}" if described else broken
            raise DeploymentFailed(f"{stack_name}: {message}")


def _broken_constraint(key: str, spec: dict[str, Any], value: str) -> str | None:
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"Parameter '{key}' must be a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"Parameter '{key}' must be a number not less than {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"Parameter '{key}' must be a number not greater than {spec['MaxValue']}"
    if "AllowedValues" in spec and value not in [str(allowed) for allowed in spec["AllowedValues"]]:
        return f"Parameter '{key}' must be one of AllowedValues"
    if "AllowedPattern" in spec and re.fullmatch(spec["AllowedPattern"], value) is None:
        return f"Parameter '{key}' must match pattern {spec['AllowedPattern']}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"Parameter '{key}' must contain at least {spec['MinLength']} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"Parameter '{key}' must not contain more than {spec['MaxLength']} characters"
    return None
