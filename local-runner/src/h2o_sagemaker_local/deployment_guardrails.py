"""UpdateEndpoint's DeploymentConfig, checked as SageMaker checks it and turned into the steps of a blue/green
update (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html).

A blue/green update brings up the new (green) fleet beside the old (blue) one, then shifts traffic to it:
``ALL_AT_ONCE`` in one step; ``CANARY`` first the canary (``CanarySize``) for ``WaitIntervalInSeconds``, then
everything; ``LINEAR`` one more ``LinearStepSize`` every ``WaitIntervalInSeconds``. With all traffic on green it
bakes ``TerminationWaitInSeconds`` before the blue fleet goes. The AutoRollbackConfiguration's alarms are watched
from the first shift to the end of baking.

Checks follow the API reference's constraints (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
API_TrafficRoutingConfig.html): a canary of at most 50% of the variant's instances, a linear step of 10-50%, the
ranges of botocore's model. Where SageMaker's behaviour is not documented, the request is refused (the comment
says which), so a configuration that passes here does not fail for that reason on AWS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import botocore.session
from botocore.model import Shape

from h2o_sagemaker_local.api_constraints import validation_message, violations


class DeploymentConfigError(ValueError):
    """The DeploymentConfig is refused; the message is the ValidationException's."""


@dataclass(frozen=True)
class TrafficStep:
    green_share: float  # of the endpoint's requests, after this shift
    green_instances: int  # of the variant's, taking traffic after this shift
    wait_seconds: int  # baking before the next shift (WaitIntervalInSeconds; none after the last)


@dataclass(frozen=True)
class BlueGreenPlan:
    traffic_routing: str  # ALL_AT_ONCE, CANARY or LINEAR
    steps: tuple[TrafficStep, ...]  # the last one shifts everything
    termination_wait_seconds: int  # baking with all traffic on green, before the blue fleet goes
    maximum_execution_seconds: int | None  # from UpdateEndpoint to the end of baking; longer rolls back
    alarm_names: tuple[str, ...]  # any in ALARM from the first shift to the end of baking rolls back

    @property
    def waiting_seconds(self) -> int:
        return sum(step.wait_seconds for step in self.steps) + self.termination_wait_seconds


def plan_blue_green(deployment_config: dict[str, Any], instance_count: int) -> BlueGreenPlan:
    """The steps of an update of a variant of ``instance_count`` instances; DeploymentConfigError if SageMaker
    would refuse the configuration."""
    _check_constraints(deployment_config)
    if "RollingUpdatePolicy" in deployment_config:
        raise DeploymentConfigError(
            "local SageMaker emulates blue/green deployments only: use BlueGreenUpdatePolicy instead of "
            "RollingUpdatePolicy when running locally"
            if "BlueGreenUpdatePolicy" not in deployment_config
            else "Only one update policy can be specified: BlueGreenUpdatePolicy or RollingUpdatePolicy."
        )
    alarm_names = tuple(
        alarm["AlarmName"]
        for alarm in deployment_config.get("AutoRollbackConfiguration", {}).get("Alarms", [])
    )
    policy = deployment_config.get("BlueGreenUpdatePolicy")
    if policy is None:  # SageMaker's default: blue/green, all at once, no baking
        return BlueGreenPlan("ALL_AT_ONCE", (TrafficStep(1.0, instance_count, 0),), 0, None, alarm_names)
    routing = policy["TrafficRoutingConfiguration"]
    plan = BlueGreenPlan(
        routing["Type"],
        _steps(routing, instance_count),
        policy.get("TerminationWaitInSeconds", 0),
        policy.get("MaximumExecutionTimeoutInSeconds"),
        alarm_names,
    )
    # The reference says the timeout "should be larger than the total waiting time"; what SageMaker does with a
    # shorter one is not documented: refused.
    if plan.maximum_execution_seconds is not None and plan.maximum_execution_seconds <= plan.waiting_seconds:
        raise DeploymentConfigError(
            f"MaximumExecutionTimeoutInSeconds ({plan.maximum_execution_seconds}) must be larger than the total "
            f"waiting time of TerminationWaitInSeconds and WaitIntervalInSeconds ({plan.waiting_seconds} s)."
        )
    return plan


def _steps(routing: dict[str, Any], instance_count: int) -> tuple[TrafficStep, ...]:
    kind, wait = routing["Type"], routing["WaitIntervalInSeconds"]
    size_field = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind)
    # A size the type does not use is not documented as ignored: refused.
    for field in ("CanarySize", "LinearStepSize"):
        if field in routing and field != size_field:
            raise DeploymentConfigError(f"{field} is not valid with traffic routing type {kind}.")
    everything = TrafficStep(1.0, instance_count, 0)
    if size_field is None:
        return (everything,)
    if size_field not in routing:
        raise DeploymentConfigError(f"{size_field} is required with traffic routing type {kind}.")
    share = _share(size_field, routing[size_field], instance_count)
    steps = []
    shifted = share
    while shifted < 1:
        steps.append(TrafficStep(float(shifted), math.floor(shifted * instance_count), wait))
        if kind == "CANARY":
            break
        shifted += share
    return (*steps, everything)


def _share(field: str, size: dict[str, Any], instance_count: int) -> Fraction:
    """The share of the variant's capacity one step turns on, checked against the reference's bounds."""
    value = size["Value"]
    share = Fraction(value, instance_count) if size["Type"] == "INSTANCE_COUNT" else Fraction(value, 100)
    unit = "instance(s)" if size["Type"] == "INSTANCE_COUNT" else "percent of capacity"
    if field == "CanarySize":
        valid, allowed = share <= Fraction(1, 2), "at most 50%"
    else:
        valid, allowed = Fraction(1, 10) <= share <= Fraction(1, 2), "between 10% and 50%"
    if not valid:
        raise DeploymentConfigError(
            f"{field} must be {allowed} of the variant's total instance count: {value} {unit} is "
            f"{float(share):.0%} of {instance_count} instance(s)."
        )
    # How SageMaker rounds a percentage to whole instances is not documented: a step of less than one instance
    # is refused.
    if share * instance_count < 1:
        raise DeploymentConfigError(
            f"{field} of {value} {unit} is less than one of the variant's {instance_count} instance(s)."
        )
    return share


@cache
def _sagemaker_shape(name: str) -> Shape:
    return botocore.session.get_session().get_service_model("sagemaker").shape_for(name)


def _check_constraints(deployment_config: dict[str, Any]) -> None:
    """The constraints of botocore's model, as SageMaker words a value breaking them: a caller of the emulation's
    methods skips the request check every boto3 call gets (``api_constraints``)."""
    problems = violations(_sagemaker_shape("DeploymentConfig"), deployment_config, "deploymentConfig")
    if problems:
        raise DeploymentConfigError(validation_message(problems))
