"""Deleting the stack with OnStackDelete=Delete, after a real run (real trainer and predictor): what the stack's
runs made goes, a second stack's endpoint in the same account and region stays and keeps answering."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.hosting import LocalEndpoint
from h2o_sagemaker_local.pipeline import LocalPipeline
from h2o_sagemaker_local.stack import REGION
from process_watch import no_process_left

pytestmark = pytest.mark.h2o

OTHER = "other-stack-endpoint"


def wait_in_service(endpoint: LocalEndpoint, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while endpoint.status != "InService":
        assert endpoint.status == "Creating" and time.monotonic() < deadline, endpoint.failure_reason
        time.sleep(0.5)


@pytest.fixture
def pipeline(tmp_path) -> Iterator[LocalPipeline]:
    with LocalPipeline(tmp_path / "pipeline", seed=7) as local:
        yield local
    assert no_process_left(local.workdir), "a training job or model server outlived the pipeline"


def test_delete_removes_exactly_what_this_stacks_runs_made(pipeline: LocalPipeline) -> None:
    options = parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    pipeline.deploy(ml_parameters, hyperparameters)
    pipeline.update_stack({"OnStackDelete": "Delete"})
    result = pipeline.run(
        manifest, {"training": options.train, "validation": options.validation}, "manifests/one/manifest.json"
    )
    assert result.status == "SUCCEEDED", result.error
    ours = result.output["endpoint"]
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    # A second stack's deployment of the same artifact, tagged with its own name.
    model = sagemaker.describe_model(ModelName=result.output["model"]["modelName"])
    other_tags = [{"Key": "h2o-sagemaker:stack", "Value": "other-stack"}]
    sagemaker.create_model(
        ModelName=OTHER,
        ExecutionRoleArn=model["ExecutionRoleArn"],
        PrimaryContainer=model["PrimaryContainer"],
        Tags=other_tags,
    )
    variant = {"VariantName": "AllTraffic", "ModelName": OTHER, "InstanceType": "ml.m5.large"}
    sagemaker.create_endpoint_config(
        EndpointConfigName=OTHER, ProductionVariants=[variant | {"InitialInstanceCount": 1}], Tags=other_tags
    )
    sagemaker.create_endpoint(EndpointName=OTHER, EndpointConfigName=OTHER, Tags=other_tags)
    wait_in_service(pipeline.sagemaker.endpoints[OTHER])
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{OTHER}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    our_server = pipeline.sagemaker.endpoints[ours["endpointName"]].server
    assert our_server is not None and our_server.is_alive()

    pipeline.delete_stack()

    assert sorted(pipeline.sagemaker.endpoints) == [OTHER]
    assert not our_server.is_alive(), "the deleted endpoint's model server still runs"
    assert [item["EndpointConfigName"] for item in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [
        OTHER
    ]
    assert [item["ModelName"] for item in sagemaker.list_models()["Models"]] == [OTHER]
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [target["ResourceId"] for target in targets] == [f"endpoint/{OTHER}/variant/AllTraffic"]
    assert autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert not boto3.client("stepfunctions", region_name=REGION).list_state_machines()["stateMachines"]
    # The other stack's endpoint still serves.
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    response = runtime.invoke_endpoint(
        EndpointName=OTHER,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"Pclass": 1, "Sex": "female", "Age": 30, "Fare": 80.0, "Embarked": "C"}),
    )
    [prediction] = json.loads(response["Body"].read())["predictions"]
    assert prediction
