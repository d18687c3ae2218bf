"""What a Task's Resource calls: the integration kind, the service as Step Functions names it, and the API."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import botocore.session
from botocore.model import OperationModel, ServiceModel


class UnknownIntegration(ValueError):
    """The Resource names no API this emulation knows."""


@dataclass(frozen=True)
class Integration:
    """``kind`` is optimised (``states:::sagemaker:createModel``), aws-sdk (``states:::aws-sdk:sagemaker:...``) or
    lambda-function (a function ARN as the Resource)."""

    kind: str
    service: str  # as in the Resource: sagemaker, states, sns, lambda, applicationautoscaling, ...
    action: str  # camelCase as in the Resource, without .sync / .sync:2 / .waitForTaskToken

    @property
    def boto_service(self) -> str:
        return boto_service_name(self.service)

    def operation(self) -> OperationModel:
        model = service_model(self.boto_service)
        for name in model.operation_names:
            if name.lower() == self.action.lower():
                return model.operation_model(name)
        raise UnknownIntegration(f"{self.boto_service} has no API action {self.action}")


def integration_of(resource: str) -> Integration | None:
    """The integration a Task Resource ARN names; None for an activity ARN (no API is called)."""
    parts = resource.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return Integration("lambda-function", "lambda", "invoke")
    if len(parts) < 7 or parts[2] != "states" or parts[3] or parts[4]:
        return None
    if parts[5] == "aws-sdk":
        if len(parts) < 8:
            raise UnknownIntegration(f"{resource}: an aws-sdk Resource names a service and an action")
        return Integration("aws-sdk", parts[6], parts[7].split(".")[0])
    return Integration("optimised", parts[5], parts[6].split(".")[0])


@cache
def service_model(boto_service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(boto_service)


@cache
def boto_service_name(sfn_service: str) -> str:
    """Step Functions drops the dashes of boto3's names (applicationautoscaling = application-autoscaling)."""
    aliases = {"states": "stepfunctions", "sfn": "stepfunctions"}
    if sfn_service in aliases:
        return aliases[sfn_service]
    for name in botocore.session.get_session().get_available_services():
        if name.replace("-", "") == sfn_service:
            return name
    return sfn_service
