"""The invocation metrics SageMaker publishes for an endpoint, published to moto's CloudWatch.

An endpoint's proxy records each ``/invocations`` request (``Invocation``); a background flusher of the local
SageMaker takes them and publishes them here, off the request path. As SageMaker does
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html), in namespace ``AWS/SageMaker``
with dimensions ``EndpointName`` and ``VariantName``: ``Invocations``, ``Invocation4XXErrors`` and
``Invocation5XXErrors`` (1 or 0 per request, so their Average is the error rate), ``ModelLatency`` (the model
server's round trip) and ``OverheadLatency`` (the rest of the request), both in microseconds. Requests are
aggregated per second and variant into one ``StatisticValues`` datum per metric, which CloudWatch combines as it
combines single values.

Local difference: SageMaker also publishes these metrics with an ``EndpointConfigName`` dimension while a
deployment shifts traffic; moto's GetMetricStatistics matches a query's dimensions as a subset, so that second
set would count every request twice for a query by endpoint and variant. It is not published, and an alarm on
it is refused as a rollback alarm (``cloudwatch_alarms``) rather than never firing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

NAMESPACE = "AWS/SageMaker"
DIMENSION_NAMES = frozenset({"EndpointName", "VariantName"})
# Metric name -> unit
METRICS = {
    "Invocations": "None",
    "Invocation4XXErrors": "None",
    "Invocation5XXErrors": "None",
    "ModelLatency": "Microseconds",
    "OverheadLatency": "Microseconds",
}


@dataclass(frozen=True)
class Invocation:
    """One ``/invocations`` request through an endpoint's proxy."""

    at: datetime  # when the proxy received it (UTC)
    variant: str
    status: int  # what the proxy answered
    model_latency_us: int | None  # the model server's round trip; None when it did not answer
    overhead_us: int  # the proxy's own time: the whole request less the model server's round trip


def metric_data(endpoint_name: str, invocations: Iterable[Invocation]) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for these requests: one datum per metric, second and variant."""
    samples: dict[tuple[datetime, str, str], list[float]] = defaultdict(list)
    for invocation in invocations:
        # moto keeps timestamps naive in UTC (its own utcnow), and compares them with naive ones.
        second = invocation.at.astimezone(UTC).replace(microsecond=0, tzinfo=None)
        values = {
            "Invocations": 1,
            "Invocation4XXErrors": int(400 <= invocation.status < 500),
            "Invocation5XXErrors": int(invocation.status >= 500),
            "OverheadLatency": invocation.overhead_us,
        }
        if invocation.model_latency_us is not None:
            values["ModelLatency"] = invocation.model_latency_us
        for name, value in values.items():
            samples[second, invocation.variant, name].append(float(value))
    return [
        {
            "MetricName": name,
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant},
            ],
            "Timestamp": second,
            "Unit": METRICS[name],
            "StatisticValues": {
                "SampleCount": float(len(values)),
                "Sum": sum(values),
                "Minimum": min(values),
                "Maximum": max(values),
            },
        }
        for (second, variant, name), values in samples.items()
    ]


def publish(account_id: str, region: str, endpoint_name: str, invocations: Iterable[Invocation]) -> None:
    """Into moto's CloudWatch backend directly: SageMaker publishes as the service, not as a principal of the
    account, so no IAM check or API fault applies."""
    data = metric_data(endpoint_name, invocations)
    if data:
        cloudwatch_backends[account_id][region].put_metric_data(NAMESPACE, data)
