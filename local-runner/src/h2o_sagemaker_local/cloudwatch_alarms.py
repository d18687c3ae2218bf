"""CloudWatch alarms on the local SageMaker's metrics, evaluated as CloudWatch evaluates them.

moto stores alarms and metric data but never evaluates an alarm, so an alarm guarding an endpoint update would
stay in its first state. ``AlarmEvaluator.evaluate_all`` (run every ~0.5 s by the local SageMaker) evaluates each
metric alarm on ``AWS/SageMaker`` over its ``EvaluationPeriods`` periods of ``Period`` seconds: the alarm's
``Statistic`` per period, compared with ``Threshold`` by ``ComparisonOperator``, ``DatapointsToAlarm`` of them
(all, by default) breaching for ALARM, missing periods treated as ``TreatMissingData`` says
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html). A change of state is
set through moto's backend with CloudWatch's reason (``Threshold Crossed: 1 datapoint [0.25 (02/12/26
18:04:10)] was greater than the threshold (0.01).``) and its reason data, so DescribeAlarms shows it, and
DescribeAlarmHistory (which moto lacks; ``install`` adds it) lists the transition. An alarm starts in
INSUFFICIENT_DATA, as on CloudWatch (moto creates it OK).

Every change of a metric alarm's state, the evaluator's or SetAlarmState's, is sent to the account's default
EventBridge bus as CloudWatch sends it: a "CloudWatch Alarm State Change" event with the alarm's configuration,
its previous state and its new one (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).

Local differences: the periods end now and slide with every evaluation, where CloudWatch evaluates on minute
boundaries, some time after a period closes; locally an alarm fires sooner, never later. Alarm actions are not
executed, and a composite alarm sends no event. An alarm the evaluator cannot evaluate (another namespace,
metric math, a percentile statistic, an anomaly detection band, a composite alarm, or a metric or dimension set
the local SageMaker does not publish) keeps its state; ``unevaluated_rollback_alarms`` names such alarms so that an endpoint update refuses them as
rollback alarms instead of never rolling back.
"""

from __future__ import annotations

import itertools
import json
import operator
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    Metric,
    MetricAggregatedDatum,
    MetricDatum,
    MetricDatumBase,
    cloudwatch_backends,
)
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from h2o_sagemaker_local import default_bus, endpoint_metrics, moto_patches

# ComparisonOperator -> (comparison, how CloudWatch's state reason words it)
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
MOTO_CREATION_REASON = "Unchecked: Initial alarm creation"
STATE_CHANGE_DETAIL_TYPE = "CloudWatch Alarm State Change"


@dataclass(frozen=True)
class Datapoint:
    """One period of an alarm's evaluation range and its statistic (None: no data in the period)."""

    start: datetime
    value: float | None
    sample_count: float


@dataclass(frozen=True)
class Evaluation:
    """The state an evaluation gives an alarm, with CloudWatch's reason and reason data."""

    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str
    reason_data: str


def evaluation_problem(alarm: Alarm) -> str | None:
    """Why the local evaluator leaves this alarm alone, or None when it evaluates it."""
    if alarm.rule is not None:
        return "it is a composite alarm"
    if alarm.metric_data_queries:
        return "it alarms on metric math (Metrics), not on one metric"
    if alarm.namespace != endpoint_metrics.NAMESPACE:
        return f"its namespace is {alarm.namespace}, not {endpoint_metrics.NAMESPACE}"
    if alarm.metric_name not in endpoint_metrics.METRICS:
        return f"the local SageMaker does not publish {alarm.metric_name}"
    dimensions = {str(dimension.name) for dimension in alarm.dimensions}
    if dimensions != endpoint_metrics.DIMENSION_NAMES:
        return (
            f"its dimensions are {sorted(dimensions)}; the local SageMaker publishes its metrics with "
            f"{sorted(endpoint_metrics.DIMENSION_NAMES)}"
        )
    if alarm.statistic not in STATISTICS:
        return (
            f"its statistic is {alarm.extended_statistic or alarm.statistic}, not one of {list(STATISTICS)}"
        )
    if alarm.comparison_operator not in COMPARISONS:
        return f"its comparison operator {alarm.comparison_operator} is not one of {list(COMPARISONS)}"
    return None


def datapoints(alarm: Alarm, metric_data: Iterable[MetricDatumBase], now: datetime) -> list[Datapoint]:
    """The alarm's evaluation range ending at ``now``, oldest period first. A metric is one namespace, name and
    exact dimension set: data published with more dimensions is another metric."""
    period = timedelta(seconds=alarm.period)
    first = now - period * alarm.evaluation_periods
    wanted = sorted((dimension.name, dimension.value) for dimension in alarm.dimensions)
    samples: list[list[MetricDatumBase]] = [[] for _ in range(alarm.evaluation_periods)]
    for datum in metric_data:
        if (
            datum.namespace == alarm.namespace
            and datum.name == alarm.metric_name
            and first <= datum.timestamp < now
            and (alarm.unit is None or datum.unit == alarm.unit)
            and sorted((dimension.name, dimension.value) for dimension in datum.dimensions) == wanted
        ):
            samples[int((datum.timestamp - first) / period)].append(datum)
    return [_statistic(alarm.statistic, first + period * index, data) for index, data in enumerate(samples)]


def _statistic(statistic: str, start: datetime, data: list[MetricDatumBase]) -> Datapoint:
    """Single values and StatisticValues sets combined as CloudWatch combines them."""
    counts, sums, minimums, maximums = [], [], [], []
    for datum in data:
        if isinstance(datum, MetricAggregatedDatum):
            counts.append(datum.sample_count)
            sums.append(datum.sum)
            minimums.append(datum.min)
            maximums.append(datum.max)
        elif isinstance(datum, MetricDatum):
            counts.append(1.0)
            sums.append(datum.value)
            minimums.append(datum.value)
            maximums.append(datum.value)
    sample_count, total = sum(counts), sum(sums)
    if not sample_count:
        return Datapoint(start, None, 0.0)
    value = {
        "Average": total / sample_count,
        "Sum": total,
        "Minimum": min(minimums),
        "Maximum": max(maximums),
        "SampleCount": sample_count,
    }[statistic]
    return Datapoint(start, float(value), sample_count)


def evaluate(alarm: Alarm, metric_data: Iterable[MetricDatumBase], now: datetime) -> Evaluation | None:
    """The alarm's state over the evaluation range ending at ``now`` (None: keep the current state, as
    ``TreatMissingData: ignore`` does when the range has no data)."""
    points = datapoints(alarm, metric_data, now)
    present = [point for point in points if point.value is not None]
    missing = len(points) - len(present)
    treat_missing = alarm.treat_missing_data or "missing"
    needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
    reason_data = _reason_data(alarm, points, present, now)
    if not present:
        if treat_missing == "ignore":
            return None
        if treat_missing == "missing":
            reason = f"Insufficient Data: {_count(missing, 'datapoint')} {_was(missing)} unknown."
            return Evaluation("INSUFFICIENT_DATA", reason, reason_data)
        treated = "Breaching" if treat_missing == "breaching" else "NonBreaching"
        reason = (
            f"Threshold Crossed: no datapoints were received for {_count(missing, 'period')} and "
            f"{_count(missing, 'missing datapoint')} {_was(missing)} treated as [{treated}]."
        )
        return Evaluation(
            "ALARM" if treated == "Breaching" and missing >= needed else "OK", reason, reason_data
        )
    compare, wording = COMPARISONS[alarm.comparison_operator]
    values = [point.value for point in present if point.value is not None]
    breaching = sum(compare(value, alarm.threshold) for value in values)
    if treat_missing == "breaching":
        breaching += missing
    state = "ALARM" if breaching >= needed else "OK"
    listed = ", ".join(f"{point.value!r} ({point.start:%d/%m/%y %H:%M:%S})" for point in reversed(present))
    negation = "" if state == "ALARM" else "not "
    if len(points) == 1:
        reason = (
            f"Threshold Crossed: 1 datapoint [{listed}] was {negation}{wording} the threshold "
            f"({alarm.threshold!r})."
        )
    else:
        counted, transition = (
            (breaching, "OK -> ALARM") if state == "ALARM" else (len(points) - breaching, "ALARM -> OK")
        )
        reason = (
            f"Threshold Crossed: {counted} out of the last {len(points)} datapoints [{listed}] were "
            f"{negation}{wording} the threshold ({alarm.threshold!r}) (minimum {_count(needed, 'datapoint')} "
            f"for {transition} transition)."
        )
    return Evaluation(state, reason, reason_data)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _was(number: int) -> str:
    return "was" if number == 1 else "were"


def _reason_data(alarm: Alarm, points: list[Datapoint], present: list[Datapoint], now: datetime) -> str:
    """StateReasonData as CloudWatch writes it for a metric alarm."""
    return json.dumps(
        {
            "version": "1.0",
            "queryDate": f"{now:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "+0000",
            "startDate": f"{points[0].start:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "+0000",
            "statistic": alarm.statistic,
            "period": alarm.period,
            "recentDatapoints": [point.value for point in present],
            "threshold": alarm.threshold,
            "evaluatedDatapoints": [
                {
                    "timestamp": f"{point.start:%Y-%m-%dT%H:%M:%S.000+0000}",
                    "sampleCount": point.sample_count,
                    "value": point.value,
                }
                for point in reversed(present)
            ],
        }
    )


class AlarmEvaluator:
    """Evaluates the account's alarms on the local SageMaker's metrics; the local SageMaker calls
    ``evaluate_all`` every ~0.5 s from its CloudWatch thread."""

    def __init__(self, account_id: str, region: str):
        self.account_id, self.region = account_id, region

    @property
    def backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account_id][self.region]

    def evaluate_all(self, now: datetime) -> None:
        """``now``: naive UTC, as moto keeps its timestamps."""
        backend = self.backend
        metric_data = list(backend.metric_data)
        for alarm in list(backend.alarms.values()):
            if evaluation_problem(alarm) is not None:
                continue
            if not alarm.history and alarm.state_reason == MOTO_CREATION_REASON:
                # CloudWatch creates an alarm in INSUFFICIENT_DATA, moto in OK: its first evaluation starts
                # from CloudWatch's state, so that a first OK is a transition as on AWS.
                alarm.state_value = "INSUFFICIENT_DATA"
            evaluation = evaluate(alarm, metric_data, now)
            if evaluation is not None and evaluation.state != alarm.state_value:
                backend.set_alarm_state(
                    alarm.name, evaluation.reason, evaluation.reason_data, evaluation.state
                )

    def in_alarm(self, names: Sequence[str]) -> list[str]:
        """Those of the named alarms in ALARM state now."""
        alarms = self.backend.alarms
        return [name for name in names if name in alarms and alarms[name].state_value == "ALARM"]

    def unevaluated_rollback_alarms(self, names: Sequence[str]) -> str | None:
        """Why these alarms cannot guard an endpoint update (None: they can), in a ValidationException's words.

        What SageMaker does with an alarm that does not exist is not documented: refused. An alarm the evaluator
        leaves alone is refused too, as it would never roll an update back here."""
        alarms = self.backend.alarms
        absent = [name for name in names if name not in alarms]
        if absent:
            return (
                f"Could not find CloudWatch alarm(s) {absent} in AutoRollbackConfiguration in account "
                f"{self.account_id} and region {self.region}."
            )
        for name in names:
            problem = evaluation_problem(alarms[name])
            if problem:
                return (
                    f"local SageMaker cannot evaluate CloudWatch alarm {name} in AutoRollbackConfiguration: "
                    f"{problem}; a rollback alarm must watch one of {list(endpoint_metrics.METRICS)} in "
                    f"{endpoint_metrics.NAMESPACE} by {sorted(endpoint_metrics.DIMENSION_NAMES)}"
                )
        return None


def install() -> None:
    """Give moto's CloudWatch the DescribeAlarmHistory action (state updates only) and the state change events,
    until ``moto_patches.uninstall``."""
    if not hasattr(CloudWatchResponse, "describe_alarm_history"):
        moto_patches.replace(CloudWatchResponse, "describe_alarm_history", _describe_alarm_history)
        moto_patches.replace(Alarm, "update_state", _update_state_and_send_the_event)


# --- State change events ---------------------------------------------------------------------------------------


def _update_state_and_send_the_event(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
    previous = _event_state(self)
    moto_patches.original(Alarm, "update_state")(self, reason, reason_data, state_value)
    if self.rule is None and state_value != previous["value"]:
        event = state_change_event(self, previous)
        default_bus.send(event["account"], event["region"], event)


def state_change_event(alarm: Alarm, previous: dict[str, Any]) -> dict[str, Any]:
    """The event CloudWatch sends for a metric alarm that went from ``previous`` to its current state."""
    _, _, _, region, account_id, _ = alarm.alarm_arn.split(":", 5)
    configuration: dict[str, Any] = {"metrics": _event_metrics(alarm)}
    if alarm.description:
        configuration = {"description": alarm.description} | configuration
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATE_CHANGE_DETAIL_TYPE,
        "source": "aws.cloudwatch",
        "account": account_id,
        "time": f"{alarm.state_updated_timestamp:%Y-%m-%dT%H:%M:%SZ}",
        "region": region,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "configuration": configuration,
            "previousState": previous,
            "state": _event_state(alarm),
        },
    }


def _event_state(alarm: Alarm) -> dict[str, Any]:
    state = {
        "reason": alarm.state_reason,
        "timestamp": f"{alarm.state_updated_timestamp:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "+0000",
        "value": alarm.state_value,
    }
    if alarm.state_reason_data not in (None, "{}"):  # a new alarm's state has no reason data
        state["reasonData"] = alarm.state_reason_data
    return state


def _event_metrics(alarm: Alarm) -> list[dict[str, Any]]:
    """The alarm's metric, or its metric math queries, as the event's configuration lists them."""
    if not alarm.metric_data_queries:
        stat = _metric_stat(
            Metric(alarm.metric_name, alarm.namespace, alarm.dimensions),
            alarm.period,
            alarm.extended_statistic or alarm.statistic,
        )
        return [{"id": str(uuid.uuid4()), "metricStat": stat, "returnData": True}]
    metrics = []
    for query in alarm.metric_data_queries:
        entry: dict[str, Any] = {"id": query.id, "returnData": query.return_data in (None, True, "true")}
        if query.expression:
            entry["expression"] = query.expression
        if query.label:
            entry["label"] = query.label
        if query.metric_stat:
            queried = query.metric_stat
            entry["metricStat"] = _metric_stat(queried.metric, int(queried.period), queried.stat)
        metrics.append(entry)
    return metrics


def _metric_stat(metric: Metric, period: int, stat: str) -> dict[str, Any]:
    return {
        "metric": {
            "dimensions": {str(dimension.name): dimension.value for dimension in metric.dimensions},
            "name": metric.metric_name,
            "namespace": metric.namespace,
        },
        "period": period,
        "stat": stat,
    }


# --- DescribeAlarmHistory --------------------------------------------------------------------------------------


def _state_updates(alarm: Alarm) -> list[dict[str, Any]]:
    """The alarm's state transitions as AlarmHistoryItems, oldest first. moto keeps, at each update, the state
    it left (``Alarm.history``); the state it entered is the next entry's, or the current one."""
    states = [
        {"stateValue": value, "stateReason": reason, "stateReasonData": reason_data, "at": at}
        for _, reason, reason_data, value, at in alarm.history
    ]
    states.append(
        {
            "stateValue": alarm.state_value,
            "stateReason": alarm.state_reason,
            "stateReasonData": alarm.state_reason_data,
            "at": alarm.state_updated_timestamp,
        }
    )
    items = []
    for old, new in itertools.pairwise(states):
        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "MetricAlarm",
                "Timestamp": new["at"],
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old['stateValue']} to {new['stateValue']}",
                "HistoryData": json.dumps(
                    {
                        "version": "1.0",
                        "oldState": _history_state(old),
                        "newState": _history_state(new),
                    }
                ),
            }
        )
    return items


def _history_state(state: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"stateValue": state["stateValue"], "stateReason": state["stateReason"]}
    if state["stateReasonData"] not in (None, "{}"):
        entry["stateReasonData"] = json.loads(state["stateReasonData"])
    return entry


def _describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    name = self._get_param("AlarmName")
    item_type = self._get_param("HistoryItemType")
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    alarms = self.cloudwatch_backend.alarms
    named = [alarms[name]] if name in alarms else []
    items = [
        item
        for alarm in (named if name else list(alarms.values()))
        for item in _state_updates(alarm)
        if item_type in (None, "StateUpdate")
        and (start is None or item["Timestamp"] >= start)
        and (end is None or item["Timestamp"] <= end)
    ]
    items.sort(key=lambda item: item["Timestamp"], reverse=self._get_param("ScanBy") != "TimestampAscending")
    return ActionResult({"AlarmHistoryItems": items[: self._get_int_param("MaxRecords") or 100]})
