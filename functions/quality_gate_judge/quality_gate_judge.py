"""Decide whether a tuned model may replace the deployed one: the quality gate of the tuning-with-deployment run.

The tuned model's objective (measured by the trainer on the validation channel) must clear
qualityGate.minObjectiveValue and, when the gate must beat the deployed model and one serves, be better than
that model's score on the same validation rows, by more than nothing and by at least qualityGate.minImprovement.
That score is the evaluation.json the trainer image's `evaluate` command wrote in a Processing job. Both
comparisons follow the objective's direction (a floor for Maximize, a ceiling for Minimize). A rejection is a
result: it is returned, not raised.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import Field
from workflow_common.aws_clients import AwsClients
from workflow_common.execution_input import Objective, QualityGateSettings
from workflow_common.ml_parameters import ParameterFileError, parse_document
from workflow_common.models import CamelCaseModel
from workflow_common.service_errors import is_not_found, transient_errors_raised_as_unavailable

logger = Logger()
tracer = Tracer()
aws_client = AwsClients()
EVALUATION_FILE = "evaluation.json"


class InvalidGateRequest(ValueError):
    """The state machine passed an input this function cannot use."""


class DeployedModelEvaluationUnusable(RuntimeError):
    """The Processing job's evaluation.json is missing or lacks the objective metric."""


class DeployedModelSeen(CamelCaseModel):
    """The deployed model finder's answer."""

    found: bool
    endpoint_config_name: str | None = None
    model_name: str | None = None
    model_data_url: str | None = None
    model_package_arn: str | None = None


class GateRequest(CamelCaseModel):
    quality_gate: QualityGateSettings
    candidate: Objective
    candidate_model_name: str = Field(min_length=1)
    deployed_model: DeployedModelSeen


class GateDecision(CamelCaseModel):
    accepted: bool
    status: Literal["ACCEPTED", "REJECTED"]
    reason: str
    metric_name: str
    candidate_model_name: str
    candidate_value: float
    # None when no deployed model was scored (none serves, or mustBeatDeployedModel is false).
    deployed_model_name: str | None
    deployed_model_package_arn: str | None  # also None for a model deployed before the registry
    deployed_value: float | None


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def deployed_value(s3: Any, output_s3_uri: str, metric_name: str) -> float:
    """The deployed model's objective on this run's validation rows, from the Processing job's evaluation.json."""
    bucket, prefix = split_s3_uri(output_s3_uri)
    key = f"{prefix.rstrip('/')}/{EVALUATION_FILE}"
    location = f"s3://{bucket}/{key}"
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        if is_not_found(error) or error.response.get("Error", {}).get("Code") == "NoSuchKey":
            raise DeployedModelEvaluationUnusable(
                f"{location} does not exist: the evaluation Processing job wrote no {EVALUATION_FILE}."
            ) from None
        raise
    except ValueError as error:
        raise DeployedModelEvaluationUnusable(f"{location} is not JSON: {error}") from None
    metrics = document.get("metrics") if isinstance(document, dict) else None
    value = metrics.get(metric_name) if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        given = sorted(metrics) if isinstance(metrics, dict) else "none"
        raise DeployedModelEvaluationUnusable(f"{location} gives no finite {metric_name} (metrics: {given}).")
    return float(value)


def _figure(value: float) -> str:
    return f"{value:.6g}"


@tracer.capture_method
def judge(request: GateRequest, s3: Any) -> GateDecision:
    gate, candidate = request.quality_gate, request.candidate
    metric = gate.objective_metric_name
    if candidate.metric_name != metric:
        raise InvalidGateRequest(
            f"candidate.MetricName: {candidate.metric_name} is not the gate's objective {metric}"
        )
    maximize = gate.objective_type == "Maximize"
    deployed = request.deployed_model
    scored = gate.evaluation is not None and deployed.found
    if scored and not deployed.model_name:
        raise InvalidGateRequest("deployedModel.modelName: required when found is true")
    previous = (
        deployed_value(s3, gate.evaluation.output_s3_uri, metric) if scored and gate.evaluation else None
    )
    value = candidate.value

    def decision(accepted: bool, reason: str) -> GateDecision:
        return GateDecision(
            accepted=accepted,
            status="ACCEPTED" if accepted else "REJECTED",
            reason=reason,
            metric_name=metric,
            candidate_model_name=request.candidate_model_name,
            candidate_value=value,
            deployed_model_name=deployed.model_name if previous is not None else None,
            deployed_model_package_arn=deployed.model_package_arn if previous is not None else None,
            deployed_value=previous,
        )

    bound = gate.min_objective_value
    if bound is not None and (value < bound if maximize else value > bound):
        side = "below the floor" if maximize else "above the ceiling"
        return decision(
            False, f"{metric} {_figure(value)} is {side} qualityGate.minObjectiveValue {_figure(bound)}"
        )
    if previous is None:
        why = "no model is deployed yet" if gate.evaluation else "qualityGate.mustBeatDeployedModel is false"
        return decision(True, f"{metric} {_figure(value)} passes the gate: {why}")
    improvement = value - previous if maximize else previous - value
    on_rows = f"the deployed model {deployed.model_name}'s {_figure(previous)} on the same validation rows"
    if improvement <= 0 or improvement < gate.min_improvement:
        needed = (
            f" by at least qualityGate.minImprovement {_figure(gate.min_improvement)}"
            if gate.min_improvement
            else ""
        )
        return decision(False, f"{metric} {_figure(value)} does not beat {on_rows}{needed}")
    return decision(True, f"{metric} {_figure(value)} beats {on_rows} by {_figure(improvement)}")


def parse_request(event: Any) -> GateRequest:
    try:
        return parse_document(GateRequest, event, "quality gate input")
    except ParameterFileError as error:
        raise InvalidGateRequest(str(error)) from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    with transient_errors_raised_as_unavailable():
        decided = judge(request, aws_client("s3"))
    logger.info("Quality gate decided", extra={"gateDecision": decided.model_dump()})
    return decided.model_dump()
