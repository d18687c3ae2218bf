"""Blue/green endpoint updates in the local SageMaker, as SageMaker's deployment guardrails make them.

The endpoint tests serve two real models of the example with the real predictor: the blue one (5 trees) scores
the request loop's row differently from the green one (30 trees), so each answer tells which fleet gave it. A
rollback alarm watches the endpoint's own metrics, as the local SageMaker publishes and evaluates them. The
plans of the traffic routing types and the alarm evaluator's statistics are checked without processes.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_shapes import SAGEMAKER_API, assert_matches_api_shape
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from events import alarm_state_change
from h2o_sagemaker_local import cloudwatch_alarms, default_bus, events, moto_patches
from h2o_sagemaker_local.cloudwatch_alarms import AlarmEvaluator
from h2o_sagemaker_local.deployment_guardrails import (
    BlueGreenPlan,
    DeploymentConfigError,
    TrafficStep,
    plan_blue_green,
)
from h2o_sagemaker_local.hosting import LocalEndpoint, ModelServer
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from local_sagemaker import local_sagemaker_behind_moto
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from polling import wait_until
from process_watch import no_process_left
from request_loop import RequestLoop
from trained_models import train_models

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
BUCKET = "models-bucket"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagemaker-execution"
ENDPOINT = "titanic"
VARIANT = "AllTraffic"
ALARM = "titanic-5xx-errors"
TREES = {"blue": "5", "green": "30"}
# The request loop's body: the validation file's header and first row.
ROW = "\n".join(EXAMPLES.joinpath("validation.csv").read_text().splitlines()[:2]).encode()
DESCRIBE_ENDPOINT = SAGEMAKER_API.operation_model("DescribeEndpoint").output_shape


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


# --- two real models and a local SageMaker serving them ---------------------------------------------------------


@pytest.fixture(scope="module")
def model_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """model.tar.gz of the blue and the green model, trained at once (one per core) by the real `train`."""
    models = train_models(tmp_path_factory.mktemp, TREES)
    return {fleet: model.archive for fleet, model in models.items()}


@dataclass
class Local:
    """The local SageMaker, and what it reported, each event with the time.monotonic() it came at."""

    sagemaker: LocalSageMaker
    reported: list[tuple[float, events.Event]] = field(default_factory=list)

    def listen(self, event: events.Event) -> None:
        self.reported.append((time.monotonic(), event))

    def shifts(self) -> list[tuple[float, float]]:
        """(time, green share) of each traffic shift."""
        return [
            (at, event.green_share) for at, event in self.reported if isinstance(event, events.TrafficShifted)
        ]

    def rollbacks(self) -> list[tuple[float, events.EndpointRolledBack]]:
        return [(at, event) for at, event in self.reported if isinstance(event, events.EndpointRolledBack)]


@pytest.fixture
def local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_archives: dict[str, bytes]
) -> Iterator[Local]:
    """A LocalSageMaker installed behind moto, with both models and their endpoint configurations: the blue one
    of ``blue`` (4 instances), the green one of ``green`` (4), and ``blue-single`` and ``green-single`` (1)."""
    with local_sagemaker_behind_moto(monkeypatch, tmp_path / "work", ACCOUNT_ID, REGION) as emulator:
        client("s3").create_bucket(Bucket=BUCKET)
        recorded = Local(emulator)
        recorded.sagemaker.listener = recorded.listen
        sagemaker = client("sagemaker")
        for fleet, archive in model_archives.items():
            client("s3").put_object(Bucket=BUCKET, Key=f"{fleet}/model.tar.gz", Body=archive)
            sagemaker.create_model(
                ModelName=fleet,
                ExecutionRoleArn=ROLE_ARN,
                PrimaryContainer={
                    "Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/h2o-gbm-predictor:latest",
                    "ModelDataUrl": f"s3://{BUCKET}/{fleet}/model.tar.gz",
                },
            )
            for suffix, instances in (("", 4), ("-single", 1)):
                sagemaker.create_endpoint_config(
                    EndpointConfigName=f"{fleet}{suffix}",
                    ProductionVariants=[
                        {
                            "VariantName": VARIANT,
                            "ModelName": fleet,
                            "InstanceType": "ml.m5.large",
                            "InitialInstanceCount": instances,
                        }
                    ],
                )
        yield recorded
    assert not hasattr(CloudWatchResponse, "describe_alarm_history")


def endpoint_in_service(config_name: str) -> dict[str, Any]:
    """Create the endpoint with this configuration and wait until it serves."""
    client("sagemaker").create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config_name)
    return wait_until(lambda: idle(describe()), f"endpoint {ENDPOINT} in service", timeout=60)


def describe() -> dict[str, Any]:
    return client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)


def described_by_the_emulation(local: Local) -> dict[str, Any]:
    """DescribeEndpoint's answer before serialization, which drops what the API's shape does not have."""
    description = local.sagemaker.describe_endpoint({"EndpointName": ENDPOINT})
    assert_matches_api_shape(description, DESCRIBE_ENDPOINT)
    return description


def idle(description: dict[str, Any]) -> dict[str, Any] | None:
    assert description["EndpointStatus"] in ("Creating", "Updating", "RollingBack", "InService"), description
    return description if description["EndpointStatus"] == "InService" else None


def baking(description: dict[str, Any]) -> dict[str, Any] | None:
    variants = description.get("PendingDeploymentSummary", {}).get("ProductionVariants", [])
    statuses = [status["Status"] for variant in variants for status in variant["VariantStatus"]]
    return description if "Baking" in statuses else None


def error_rate_alarm() -> None:
    """Rolls an update back once more than 1% of the endpoint's requests in the last minute failed with a 5xx."""
    client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Average",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": VARIANT}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.01,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def canary(wait_seconds: int, termination_wait_seconds: int) -> dict[str, Any]:
    """A canary of one of the variant's 4 instances (25% of the requests), guarded by the error rate alarm."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": wait_seconds,
            },
            "TerminationWaitInSeconds": termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": 600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
    }


def update(config_name: str, deployment_config: dict[str, Any]) -> None:
    """UpdateEndpoint as the deployment state machine sends it (RetainAllVariantProperties)."""
    client("sagemaker").update_endpoint(
        EndpointName=ENDPOINT,
        EndpointConfigName=config_name,
        RetainAllVariantProperties=True,
        DeploymentConfig=deployment_config,
    )


def started_between(loop: RequestLoop, start: float, end: float) -> list[int]:
    """Indices of the loop's requests sent in [start, end)."""
    return [index for index, sent in enumerate(loop.started_at) if start <= sent < end]


def fleet_folder(local: Local, config_name: str) -> Path:
    return local.sagemaker.workdir / "endpoints" / ENDPOINT / config_name


def endpoint_url(local: Local) -> str:
    return local.sagemaker.endpoints[ENDPOINT].proxy.url


# --- updates of a real endpoint ------------------------------------------------------------------------------


@pytest.mark.h2o
def test_a_healthy_canary_takes_its_share_then_everything_with_no_failed_request(local: Local) -> None:
    endpoint_in_service("blue")
    error_rate_alarm()
    deployment_config = canary(wait_seconds=4, termination_wait_seconds=2)

    with RequestLoop(endpoint_url(local), ROW) as loop:
        wait_until(lambda: len(loop.outcomes) > 20, "blue's first answers", timeout=30)
        update("green", deployment_config)
        during_canary = wait_until(
            lambda: baking(described_by_the_emulation(local)), "the canary baking", timeout=60
        )
        final = wait_until(lambda: idle(describe()), "the update's end", timeout=60)
        time.sleep(0.5)  # answers from green alone

    assert loop.outcomes and set(loop.outcomes) == {200}, [item for item in loop.outcomes if item != 200][:3]
    [(canary_at, canary_share), (everything_at, everything_share)] = local.shifts()
    assert (canary_share, everything_share) == (0.25, 1.0)
    assert 3.5 < everything_at - canary_at < 6  # WaitIntervalInSeconds, the alarms looked at meanwhile
    blue_answer, green_answer = loop.bodies[0], loop.bodies[-1]
    assert blue_answer != green_answer, "the two models score the row alike: the test cannot tell the fleets"
    before = started_between(loop, 0, canary_at)
    assert {loop.bodies[index] for index in before[:-2]} == {blue_answer}
    # The router is deterministic: green answers its share of the canary's requests, to within the requests in
    # flight at each shift.
    in_canary = started_between(loop, canary_at, everything_at)
    green_in_canary = sum(loop.bodies[index] == green_answer for index in in_canary)
    assert len(in_canary) > 40
    assert abs(green_in_canary - 0.25 * len(in_canary)) <= 3, (green_in_canary, len(in_canary))
    after = started_between(loop, everything_at, math.inf)
    assert {loop.bodies[index] for index in after[2:]} == {green_answer}

    # During the canary: still the old configuration, the new one pending, baking on 1 instance of 4.
    assert during_canary["EndpointStatus"] == "Updating"
    assert during_canary["EndpointConfigName"] == "blue"
    assert during_canary["LastDeploymentConfig"] == deployment_config
    pending = during_canary["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "green"
    [variant] = pending["ProductionVariants"]
    assert (variant["VariantName"], variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (
        VARIANT,
        1,
        4,
    )
    [status] = variant["VariantStatus"]
    assert status["Status"] == "Baking"
    assert status["StatusMessage"] == (
        "Baking for 4 seconds (WaitIntervalInSeconds) with traffic enabled on canary capacity of 1 instance(s)."
    )
    # After: the new configuration in service, nothing pending, the blue fleet gone.
    assert final["EndpointConfigName"] == "green"
    assert "PendingDeploymentSummary" not in final and "FailureReason" not in final
    assert final["LastDeploymentConfig"] == deployment_config
    assert no_process_left(fleet_folder(local, "blue"))
    assert local.rollbacks() == []


@pytest.mark.h2o
def test_a_failing_canary_is_rolled_back_by_its_alarm_and_only_the_canary_share_failed(local: Local) -> None:
    endpoint_in_service("blue")
    error_rate_alarm()
    local.sagemaker.fail_invocations("green")  # its /ping healthy: only the alarm can tell
    deployment_config = canary(wait_seconds=30, termination_wait_seconds=30)

    with RequestLoop(endpoint_url(local), ROW) as loop:
        wait_until(lambda: len(loop.outcomes) > 20, "blue's first answers", timeout=30)
        update("green", deployment_config)
        wait_until(local.rollbacks, "the rollback", timeout=60)
        final = wait_until(lambda: idle(describe()), "the endpoint in service again", timeout=60)
        time.sleep(1)  # answers after the rollback
    runtime_answer = (
        client("sagemaker-runtime")
        .invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW)["Body"]
        .read()
    )

    [(canary_at, share)] = local.shifts()  # never more than the canary
    [(rolled_back_at, rolled_back)] = local.rollbacks()
    assert share == 0.25
    assert rolled_back == events.EndpointRolledBack(
        ENDPOINT, "blue", (ALARM,), f"rollback alarm(s) in ALARM: {ALARM}"
    )
    assert rolled_back_at - canary_at < 5, "the alarm, not the end of the 30 s canary, rolled it back"
    blue_answer = loop.bodies[0]
    failures = [index for index, outcome in enumerate(loop.outcomes) if outcome != 200]
    assert failures and {loop.outcomes[index] for index in failures} == {
        "<HTTPError 500: 'Internal Server Error'>"
    }
    # At most the canary's share of the requests sent while it took traffic (to within the requests in flight
    # at the shift and at the rollback), and none sent after the rollback.
    in_canary = started_between(loop, canary_at, rolled_back_at)
    assert len(failures) <= math.ceil(0.25 * len(in_canary)) + 2, (len(failures), len(in_canary))
    after = started_between(loop, rolled_back_at, math.inf)
    assert len(after) > 20
    assert {loop.outcomes[index] for index in after} == {200}
    assert {loop.bodies[index] for index in after} == {blue_answer} == {runtime_answer}

    # DescribeEndpoint after an auto-rollback: InService with the old configuration, the deployment
    # configuration it was asked with, nothing pending; the green fleet gone.
    assert set(final) - {"ResponseMetadata"} == set(described_by_the_emulation(local))
    assert final["EndpointConfigName"] == "blue"
    assert final["LastDeploymentConfig"] == deployment_config
    assert "PendingDeploymentSummary" not in final and "FailureReason" not in final
    assert no_process_left(fleet_folder(local, "green"))

    cloudwatch = client("cloudwatch")
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [")
    assert alarm["StateReason"].endswith("] was greater than the threshold (0.01).")
    reason_data = json.loads(alarm["StateReasonData"])
    assert (reason_data["statistic"], reason_data["period"], reason_data["threshold"]) == (
        "Average",
        60,
        0.01,
    )
    history = cloudwatch.describe_alarm_history(AlarmName=ALARM, HistoryItemType="StateUpdate")[
        "AlarmHistoryItems"
    ]
    assert [item["HistorySummary"] for item in history] == [  # newest first
        "Alarm updated from OK to ALARM",
        "Alarm updated from INSUFFICIENT_DATA to OK",  # on blue's answers, before the update
    ]
    assert json.loads(history[0]["HistoryData"])["newState"]["stateReason"] == alarm["StateReason"]

    # The endpoint's metrics count exactly the requests the loop and the runtime call made, and their failures.
    def total(metric: str) -> float:
        now = datetime.now(UTC)
        datapoints = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": VARIANT},
            ],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(point["Sum"] for point in datapoints)

    wait_until(
        lambda: total("Invocations") == len(loop.outcomes) + 1, "the last requests published", timeout=5
    )
    assert total("Invocation5XXErrors") == len(failures)
    assert total("Invocation4XXErrors") == 0

    # Through the runtime API a model's 5xx is SageMaker's ModelError (HTTP 424) naming the container's status.
    local.sagemaker.fail_invocations("blue")
    with pytest.raises(ClientError) as failed:
        client("sagemaker-runtime").invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW)
    error = failed.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ModelError", 424)
    assert error["Error"]["Message"].startswith("Received server error (500) from primary with message")


@pytest.mark.h2o
def test_an_update_whose_new_fleet_cannot_start_leaves_the_old_configuration_serving(local: Local) -> None:
    """SageMaker keeps an endpoint whose update failed InService on its previous configuration, the failure as
    FailureReason; the requests never stop."""
    endpoint_in_service("blue")
    error_rate_alarm()
    sagemaker = client("sagemaker")
    sagemaker.create_model(
        ModelName="unreadable",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={
            "Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/h2o-gbm-predictor:latest",
            "ModelDataUrl": f"s3://{BUCKET}/missing/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="unreadable",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "unreadable",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 4,
            }
        ],
    )
    with RequestLoop(endpoint_url(local), ROW) as loop:
        update("unreadable", canary(wait_seconds=4, termination_wait_seconds=2))
        final = wait_until(lambda: idle(describe()), "the failed update's end", timeout=30)
    assert final["EndpointConfigName"] == "blue"
    assert final["FailureReason"].startswith(
        "Failed to update endpoint: Failed to download model data from URL"
    )
    assert loop.outcomes and set(loop.outcomes) == {200}
    assert local.shifts() == []
    [(_, rolled_back)] = local.rollbacks()
    assert (rolled_back.config, rolled_back.alarms) == ("blue", ())
    # The next update clears it.
    update("green", canary(wait_seconds=0, termination_wait_seconds=0))
    final = wait_until(
        lambda: (found := idle(describe())) and found["EndpointConfigName"] == "green" and found,
        "green",
        timeout=60,
    )
    assert "FailureReason" not in final


@pytest.mark.h2o
def test_a_linear_update_shifts_step_by_step_to_everything(local: Local) -> None:
    endpoint_in_service("blue")
    error_rate_alarm()
    deployment_config = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": 1,
            },
            "TerminationWaitInSeconds": 1,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
    }

    with RequestLoop(endpoint_url(local), ROW) as loop:
        update("green", deployment_config)
        final = wait_until(lambda: idle(describe()), "the update's end", timeout=60)

    assert loop.outcomes and set(loop.outcomes) == {200}
    assert [share for _, share in local.shifts()] == [0.25, 0.5, 0.75, 1.0]
    times = [at for at, _ in local.shifts()]
    assert all(0.9 < later - earlier < 2 for earlier, later in itertools.pairwise(times))
    assert final["EndpointConfigName"] == "green"
    assert no_process_left(fleet_folder(local, "blue"))


@pytest.mark.h2o
def test_an_update_sagemaker_would_refuse_is_refused_and_the_endpoint_keeps_serving(local: Local) -> None:
    endpoint_in_service("blue-single")
    error_rate_alarm()
    single_canary = canary(wait_seconds=1, termination_wait_seconds=1)
    percent_canary = canary(wait_seconds=1, termination_wait_seconds=1)
    percent_canary["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"] = {
        "Type": "CAPACITY_PERCENT",
        "Value": 50,
    }
    unknown_alarm = canary(wait_seconds=1, termination_wait_seconds=1)
    unknown_alarm["AutoRollbackConfiguration"]["Alarms"] = [{"AlarmName": "no-such-alarm"}]
    refusals = [
        (
            "green-single",
            single_canary,
            "CanarySize must be at most 50% of the variant's total instance count: 1 instance(s) is 100% of "
            "1 instance(s).",
        ),
        (
            "green-single",
            percent_canary,
            "CanarySize of 50 percent of capacity is less than one of the variant's 1 instance(s).",
        ),
        (
            "green",  # 4 instances, but RetainAllVariantProperties keeps the running variant's 1
            single_canary,
            "CanarySize must be at most 50% of the variant's total instance count",
        ),
        (
            "green-single",
            {
                "BlueGreenUpdatePolicy": single_canary["BlueGreenUpdatePolicy"]
                | {"TerminationWaitInSeconds": 4000}
            },
            "1 validation error detected: Value '4000' at "
            "'deploymentConfig.blueGreenUpdatePolicy.terminationWaitInSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 3600",
        ),
        (
            "green-single",
            {"AutoRollbackConfiguration": unknown_alarm["AutoRollbackConfiguration"]},
            f"Could not find CloudWatch alarm(s) ['no-such-alarm'] in AutoRollbackConfiguration in account "
            f"{ACCOUNT_ID} and region {REGION}.",
        ),
    ]
    other_variant = "green-other-variant"
    client("sagemaker").create_endpoint_config(
        EndpointConfigName=other_variant,
        ProductionVariants=[
            {
                "VariantName": "Challenger",
                "ModelName": "green",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 4,
            }
        ],
    )
    refusals.append(
        (
            other_variant,
            {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]}},
            "a blue/green deployment needs the new endpoint configuration to have the same variant names.",
        )
    )

    for config_name, deployment_config, message in refusals:
        with pytest.raises(ClientError) as refused:
            update(config_name, deployment_config)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert message in refused.value.response["Error"]["Message"]
    # An auto-scaled variant may get a new model, not a new instance type, nor be removed.
    client("sagemaker").create_endpoint_config(
        EndpointConfigName="green-c5",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "green",
                "InstanceType": "ml.c5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/{VARIANT}",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    client("application-autoscaling").register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    for config_name, message in [
        (
            "green-c5",
            f"Variant {VARIANT} of endpoint {ENDPOINT} is an Application Auto Scaling target and its "
            "instance type changes from ml.m5.large to ml.c5.large: deregister the scalable target",
        ),
        (other_variant, f"endpoint configuration {other_variant} has no variant {VARIANT}"),
    ]:
        with pytest.raises(ClientError) as refused:
            client("sagemaker").update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config_name)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert message in refused.value.response["Error"]["Message"]
    client("application-autoscaling").deregister_scalable_target(**target)

    description = describe()
    assert (description["EndpointStatus"], description["EndpointConfigName"]) == ("InService", "blue-single")
    assert "LastDeploymentConfig" not in description and "PendingDeploymentSummary" not in description
    assert local.shifts() == []
    answer = client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW
    )
    assert b"predictions" in answer["Body"].read()


def test_an_update_past_its_maximum_execution_timeout_rolls_back(tmp_path: Path) -> None:
    """The timeout's least value, 600 s, is too long for a test: the endpoint's traffic shifting runs alone, with
    model servers that never started, on a plan whose timeout is 1 s (which SageMaker would refuse)."""
    reported: list[events.Event] = []

    def endpoint_config(name: str) -> dict[str, Any]:
        variant = {"VariantName": VARIANT, "InstanceType": "ml.m5.large", "InitialInstanceCount": 4}
        return {"EndpointConfigName": name, "ProductionVariants": [variant]}

    endpoint = LocalEndpoint(
        ENDPOINT,
        "arn",
        endpoint_config("blue"),
        tmp_path,
        alarms_in_alarm=lambda names: [],
        listener=reported.append,
    )
    blue, green = ModelServer(tmp_path / "blue", VARIANT), ModelServer(tmp_path / "green", VARIANT)
    endpoint.server, endpoint.deployed_config, endpoint.status = blue, endpoint_config("blue"), "InService"
    endpoint.start_deployment(endpoint_config("green"), 4, {})
    plan = BlueGreenPlan("CANARY", (TrafficStep(0.25, 1, 60), TrafficStep(1.0, 4, 0)), 60, 1, ())
    try:
        endpoint._shift_traffic(blue, green, plan)

        assert reported == [
            events.TrafficShifted(ENDPOINT, "green", 0.25),
            events.EndpointRolledBack(
                ENDPOINT, "blue", (), "MaximumExecutionTimeoutInSeconds (1 s) exceeded"
            ),
        ]
        assert (endpoint.status, endpoint.config["EndpointConfigName"], endpoint.pending) == (
            "InService",
            "blue",
            None,
        )
        assert all(endpoint.proxy.router.acquire() is blue for _ in range(8))
    finally:
        endpoint.shutdown()


# --- plans of the traffic routing types ------------------------------------------------------------------------


def routing(kind: str, wait: int = 60, **sizes: dict[str, Any]) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **sizes},
            "TerminationWaitInSeconds": 120,
        }
    }


def instances(count: int) -> dict[str, Any]:
    return {"Type": "INSTANCE_COUNT", "Value": count}


def percent(value: int) -> dict[str, Any]:
    return {"Type": "CAPACITY_PERCENT", "Value": value}


@pytest.mark.parametrize(
    ("deployment_config", "instance_count", "steps"),
    [
        (routing("ALL_AT_ONCE"), 3, [TrafficStep(1.0, 3, 0)]),
        (routing("CANARY", CanarySize=instances(1)), 4, [TrafficStep(0.25, 1, 60), TrafficStep(1.0, 4, 0)]),
        (routing("CANARY", CanarySize=percent(50)), 2, [TrafficStep(0.5, 1, 60), TrafficStep(1.0, 2, 0)]),
        (
            routing("LINEAR", LinearStepSize=instances(1)),
            3,
            [TrafficStep(1 / 3, 1, 60), TrafficStep(2 / 3, 2, 60), TrafficStep(1.0, 3, 0)],
        ),
        (
            routing("LINEAR", LinearStepSize=percent(40)),
            5,
            [TrafficStep(0.4, 2, 60), TrafficStep(0.8, 4, 60), TrafficStep(1.0, 5, 0)],
        ),
        # No update policy: SageMaker's default, all at once, the alarms still watched.
        ({"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]}}, 2, [TrafficStep(1.0, 2, 0)]),
    ],
)
def test_each_traffic_routing_type_shifts_in_its_steps(
    deployment_config: dict[str, Any], instance_count: int, steps: list[TrafficStep]
) -> None:
    plan = plan_blue_green(deployment_config, instance_count)

    assert list(plan.steps) == steps


@pytest.mark.parametrize(
    ("deployment_config", "instance_count", "message"),
    [
        (
            routing("CANARY", CanarySize=instances(3)),
            5,
            "CanarySize must be at most 50% of the variant's total instance count: 3 instance(s) is 60% of 5",
        ),
        (routing("CANARY", CanarySize=percent(51)), 10, "CanarySize must be at most 50%"),
        (
            routing("CANARY", CanarySize=percent(25)),
            2,
            "CanarySize of 25 percent of capacity is less than one",
        ),
        (routing("LINEAR", LinearStepSize=percent(5)), 20, "LinearStepSize must be between 10% and 50%"),
        (routing("LINEAR", LinearStepSize=instances(3)), 4, "LinearStepSize must be between 10% and 50%"),
        (routing("CANARY"), 4, "CanarySize is required with traffic routing type CANARY."),
        (
            routing("LINEAR", CanarySize=instances(1)),
            4,
            "CanarySize is not valid with traffic routing type LINEAR.",
        ),
        (
            routing("ALL_AT_ONCE", CanarySize=instances(1)),
            4,
            "CanarySize is not valid with traffic routing type",
        ),
        (
            {"RollingUpdatePolicy": {"MaximumBatchSize": instances(1), "WaitIntervalInSeconds": 60}},
            4,
            "local SageMaker emulates blue/green deployments only",
        ),
        (
            {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{index}"} for index in range(11)]}},
            4,
            "1 validation error detected: Value '[{AlarmName=a0}, {AlarmName=a1}, {AlarmName=a2}, {AlarmName=a3}, "
            "{AlarmName=a4}, {AlarmName=a5}, {AlarmName=a6}, {AlarmName=a7}, {AlarmName=a8}, {AlarmName=a9}, "
            "{AlarmName=a10}]' at 'deploymentConfig.autoRollbackConfiguration.alarms' failed to satisfy constraint: "
            "Member must have length less than or equal to 10",
        ),
        (
            {
                "BlueGreenUpdatePolicy": routing("LINEAR", 300, LinearStepSize=instances(1))[
                    "BlueGreenUpdatePolicy"
                ]
                | {"MaximumExecutionTimeoutInSeconds": 600}
            },
            4,
            "MaximumExecutionTimeoutInSeconds (600) must be larger than the total waiting time of "
            "TerminationWaitInSeconds and WaitIntervalInSeconds (1020 s).",
        ),
    ],
)
def test_a_deployment_config_sagemaker_refuses_is_refused(
    deployment_config: dict[str, Any], instance_count: int, message: str
) -> None:
    with pytest.raises(DeploymentConfigError) as refused:
        plan_blue_green(deployment_config, instance_count)

    assert message in str(refused.value)


# --- the alarm evaluator ---------------------------------------------------------------------------------------


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        cloudwatch_alarms.install()
        try:
            yield client("cloudwatch")
        finally:
            moto_patches.uninstall()


NOW = datetime(2026, 12, 2, 18, 0, 30)  # naive UTC, as moto keeps its timestamps
DIMENSIONS = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": VARIANT}]


def put_values(
    metric: str, *values_seconds_ago: tuple[float, float], dimensions: list[dict[str, str]] = DIMENSIONS
) -> None:
    """Single values, each ``seconds`` before NOW."""
    cloudwatch_backends[ACCOUNT_ID][REGION].put_metric_data(
        "AWS/SageMaker",
        [
            {
                "MetricName": metric,
                "Dimensions": dimensions,
                "Timestamp": NOW - timedelta(seconds=ago),
                "Value": value,
            }
            for value, ago in values_seconds_ago
        ],
    )


def put_statistics(
    metric: str, seconds_ago: float, count: float, total: float, low: float, high: float
) -> None:
    cloudwatch_backends[ACCOUNT_ID][REGION].put_metric_data(
        "AWS/SageMaker",
        [
            {
                "MetricName": metric,
                "Dimensions": DIMENSIONS,
                "Timestamp": NOW - timedelta(seconds=seconds_ago),
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
            }
        ],
    )


def alarm(cloudwatch: Any, name: str, statistic: str, threshold: float, **settings: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName=settings.pop("MetricName", "ModelLatency"),
        Statistic=statistic,
        Dimensions=DIMENSIONS,
        Period=settings.pop("Period", 60),
        EvaluationPeriods=settings.pop("EvaluationPeriods", 1),
        Threshold=threshold,
        ComparisonOperator=settings.pop("ComparisonOperator", "GreaterThanThreshold"),
        **settings,
    )


def state(cloudwatch: Any, name: str) -> tuple[str, str]:
    [found] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return found["StateValue"], found["StateReason"]


def test_each_statistic_over_single_values_and_statistic_sets(cloudwatch: Any) -> None:
    # In the last minute: single values 100 and 300, and a set of 2 samples summing 600 (200 to 400): so
    # SampleCount 4, Sum 1000, Average 250, Minimum 100, Maximum 400. Older data and another dimension set
    # (the same dimensions plus one) are other data.
    put_values("ModelLatency", (100, 50), (300, 10))
    put_statistics("ModelLatency", 20, count=2, total=600, low=200, high=400)
    put_values("ModelLatency", (5000, 90))
    put_values(
        "ModelLatency", (9000, 5), dimensions=[*DIMENSIONS, {"Name": "EndpointConfigName", "Value": "x"}]
    )
    expected = {"SampleCount": 4, "Sum": 1000, "Average": 250, "Minimum": 100, "Maximum": 400}
    for statistic, value in expected.items():
        alarm(
            cloudwatch,
            f"{statistic}-at",
            statistic,
            value,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        alarm(cloudwatch, f"{statistic}-above", statistic, value)

    AlarmEvaluator(ACCOUNT_ID, REGION).evaluate_all(NOW)

    for statistic, value in expected.items():
        assert state(cloudwatch, f"{statistic}-at") == (
            "ALARM",
            f"Threshold Crossed: 1 datapoint [{float(value)!r} (02/12/26 17:59:30)] was greater than or equal to "
            f"the threshold ({float(value)!r}).",
        )
        assert state(cloudwatch, f"{statistic}-above")[0] == "OK"


def test_missing_data_is_treated_as_the_alarm_says(cloudwatch: Any) -> None:
    treatments = ("missing", "notBreaching", "breaching", "ignore")
    for treatment in treatments:
        alarm(
            cloudwatch,
            treatment,
            "Average",
            0.01,
            MetricName="Invocation5XXErrors",
            TreatMissingData=treatment,
        )
    evaluator = AlarmEvaluator(ACCOUNT_ID, REGION)

    evaluator.evaluate_all(NOW)  # no data yet

    assert state(cloudwatch, "missing") == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    assert state(cloudwatch, "notBreaching") == (
        "OK",
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        "[NonBreaching].",
    )
    assert state(cloudwatch, "breaching")[0] == "ALARM"
    assert state(cloudwatch, "ignore") == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")

    put_values("Invocation5XXErrors", (1.0, 10))  # every request failed, then none came
    evaluator.evaluate_all(NOW)
    assert {treatment: state(cloudwatch, treatment)[0] for treatment in treatments} == dict.fromkeys(
        treatments, "ALARM"
    )
    evaluator.evaluate_all(NOW + timedelta(minutes=2))

    assert state(cloudwatch, "missing") == (
        "INSUFFICIENT_DATA",
        "Insufficient Data: 1 datapoint was unknown.",
    )
    assert state(cloudwatch, "notBreaching")[0] == "OK"
    assert state(cloudwatch, "breaching")[0] == "ALARM"
    assert state(cloudwatch, "ignore")[0] == "ALARM"


def test_m_out_of_n_periods_and_the_history_of_transitions(cloudwatch: Any) -> None:
    # Three periods of 10 s before NOW: 0.5, no data, 0.2 (oldest first); 2 of 3 must breach 0.1.
    put_values("Invocation5XXErrors", (0.5, 25), (0.2, 5))
    alarm(
        cloudwatch,
        "errors",
        "Average",
        0.1,
        MetricName="Invocation5XXErrors",
        Period=10,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        TreatMissingData="notBreaching",
    )
    evaluator = AlarmEvaluator(ACCOUNT_ID, REGION)

    evaluator.evaluate_all(NOW)
    evaluator.evaluate_all(NOW + timedelta(seconds=10))  # the 0.5 period left the range: 1 of 3 breach

    items = cloudwatch.describe_alarm_history(AlarmName="errors", ScanBy="TimestampAscending")[
        "AlarmHistoryItems"
    ]
    assert [item["HistorySummary"] for item in items] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    to_alarm = json.loads(items[0]["HistoryData"])["newState"]
    assert to_alarm["stateReason"] == (
        "Threshold Crossed: 2 out of the last 3 datapoints [0.2 (02/12/26 18:00:20), 0.5 (02/12/26 18:00:00)] were "
        "greater than the threshold (0.1) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert to_alarm["stateReasonData"]["recentDatapoints"] == [0.5, 0.2]
    assert state(cloudwatch, "errors")[0] == "OK"
    assert evaluator.in_alarm(["errors", "no-such-alarm"]) == []


def test_an_alarm_the_evaluator_cannot_evaluate_cannot_guard_an_update(cloudwatch: Any) -> None:
    alarm(cloudwatch, "average-latency", "Average", 100000)
    cloudwatch.put_metric_alarm(
        AlarmName="p99-latency",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p99",
        Dimensions=DIMENSIONS,
        Period=60,
        EvaluationPeriods=1,
        Threshold=100000,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.put_metric_alarm(
        AlarmName="new-fleet-latency",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Statistic="Average",
        Dimensions=[*DIMENSIONS, {"Name": "EndpointConfigName", "Value": "green"}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=100000,
        ComparisonOperator="GreaterThanThreshold",
    )
    evaluator = AlarmEvaluator(ACCOUNT_ID, REGION)

    assert evaluator.unevaluated_rollback_alarms(["average-latency"]) is None
    assert evaluator.unevaluated_rollback_alarms(["average-latency", "p99-latency"]) == (
        "local SageMaker cannot evaluate CloudWatch alarm p99-latency in AutoRollbackConfiguration: its statistic "
        "is p99, not one of ['Average', 'Sum', 'Minimum', 'Maximum', 'SampleCount']; a rollback alarm must watch "
        "one of ['Invocations', 'Invocation4XXErrors', 'Invocation5XXErrors', 'ModelLatency', 'OverheadLatency'] "
        "in AWS/SageMaker by ['EndpointName', 'VariantName']"
    )
    problem = evaluator.unevaluated_rollback_alarms(["new-fleet-latency"])
    assert problem is not None
    assert "its dimensions are ['EndpointConfigName', 'EndpointName', 'VariantName']" in problem


def test_each_change_of_state_is_sent_to_eventbridge_as_cloudwatch_sends_it(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(default_bus, "send", lambda *arguments: sent.append(arguments))
    alarm(
        cloudwatch,
        "errors",
        "Average",
        0.01,
        MetricName="Invocation5XXErrors",
        TreatMissingData="notBreaching",
        AlarmDescription="Share of 5xx answers",
    )
    evaluator = AlarmEvaluator(ACCOUNT_ID, REGION)

    evaluator.evaluate_all(NOW)  # no data, not breaching: OK
    cloudwatch.set_alarm_state(
        AlarmName="errors", StateValue="ALARM", StateReason="testing the page", StateReasonData='{"test": 1}'
    )
    cloudwatch.set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="no change, no event")
    evaluator.evaluate_all(NOW)  # its real state again

    assert {(account, region) for account, region, _ in sent} == {(ACCOUNT_ID, REGION)}
    received = [EventBridgeModel.model_validate(event) for _, _, event in sent]
    assert [
        (event.detail["previousState"]["value"], event.detail["state"]["value"]) for event in received
    ] == [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    created, raised, cleared = received
    # The same fields, nested the same way and of the same types, as the event AWS documents (tests/events).
    assert json_shape(sent[1][2]) == json_shape(alarm_state_change())
    assert (raised.source, raised.detail_type, raised.account, raised.region) == (
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        ACCOUNT_ID,
        REGION,
    )
    assert raised.resources == [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:errors"]
    [metric] = raised.detail["configuration"]["metrics"]
    assert raised.detail["alarmName"] == "errors"
    assert raised.detail["configuration"]["description"] == "Share of 5xx answers"
    assert (metric["metricStat"], metric["returnData"]) == (
        {
            "metric": {
                "dimensions": {"EndpointName": ENDPOINT, "VariantName": VARIANT},
                "name": "Invocation5XXErrors",
                "namespace": "AWS/SageMaker",
            },
            "period": 60,
            "stat": "Average",
        },
        True,
    )
    # A new alarm's state has no reason data; an evaluated one has CloudWatch's, as a JSON string.
    assert set(created.detail["previousState"]) == {"reason", "timestamp", "value"}
    assert raised.detail["state"]["reason"] == "testing the page"
    assert raised.detail["previousState"] == created.detail["state"]
    assert json.loads(cleared.detail["state"]["reasonData"])["threshold"] == 0.01
    assert cleared.detail["state"]["timestamp"].endswith("+0000")


def json_shape(value: Any) -> Any:
    """A JSON document's keys and value types (a list by its first item)."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_shape(item) for item in value[:1]]
    return type(value).__name__


def test_a_metric_math_alarm_sends_its_queries_as_the_events_metrics(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(default_bus, "send", lambda *arguments: sent.append(arguments))
    cloudwatch.put_metric_alarm(
        AlarmName="error-share",
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocation5XXErrors",
                        "Dimensions": DIMENSIONS,
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {"Id": "share", "Expression": "errors * 100", "Label": "5xx percent", "ReturnData": True},
        ],
    )

    cloudwatch.set_alarm_state(AlarmName="error-share", StateValue="ALARM", StateReason="testing")

    [(_, _, event)] = sent
    assert event["detail"]["configuration"]["metrics"] == [
        {
            "id": "errors",
            "returnData": False,
            "metricStat": {
                "metric": {
                    "dimensions": {"EndpointName": ENDPOINT, "VariantName": VARIANT},
                    "name": "Invocation5XXErrors",
                    "namespace": "AWS/SageMaker",
                },
                "period": 60,
                "stat": "Sum",
            },
        },
        {"id": "share", "returnData": True, "expression": "errors * 100", "label": "5xx percent"},
    ]
