"""The constraints of a request that AWS checks and botocore does not, for the services whose requests carry the
run's settings (SageMaker and its runtime, Application Auto Scaling, Parameter Store, Step Functions): enum values,
lengths, value ranges and patterns, as the service's model (botocore's) states them. botocore itself checks only required members
and types, and moto accepts the rest, so an instance type misspelt in ml-parameters.json passed the local run and
failed on AWS.

A request breaking a constraint fails as AWS fails it, with the service's ``ValidationException`` and its
wording: ``1 validation error detected: Value 'ml.c5.larg' at 'productionVariants.1.member.instanceType' failed
to satisfy constraint: Member must satisfy enum value set: [...]``; a member the model marks sensitive is named
without its value (``Value at 'customAttributes' failed to satisfy constraint: ...``). Every boto3 call in this process is checked
(botocore's ``before-call`` event, after the IAM check, as AWS authorizes before it validates). A pattern Python
cannot compile (Java's ``\\p{...}`` classes) is not checked: the local run errs towards passing it, not towards
refusing what AWS accepts.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

from botocore.model import OperationModel, Shape

from h2o_sagemaker_local.botocore_hooks import register_everywhere, unregister_everywhere
from h2o_sagemaker_local.iam.enforcement import error_response

# Service -> the error code its model validation answers with.
CHECKED_SERVICES: Final = {
    "sagemaker": "ValidationException",
    "sagemaker-runtime": "ValidationError",  # the runtime's own error, per its API model
    "application-autoscaling": "ValidationException",
    "ssm": "ValidationException",
    "stepfunctions": "ValidationException",
}
_PARAMS_KEY: Final = "h2o_sagemaker_local.constrained_params"


def violations(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Each constraint of ``shape`` (and the shapes inside it) that ``value`` breaks, in AWS's words."""
    found = _own_violations(shape, value, path)
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                found += violations(member, value[name], _join(path, name[:1].lower() + name[1:]))
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value, start=1):
            found += violations(shape.member, item, f"{path}.{index}.member")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            found += violations(shape.key, key, f"{path}.key")
            found += violations(shape.value, item, f"{path}.{key}.value")
    return found


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _own_violations(shape: Shape, value: Any, path: str) -> list[str]:
    metadata = shape.metadata
    subject = f"Value at '{path}'" if metadata.get("sensitive") else f"Value '{_render(value)}' at '{path}'"
    constraints = []
    if shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            constraints.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        constraints += _bounds(len(value), metadata, "length")
        pattern = _compiled(metadata.get("pattern"))
        if pattern is not None and pattern.fullmatch(value) is None:
            constraints.append(f"Member must satisfy regular expression pattern: {metadata['pattern']}")
    elif shape.type_name in ("list", "map") and isinstance(value, list | dict):
        constraints += _bounds(len(value), metadata, "length")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, int | float):
        constraints += _bounds(value, metadata, "value")
    return [f"{subject} failed to satisfy constraint: {constraint}" for constraint in constraints]


def _bounds(number: float, metadata: dict[str, Any], measure: str) -> list[str]:
    minimum, maximum = metadata.get("min"), metadata.get("max")
    if minimum is not None and number < minimum:
        return [f"Member must have {measure} greater than or equal to {minimum}"]
    if maximum is not None and number > maximum:
        return [f"Member must have {measure} less than or equal to {maximum}"]
    return []


def _render(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_render(item)}" for key, item in value.items()) + "}"
    return str(value)


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def validation_message(problems: list[str]) -> str:
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}"


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS_KEY] = dict(params)


def _validate_before_call(model: OperationModel, context: dict[str, Any], **_: Any) -> Any:
    code = CHECKED_SERVICES.get(model.service_model.service_name)
    if code is None or model.input_shape is None:
        return None
    problems = violations(model.input_shape, context.get(_PARAMS_KEY, {}))
    return error_response(model, code, validation_message(problems)) if problems else None


_HANDLERS: Final = (("before-parameter-build", _remember_params), ("before-call", _validate_before_call))


def install() -> None:
    """Check every boto3 call from now on; after ``enforcement.install``, so that an unauthorized call is refused
    as such first."""
    register_everywhere(_HANDLERS, "h2o-local-constraints")


def uninstall() -> None:
    unregister_everywhere(_HANDLERS, "h2o-local-constraints")
