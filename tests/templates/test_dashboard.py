"""The endpoint's dashboard, read from the template: its body is JSON once CloudFormation has substituted its
placeholders, its widgets fit CloudWatch's 24-column grid without overlapping, and every metric widget names its
region (the local pipeline's test checks that the endpoint publishes the metrics it charts)."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from templates.asl import REPO_ROOT, load_template

TEMPLATE = load_template(REPO_ROOT / "ml-parameter-provider" / "template.yaml")
DASHBOARD = TEMPLATE["Resources"]["EndpointDashboard"]["Properties"]
GRID_COLUMNS = 24  # CloudWatch's dashboard grid (Dashboard Body Structure: width 1-24)
PLACEHOLDER = re.compile(r"\$\{([\w:]+)\}")


def body() -> dict[str, Any]:
    """The body with each placeholder as CloudFormation fills it: a variable of the Fn::Sub, a parameter or a
    pseudo parameter (any other name is an error here, as it is for CloudFormation)."""
    text, variables = DASHBOARD["DashboardBody"]["Fn::Sub"]
    known = set(variables) | set(TEMPLATE["Parameters"]) | {"AWS::Region", "AWS::StackName", "AWS::Partition"}
    unknown = set(PLACEHOLDER.findall(text)) - known
    assert not unknown, f"placeholders CloudFormation cannot fill: {unknown}"
    return json.loads(PLACEHOLDER.sub(lambda match: f"filled-{match.group(1)}", text))


def test_the_body_is_json_with_widgets_on_the_grid_none_overlapping() -> None:
    widgets = body()["widgets"]
    cells = []
    for widget in widgets:
        assert widget["type"] in {"text", "alarm", "metric"}
        assert widget["width"] >= 1 and widget["x"] + widget["width"] <= GRID_COLUMNS, widget
        assert 1 <= widget["height"] <= 1000, widget
        cells.append(
            {
                (x, y)
                for x in range(widget["x"], widget["x"] + widget["width"])
                for y in range(widget["y"], widget["y"] + widget["height"])
            }
        )
    for first, second in itertools.combinations(range(len(cells)), 2):
        assert not cells[first] & cells[second], (widgets[first], widgets[second])


def test_each_metric_widget_names_its_region_and_charts_1_to_100_metrics() -> None:
    for widget in (item for item in body()["widgets"] if item["type"] == "metric"):
        properties = widget["properties"]
        assert properties["region"] == "filled-AWS::Region"
        assert 1 <= len(properties["metrics"]) <= 100
        for metric in properties["metrics"]:
            names = [part for part in metric if not isinstance(part, dict)]
            assert len(names) % 2 == 0, f"{metric}: namespace, name, then dimension name-value pairs"


def test_the_alarm_widget_shows_both_rollback_alarms() -> None:
    [widget] = [item for item in body()["widgets"] if item["type"] == "alarm"]
    variables = DASHBOARD["DashboardBody"]["Fn::Sub"][1]
    assert widget["properties"]["alarms"] == ["filled-ErrorRateAlarmArn", "filled-ModelLatencyAlarmArn"]
    assert variables["ErrorRateAlarmArn"] == {"Fn::GetAtt": ["EndpointErrorRateAlarm", "Arn"]}
    assert variables["ModelLatencyAlarmArn"] == {"Fn::GetAtt": ["EndpointModelLatencyAlarm", "Arn"]}
