"""CloudFormation's intrinsic functions and conditions, evaluated against data only.

A template fragment is evaluated against a ``Scope``: the stack's parameter values, its pseudo parameters, what
its created resources answer to Ref and Fn::GetAtt, and its evaluated conditions. Nothing here calls AWS, so the
deployer decides what the scope holds and when (a resource is evaluated once what it references exists).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class TemplateError(Exception):
    """A reference or function the template cannot be evaluated with; the caller names where it occurred."""


@dataclass(frozen=True)
class Scope:
    parameters: Mapping[str, str]
    pseudo_parameters: Mapping[str, str]
    # logical id -> {"Ref": physical id, attribute: value, ..., "Outputs": {...} for a nested stack}
    resources: Mapping[str, Mapping[str, Any]]
    conditions: Mapping[str, bool]


def pseudo_parameters(*, region: str, account_id: str, stack_name: str, stack_id: str) -> dict[str, str]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
        "AWS::URLSuffix": "amazonaws.com",
    }


def evaluate(value: Any, scope: Scope) -> Any:
    """The fragment with every intrinsic function in it replaced by its value."""
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        [(key, argument)] = value.items()
        if key in _FUNCTIONS:
            return _FUNCTIONS[key](argument, scope)
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local deployer")
    return {key: evaluate(item, scope) for key, item in value.items()}


def condition(name: str, conditions: Mapping[str, bool]) -> bool:
    if name not in conditions:
        raise TemplateError(f"condition {name} is not defined in Conditions")
    return conditions[name]


def ref(name: str, scope: Scope) -> Any:
    if name in scope.parameters:
        return scope.parameters[name]
    if name in scope.pseudo_parameters:
        return scope.pseudo_parameters[name]
    if name not in scope.resources:
        raise TemplateError(f"Ref {name}: no parameter, pseudo parameter or created resource of that name")
    return scope.resources[name]["Ref"]


def get_att(logical_id: str, attribute: str, scope: Scope) -> Any:
    if logical_id not in scope.resources:
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: no created resource {logical_id}")
    resource = scope.resources[logical_id]
    values = resource.get("Outputs", {}) if attribute.startswith("Outputs.") else resource
    key = attribute.removeprefix("Outputs.")
    if key not in values:
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: {logical_id} has no attribute {attribute}")
    return values[key]


def references(value: Any) -> set[str]:
    """Names a template fragment refers to (logical ids among them), without evaluating it."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else item.split(".")[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if isinstance(item, list):
                    found.update(references(item[1]))
            else:
                found.update(references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(references(item))
    return found


def _get_att(argument: Any, scope: Scope) -> Any:
    logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
    return get_att(logical_id, attribute, scope)


def _sub(argument: Any, scope: Scope) -> str:
    text, variables = (argument, {}) if isinstance(argument, str) else argument
    variables = evaluate(variables, scope)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
            return "${" + name[1:] + "}"
        if name in variables:
            return str(variables[name])
        if "." in name:  # ${Resource.Attribute}
            logical_id, attribute = name.split(".", 1)
            return str(get_att(logical_id, attribute, scope))
        return str(ref(name, scope))

    return re.sub(r"\$\{([^}]*)\}", substitute, text)


def _if(argument: Any, scope: Scope) -> Any:
    name, if_true, if_false = argument
    return evaluate(if_true if condition(name, scope.conditions) else if_false, scope)


def _equals(argument: Any, scope: Scope) -> bool:
    left, right = evaluate(argument, scope)
    return bool(left == right)


def _select(argument: Any, scope: Scope) -> Any:
    index, items = evaluate(argument, scope)
    return items[int(index)]


def _split(argument: Any, scope: Scope) -> list[str]:
    separator, text = evaluate(argument, scope)
    return text.split(separator)


def _join(argument: Any, scope: Scope) -> str:
    separator, items = evaluate(argument, scope)
    return separator.join(str(item) for item in items)


# One entry per supported function: {name: argument} -> value.
_FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Ref": ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": lambda argument, scope: not evaluate(argument[0], scope),
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::Join": _join,
    "Condition": lambda name, scope: condition(name, scope.conditions),
}
