"""Safe releases through the local pipeline: the model registry, approvals, guarded (canary) endpoint updates and
their automatic rollback, with the real templates, ASL, Lambdas, trainer and predictor.

One stack, an endpoint of 4 instances updated by a canary of 1 (a quarter of the traffic, watched 6 s, then 3 s
of baking), runs of 2 training jobs each, in order:

1. Automatic approval: the first run registers version 1 and creates the endpoint with it.
2. The second run registers version 2 and deploys it with a canary update; every request of a steady loop
   through the endpoint's URL succeeds.
3. Manual approval: version 3 waits PendingManualApproval and nothing deploys; approving it deploys it.
4. Version 4 is rejected by hand: nothing deploys.
5. Version 1 is deployed again by its ARN (the deployer started by hand); the rejected version 4 is refused.
6. Automatic approval again, version 5 on a new instance type, and its model server answers 5xx: the variant's
   auto scaling is detached for the update (SageMaker refuses a new instance type on an auto-scaled variant),
   the 5xx alarm rolls the canary back; at most the canary's share of the requests failed, none after the
   rollback; the endpoint serves version 1's configuration again with its auto scaling restored as it was, the
   notification names the alarm, version 5 is marked rolled back in the registry.
7. An approval the trigger cannot deploy (the stored settings edited by hand into an invalid document) is
   reported on the topic, and deploys nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from feature_statements import serves_releases_only, statements_of_stack_roles
from h2o_sagemaker_local import events
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult
from h2o_sagemaker_local.stack import REGION
from polling import wait_until
from process_watch import no_process_left
from request_loop import RequestLoop
from workflow_common.execution_input import ModelRegistration, StackResources, build_deployment_input
from workflow_common.ml_parameters import MlParameters

pytestmark = pytest.mark.h2o

INSTANCES = 4
CANARY = {"type": "INSTANCE_COUNT", "value": 1}
CANARY_SHARE = 0.25
DEPLOYMENT = {
    "strategy": "Canary",
    "canarySize": CANARY,
    "waitIntervalInSeconds": 6,
    "bakingPeriodInSeconds": 3,
}


NEW_INSTANCE_TYPE = "ml.c5.xlarge"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def auto_scaling(endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The endpoint's scalable targets and scaling policies, without what AWS sets anew on each registration."""
    autoscaling = client("application-autoscaling")
    resource = f"endpoint/{endpoint}/variant/"
    # moto leaves SuspendedState out until it is set; AWS always answers it, all false by default.
    not_suspended = {
        "DynamicScalingInSuspended": False,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    }
    targets = [
        {key: target[key] for key in ("ResourceId", "MinCapacity", "MaxCapacity")}
        | {"SuspendedState": target.get("SuspendedState", not_suspended)}
        for target in autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        if target["ResourceId"].startswith(resource)
    ]
    policies = [
        {
            key: policy[key]
            for key in ("ResourceId", "PolicyName", "PolicyType", "TargetTrackingScalingPolicyConfiguration")
        }
        for policy in autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        if policy["ResourceId"].startswith(resource)
    ]
    return targets, policies


@dataclass
class Releases:
    pipeline: LocalPipeline
    options: Any
    ml_parameters: dict[str, Any]
    reported: list[tuple[float, events.Event]] = field(default_factory=list)
    runs: dict[str, RunResult] = field(default_factory=dict)
    notifications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def listen(self, event: events.Event) -> None:
        self.reported.append((time.monotonic(), event))

    @property
    def endpoint(self) -> str:
        return str(self.ml_parameters["endpointName"])

    @property
    def deployer(self) -> str:
        assert self.pipeline.stack is not None
        return str(self.pipeline.stack.outputs["EndpointDeploymentStateMachineArn"])

    def run(self, name: str, approval: str | None = None, expect: str = "SUCCEEDED") -> RunResult:
        """A run of 2 jobs on the example data (with another modelApproval: a stack update re-importing)."""
        if approval and approval != self.ml_parameters.get("modelApproval"):
            self.ml_parameters["modelApproval"] = approval
            revision = str(len(self.runs) + 2)
            self.pipeline.update_stack({"ParametersRevision": revision}, ml_parameters=self.ml_parameters)
        result = self.pipeline.follow(self.start(name), timeout_seconds=600)
        assert result.status == expect, result.cause
        self.runs[name] = result
        self.notifications[name] = self.pipeline.notifications()
        return result

    def start(self, name: str) -> str:
        _, _, manifest = local_inputs(self.options)
        data = {"training": self.options.train, "validation": self.options.validation}
        return self.pipeline.start(manifest, data, f"manifests/{name}/manifest.json")

    def deployments(self) -> list[str]:
        executions = client("stepfunctions").list_executions(stateMachineArn=self.deployer)["executions"]
        return [item["executionArn"] for item in executions]

    def serving(self) -> str:
        return str(client("sagemaker").describe_endpoint(EndpointName=self.endpoint)["EndpointConfigName"])

    def version(self, arn: str) -> dict[str, Any]:
        return client("sagemaker").describe_model_package(ModelPackageName=arn)

    def shifts_since(self, moment: float) -> list[tuple[float, float]]:
        return [
            (at, event.green_share)
            for at, event in self.reported
            if at >= moment and isinstance(event, events.TrafficShifted)
        ]

    def traffic(self) -> RequestLoop:
        url = self.pipeline.sagemaker.endpoints[self.endpoint].proxy.url
        row = "\n".join(self.options.validation.read_text().splitlines()[:2]).encode()
        return RequestLoop(url, row)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Releases]:
    options = parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])
    ml_parameters, hyperparameters, _ = local_inputs(options)
    ml_parameters["model"]["hosting"]["initialInstanceCount"] = INSTANCES
    ml_parameters |= {
        "autoscalingMinCapacity": 2,
        "autoscalingMaxCapacity": INSTANCES,
        "deployment": DEPLOYMENT,
    }
    recorded = Releases(None, options, ml_parameters)  # type: ignore[arg-type]
    with LocalPipeline(tmp_path_factory.mktemp("releases"), listener=recorded.listen, seed=5) as pipeline:
        recorded.pipeline = pipeline
        pipeline.deploy(ml_parameters, hyperparameters)
        yield recorded
    assert no_process_left(pipeline.workdir), "a training job or model server outlived the pipeline"


# --- 1, 2: automatic approval ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def automatic(releases: Releases) -> Releases:
    releases.run("first")
    with releases.traffic() as loop:
        started = time.monotonic()
        releases.run("second")
    releases.second_traffic = loop  # type: ignore[attr-defined]
    releases.second_shifts = releases.shifts_since(started)  # type: ignore[attr-defined]
    return releases


def test_automatic_approval_registers_version_1_and_deploys_it(automatic: Releases) -> None:
    first = automatic.runs["first"]
    version = first.output["modelPackage"]
    assert (version["modelPackageVersion"], version["modelApprovalStatus"]) == (1, "Approved")
    assert first.output["deployed"] is True and first.output["endpoint"]["updated"] is False
    package = automatic.version(version["modelPackageArn"])
    assert package["ModelApprovalStatus"] == "Approved"
    metadata = package["CustomerMetadataProperties"]
    model = first.output["model"]
    assert (metadata["modelName"], metadata["trainingJobName"]) == (
        model["modelName"],
        model["trainingJobName"],
    )
    assert metadata["manifest"].endswith("manifests/first/manifest.json")
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == model["modelDataUrl"]
    # The version's ModelQuality statistics: the validation metrics the best job reported.
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, _, key = statistics.removeprefix("s3://").partition("/")
    quality = json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    auc = quality["binary_classification_metrics"]["auc"]["value"]
    assert auc == pytest.approx(model["objective"]["Value"])


def test_version_2_is_deployed_by_a_canary_with_every_request_answered(automatic: Releases) -> None:
    second = automatic.runs["second"]
    assert second.output["modelPackage"]["modelPackageVersion"] == 2
    assert second.output["endpoint"]["updated"] is True
    assert automatic.serving() == second.output["endpoint"]["endpointConfigName"]
    loop = automatic.second_traffic  # type: ignore[attr-defined]
    assert len(loop.outcomes) > 100 and set(loop.outcomes) == {200}
    shares = [share for _, share in automatic.second_shifts]  # type: ignore[attr-defined]
    assert shares == [CANARY_SHARE, 1.0]
    [(canary_at, _), (all_at, _)] = automatic.second_shifts  # type: ignore[attr-defined]
    assert all_at - canary_at >= DEPLOYMENT["waitIntervalInSeconds"] - 0.5
    [deployed] = [item for item in automatic.notifications["second"] if item["stage"] == "Deployed"]
    assert (deployed["modelPackageVersion"], deployed["updated"]) == (2, True)


# --- 3, 4: manual approval ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manual(automatic: Releases) -> Releases:
    serving = automatic.serving()
    before = set(automatic.deployments())
    waiting = automatic.run("third", approval="Manual")
    time.sleep(2)  # an approval trigger that wrongly deployed the creation event would have started by now
    automatic.third_untouched = (automatic.serving() == serving, set(automatic.deployments()) == before)  # type: ignore[attr-defined]
    arn = waiting.output["modelPackage"]["modelPackageArn"]
    client("sagemaker").update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="reviewed the metrics"
    )
    started = wait_until(
        lambda: set(automatic.deployments()) - before, "the approval's deployment", timeout=10
    )
    [deployment] = started
    automatic.runs["third approved"] = automatic.pipeline.follow(deployment, timeout_seconds=300)
    automatic.notifications["third approved"] = automatic.pipeline.notifications()
    automatic.run("fourth")
    rejected = automatic.runs["fourth"].output["modelPackage"]["modelPackageArn"]
    before_rejection = set(automatic.deployments())
    client("sagemaker").update_model_package(ModelPackageArn=rejected, ModelApprovalStatus="Rejected")
    time.sleep(2)
    automatic.fourth_untouched = set(automatic.deployments()) == before_rejection  # type: ignore[attr-defined]
    return automatic


def test_manual_approval_deploys_nothing_until_the_version_is_approved(manual: Releases) -> None:
    third = manual.runs["third"]
    assert third.output["deployed"] is False and third.output["awaitingApproval"] is True
    assert third.output["modelPackage"]["modelApprovalStatus"] == "PendingManualApproval"
    assert manual.third_untouched == (True, True)  # type: ignore[attr-defined]
    [registered] = [item for item in manual.notifications["third"] if item["stage"] == "ModelRegistered"]
    assert registered["modelApprovalStatus"] == "PendingManualApproval"
    assert len(third.history) == 2, "no endpoint deployment was started by the run (parent and tuning only)"


def test_approving_the_version_deploys_it(manual: Releases) -> None:
    approved = manual.runs["third approved"]
    assert approved.status == "SUCCEEDED", approved.cause
    version = manual.runs["third"].output["modelPackage"]
    assert approved.output["endpointConfigName"].startswith(f"{manual.endpoint}-v3-")
    [deployed] = [item for item in manual.notifications["third approved"] if item["stage"] == "Deployed"]
    assert deployed["modelPackageArn"] == version["modelPackageArn"]
    assert deployed["modelName"] == manual.runs["third"].output["model"]["modelName"]


def test_rejecting_a_version_deploys_nothing(manual: Releases) -> None:
    fourth = manual.runs["fourth"].output["modelPackage"]
    assert manual.version(fourth["modelPackageArn"])["ModelApprovalStatus"] == "Rejected"
    assert manual.fourth_untouched is True  # type: ignore[attr-defined]
    assert manual.serving() == manual.runs["third approved"].output["endpointConfigName"]


# --- 5: an older version by its ARN ---------------------------------------------------------------------------


def deploy_by_hand(releases: Releases, package_arn: str, deployment_id: str) -> RunResult:
    """Start the endpoint-deployment state machine with a version's ARN, as the README's example input does: the
    stack's settings (ml-parameters, the alarms and group the stack made) and the version."""
    trigger = next(
        function
        for name, function in releases.pipeline.registry.functions.items()
        if name.endswith("ModelApprovalTriggerFunction")
    )
    package = releases.version(package_arn)
    registration = ModelRegistration(
        model_package_arn=package_arn,
        model_package_version=package["ModelPackageVersion"],
        model_approval_status=package["ModelApprovalStatus"],
    )
    document = build_deployment_input(
        MlParameters.model_validate(releases.ml_parameters),
        StackResources.from_environment(trigger.environment),
        registration,
        deployment_id,
    )
    arn = client("stepfunctions").start_execution(
        stateMachineArn=releases.deployer, name=document["endpointConfigName"], input=json.dumps(document)
    )["executionArn"]
    return releases.pipeline.follow(arn, timeout_seconds=300)


@pytest.fixture(scope="module")
def redeployed(manual: Releases) -> Releases:
    first = manual.runs["first"].output["modelPackage"]["modelPackageArn"]
    manual.runs["v1 again"] = deploy_by_hand(manual, first, "v1-again")
    serving = manual.serving()
    rejected = manual.runs["fourth"].output["modelPackage"]["modelPackageArn"]
    manual.runs["v4 by hand"] = deploy_by_hand(manual, rejected, "v4-refused")
    manual.after_refusal = (serving, manual.serving())  # type: ignore[attr-defined]
    manual.notifications["v4 by hand"] = manual.pipeline.notifications()
    return manual


def test_an_older_version_is_deployed_again_by_its_arn(redeployed: Releases) -> None:
    again = redeployed.runs["v1 again"]
    assert again.status == "SUCCEEDED", again.cause
    assert redeployed.after_refusal[0] == again.output["endpointConfigName"] == "survival-endpoint-v1-again"  # type: ignore[attr-defined]
    served = client("sagemaker").describe_endpoint_config(
        EndpointConfigName=again.output["endpointConfigName"]
    )
    assert (
        served["ProductionVariants"][0]["ModelName"] == redeployed.runs["first"].output["model"]["modelName"]
    )


def test_a_version_not_approved_is_refused_and_the_endpoint_keeps_serving(redeployed: Releases) -> None:
    refused = redeployed.runs["v4 by hand"]
    assert refused.status == "FAILED"
    assert refused.error == "EndpointDeploymentFailed"
    assert refused.cause.startswith("ModelPackageNotApproved: Model version ")
    before, after = redeployed.after_refusal  # type: ignore[attr-defined]
    assert before == after
    [failed] = [item for item in redeployed.notifications["v4 by hand"] if item["stage"] == "Failed"]
    assert failed["step"] == "DescribeModelPackage"
    endpoint_configs = client("sagemaker").list_endpoint_configs()["EndpointConfigs"]
    assert "survival-endpoint-v4-refused" not in {item["EndpointConfigName"] for item in endpoint_configs}


# --- 6: a faulty version rolled back by its alarm ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rolled_back(redeployed: Releases) -> Releases:
    releases = redeployed
    serving = releases.serving()
    releases.auto_scaling_before = auto_scaling(releases.endpoint)  # type: ignore[attr-defined]
    releases.ml_parameters["modelApproval"] = "Automatic"
    releases.ml_parameters["model"]["hosting"]["instanceType"] = NEW_INSTANCE_TYPE
    releases.pipeline.update_stack({"ParametersRevision": "9"}, ml_parameters=releases.ml_parameters)
    with releases.traffic() as loop:
        execution = releases.start("faulty")
        run_input = json.loads(client("stepfunctions").describe_execution(executionArn=execution)["input"])
        config = run_input["deployment"]["endpointConfigName"]
        releases.pipeline.sagemaker.fail_invocations(config)  # its /ping stays healthy: only the alarm tells
        started = time.monotonic()
        result = releases.pipeline.follow(execution, timeout_seconds=600)
        time.sleep(1)  # answers after the rollback
    releases.runs["faulty"] = result
    releases.notifications["faulty"] = releases.pipeline.notifications()
    releases.faulty = (serving, loop, releases.shifts_since(started))  # type: ignore[attr-defined]
    return releases


def test_a_faulty_version_is_rolled_back_by_the_5xx_alarm_with_only_the_canary_share_failing(
    rolled_back: Releases,
) -> None:
    serving, loop, shifts = rolled_back.faulty  # type: ignore[attr-defined]
    result = rolled_back.runs["faulty"]
    assert result.status == "FAILED"
    assert [share for _, share in shifts] == [CANARY_SHARE], "never more than the canary"
    [(canary_at, _)] = shifts
    [rolled_back_at] = [
        at
        for at, event in rolled_back.reported
        if at >= canary_at and isinstance(event, events.EndpointRolledBack)
    ]
    failures = [index for index, outcome in enumerate(loop.outcomes) if outcome != 200]
    in_canary = [index for index, at in enumerate(loop.started_at) if canary_at <= at < rolled_back_at]
    assert failures, "the faulty model server answered no request"
    # At most the canary's share of the requests sent while it took traffic (to within those in flight at the
    # shift and the rollback), none sent after the rollback.
    assert set(failures) <= set(in_canary) | {min(in_canary) - 1, max(in_canary) + 1}
    assert len(failures) <= math.ceil(CANARY_SHARE * len(in_canary)) + 2, (len(failures), len(in_canary))
    after = [index for index, at in enumerate(loop.started_at) if at > rolled_back_at]
    print(
        f"canary {rolled_back_at - canary_at:.2f} s until the rollback: {len(failures)} of {len(in_canary)} "
        f"requests failed; {len(after)} after the rollback, all answered"
    )
    assert len(after) > 10 and {loop.outcomes[index] for index in after} == {200}
    # The endpoint serves the configuration it served before: version 1's.
    assert rolled_back.serving() == serving == rolled_back.runs["v1 again"].output["endpointConfigName"]


def test_the_rollback_is_notified_naming_the_alarm_and_the_version_is_marked_rolled_back(
    rolled_back: Releases,
) -> None:
    result = rolled_back.runs["faulty"]
    [alarm] = [
        item["AlarmName"]
        for item in client("cloudwatch").describe_alarms()["MetricAlarms"]
        if item["AlarmName"].endswith("-invocation-5xx-errors")
    ]
    [failed] = [item for item in rolled_back.notifications["faulty"] if item["stage"] == "Failed"]
    assert (failed["workflow"], failed["step"], failed["error"]) == (
        "EndpointDeployment",
        "InspectDeployment",
        "EndpointUpdateRolledBack",
    )
    assert f"rollback alarm {alarm} (Threshold Crossed" in failed["cause"]
    # The alarm pages on its own too, as it would with no deployment running.
    [raised] = [item for item in rolled_back.notifications["faulty"] if item["stage"] == "AlarmRaised"]
    assert (raised["alarmName"], raised["endpoint"]) == (alarm, rolled_back.endpoint)
    assert raised["reason"].startswith("Threshold Crossed: 1 datapoint [")
    # Mid-update: the endpoint still names the configuration it served, which it goes back to.
    assert (raised["endpointStatus"], raised["endpointConfigName"]) == (
        "Updating",
        rolled_back.runs["v1 again"].output["endpointConfigName"],
    )
    assert "EndpointUpdateRolledBack" in result.cause  # the parent fails with its child's error
    package = rolled_back.version(
        client("sagemaker").list_model_packages(
            ModelPackageGroupName=rolled_back.version(
                rolled_back.runs["first"].output["modelPackage"]["modelPackageArn"]
            )["ModelPackageGroupName"],
            SortOrder="Descending",
        )["ModelPackageSummaryList"][0]["ModelPackageArn"]
    )
    assert package["ModelPackageVersion"] == 5
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith(f"Rolled back from endpoint {rolled_back.endpoint} (")
    assert alarm in package["ApprovalDescription"]
    assert package["CustomerMetadataProperties"]["deployment"] == "RolledBack"


def test_the_auto_scaling_detached_for_the_new_instance_type_is_restored_as_it_was(
    rolled_back: Releases,
) -> None:
    targets, policies = rolled_back.auto_scaling_before  # type: ignore[attr-defined]
    assert [(target["MinCapacity"], target["MaxCapacity"]) for target in targets] == [(2, INSTANCES)]
    assert [policy["PolicyType"] for policy in policies] == ["TargetTrackingScaling"]
    [deployment] = [
        arn
        for arn in rolled_back.deployments()
        if json.loads(client("stepfunctions").describe_execution(executionArn=arn)["input"])["variant"][
            "InstanceType"
        ]
        == NEW_INSTANCE_TYPE
    ]
    history = client("stepfunctions").get_execution_history(executionArn=deployment, maxResults=1000)[
        "events"
    ]
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in history
        if event["type"].endswith("StateEntered")
    ]
    for step in ("DeregisterScalableTarget", "RegisterDetachedScalableTarget", "PutDetachedScalingPolicy"):
        assert entered.count(step) == 1, (step, entered)
    assert entered.index("DeregisterScalableTarget") < entered.index("UpdateEndpoint")
    assert auto_scaling(rolled_back.endpoint) == (targets, policies)


# --- 7: an approval that cannot be deployed -----------------------------------------------------------------------


def test_an_approval_the_trigger_cannot_deploy_is_notified_and_deploys_nothing(rolled_back: Releases) -> None:
    ssm = client("ssm")
    name = "/h2o-local/ml-parameters"
    stored = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    edited = json.loads(stored) | {"deployment": {"strategy": "Canary"}}  # no canarySize: invalid
    ssm.put_parameter(Name=name, Value=json.dumps(edited), Overwrite=True)
    fourth = rolled_back.runs["fourth"].output["modelPackage"]["modelPackageArn"]
    before = set(rolled_back.deployments())
    try:
        client("sagemaker").update_model_package(ModelPackageArn=fourth, ModelApprovalStatus="Approved")
        refusal = wait_until(
            lambda: [
                item for item in rolled_back.pipeline.notifications() if item.get("modelPackageArn") == fourth
            ],
            "the refusal's notification",
            timeout=10,
        )
    finally:
        ssm.put_parameter(Name=name, Value=stored, Overwrite=True)
    assert "the Canary strategy needs canarySize" in refusal[0]["error"]
    assert set(rolled_back.deployments()) == before


def test_every_statement_serving_releases_was_used_by_these_runs(rolled_back: Releases) -> None:
    releases = {
        key
        for key, statement in statements_of_stack_roles(REGION).items()
        if serves_releases_only(key[0], statement)
    }
    used = {(item.role_name, item.policy, item.index) for item in rolled_back.pipeline.access.used}
    assert len(releases) >= 5  # the approval trigger's four, the inspector's reading of alarm history
    assert releases - used == set()
