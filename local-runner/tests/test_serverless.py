"""A serverless endpoint end to end: ml-parameters' model.hosting.serverlessConfig deploys the tuned model to a
serverless endpoint (no instances, no auto scaling, a model without network isolation), a second run updates it
with SageMaker's default update, and a switch to instances is refused naming what to do, the endpoint still
serving."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult
from h2o_sagemaker_local.stack import REGION
from process_watch import no_process_left

pytestmark = pytest.mark.h2o

SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
AUTO_SCALING_KEYS = (
    "autoscalingMinCapacity",
    "autoscalingMaxCapacity",
    "targetTrackingScalingPolicyConfiguration",
)


@dataclass
class Runs:
    pipeline: LocalPipeline
    results: dict[str, RunResult] = field(default_factory=dict)
    notifications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    options = parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    serverless = {key: value for key, value in ml_parameters.items() if key not in AUTO_SCALING_KEYS}
    serverless["model"] = serverless["model"] | {"hosting": {"serverlessConfig": SERVERLESS}}
    data = {"training": options.train, "validation": options.validation}
    with LocalPipeline(tmp_path_factory.mktemp("serverless"), seed=3) as pipeline:
        pipeline.deploy(serverless, hyperparameters)
        runs = Runs(pipeline)
        for name in ("first", "second"):
            runs.results[name] = pipeline.run(
                copy.deepcopy(manifest), data, f"manifests/{name}/manifest.json"
            )
            runs.notifications[name] = pipeline.notifications()
        pipeline.update_stack({"ParametersRevision": "2"}, ml_parameters=ml_parameters)  # instances again
        runs.results["instances"] = pipeline.run(
            copy.deepcopy(manifest), data, "manifests/instances/manifest.json"
        )
        runs.notifications["instances"] = pipeline.notifications()
        yield runs
    assert no_process_left(pipeline.workdir), "a training job or model server outlived the pipeline"


def test_the_tuned_model_is_served_by_a_serverless_endpoint_without_instances_or_auto_scaling(
    runs: Runs,
) -> None:
    result = runs.results["first"]
    assert result.status == "SUCCEEDED", result.cause
    endpoint = result.output["endpoint"]
    assert endpoint["instanceCount"] is None
    [variant] = client("sagemaker").describe_endpoint(EndpointName=endpoint["endpointName"])[
        "ProductionVariants"
    ]
    assert variant["CurrentServerlessConfig"] == variant["DesiredServerlessConfig"] == SERVERLESS
    assert "CurrentInstanceCount" not in variant
    config = client("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["endpointConfigName"])
    [configured] = config["ProductionVariants"]
    assert configured["ServerlessConfig"] == SERVERLESS and "InstanceType" not in configured
    targets = client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    assert targets["ScalableTargets"] == []
    # Serverless Inference runs no network-isolated model (its feature exclusions); training stays isolated.
    assert runs.pipeline.sagemaker.network_isolated_models[configured["ModelName"]] is False
    [deployed] = [item for item in runs.notifications["first"] if item["stage"] == "Deployed"]
    assert (deployed["instanceCount"], deployed["updated"]) == (None, False)


def test_the_endpoint_answers_as_an_instance_based_one_does(runs: Runs) -> None:
    response = client("sagemaker-runtime").invoke_endpoint(
        EndpointName=runs.results["first"].output["endpoint"]["endpointName"],
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"Pclass": 1, "Sex": "female", "Age": 30, "Fare": 80.0, "Embarked": "C"}),
    )
    [prediction] = json.loads(response["Body"].read())["predictions"]
    assert prediction["label"] == "1"


def test_a_second_run_updates_the_serverless_endpoint(runs: Runs) -> None:
    result = runs.results["second"]
    assert result.status == "SUCCEEDED", result.cause
    endpoint = result.output["endpoint"]
    assert endpoint["updated"] is True
    described = client("sagemaker").describe_endpoint(EndpointName=endpoint["endpointName"])
    assert described["EndpointConfigName"] == endpoint["endpointConfigName"]
    assert described["EndpointConfigName"] != runs.results["first"].output["endpoint"]["endpointConfigName"]
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"] == SERVERLESS


def test_switching_the_endpoint_to_instances_is_refused_naming_what_to_do_and_it_keeps_serving(
    runs: Runs,
) -> None:
    result = runs.results["instances"]
    assert result.status == "FAILED"
    [failed] = [item for item in runs.notifications["instances"] if item["stage"] == "Failed"]
    assert (failed["workflow"], failed["step"], failed["error"]) == (
        "EndpointDeployment",
        "InspectEndpoint",
        "EndpointKindChanged",
    )
    assert "is serverless and this deployment is instance-based" in failed["cause"]
    assert "delete-endpoint --endpoint-name survival-endpoint" in failed["cause"]
    served = runs.results["second"].output["endpoint"]["endpointConfigName"]
    described = client("sagemaker").describe_endpoint(EndpointName="survival-endpoint")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", served)
