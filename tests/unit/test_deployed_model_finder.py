"""The deployed model finder against moto: SageMaker's real describe answers, missing endpoints included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from deployed_model_finder import (
    DeployedModel,
    DeployedModelUnreadable,
    FinderRequest,
    InvalidFinderRequest,
    find_deployed_model,
    parse_request,
)
from events import serving_endpoint
from moto import mock_aws

ENDPOINT = "survival-endpoint"
CONFIG = "survival-endpoint-11222100-a3f9"
MODEL = "survival-model-11222100-a3f9"
ARTIFACT = "s3://bucket/model-artifacts/survival-tuning-11222100-a3f9-001-1a2b3c4d/output/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/survival-endpoint-1a2b3c4d/4"


def serve(
    sagemaker: Any, container: dict[str, str], model: str = MODEL, package: str | None = PACKAGE
) -> None:
    # Tagged as the endpoint-deployment run tags it (a configuration made before the registry has no such tag).
    tags = [{"Key": "h2o-sagemaker:model-package", "Value": package}] if package else []
    serving_endpoint(sagemaker, ENDPOINT, CONFIG, model, container, tags)


def test_the_serving_models_artifact_is_found_through_the_endpoints_config(sagemaker: Any) -> None:
    serve(sagemaker, {"Image": IMAGE, "ModelDataUrl": ARTIFACT})
    found = find_deployed_model(parse_request({"endpointName": ENDPOINT}), sagemaker)
    assert found == DeployedModel(
        found=True,
        endpoint_config_name=CONFIG,
        model_name=MODEL,
        model_data_url=ARTIFACT,
        model_package_arn=PACKAGE,
    )
    assert found.model_dump() == {
        "found": True,
        "endpointConfigName": CONFIG,
        "modelName": MODEL,
        "modelDataUrl": ARTIFACT,
        "modelPackageArn": PACKAGE,
    }


def test_a_model_deployed_before_the_registry_has_no_version(sagemaker: Any) -> None:
    serve(sagemaker, {"Image": IMAGE, "ModelDataUrl": ARTIFACT}, package=None)
    found = find_deployed_model(parse_request({"endpointName": ENDPOINT}), sagemaker)
    assert (found.model_name, found.model_package_arn) == (MODEL, None)


def test_no_endpoint_means_nothing_to_beat(sagemaker: Any) -> None:
    found = find_deployed_model(FinderRequest(endpointName=ENDPOINT), sagemaker)
    assert found.model_dump() == {
        "found": False,
        "endpointConfigName": None,
        "modelName": None,
        "modelDataUrl": None,
        "modelPackageArn": None,
    }


def test_a_serving_model_without_an_artifact_is_named(sagemaker: Any) -> None:
    serve(sagemaker, {"Image": IMAGE})
    with pytest.raises(
        DeployedModelUnreadable, match=rf"serves model {MODEL}, whose primary container has no ModelDataUrl"
    ):
        find_deployed_model(FinderRequest(endpointName=ENDPOINT), sagemaker)


def test_a_deleted_serving_model_is_named(sagemaker: Any) -> None:
    serve(sagemaker, {"Image": IMAGE, "ModelDataUrl": ARTIFACT})
    sagemaker.delete_model(ModelName=MODEL)
    with pytest.raises(
        DeployedModelUnreadable, match=rf"model {MODEL}, which no longer exists.*mustBeatDeployedModel"
    ):
        find_deployed_model(FinderRequest(endpointName=ENDPOINT), sagemaker)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, r"endpointName: Field required"),
        ({"endpointName": ""}, r"endpointName: String should have at least 1 character"),
        ({"endpointName": ENDPOINT, "variant": "x"}, r"variant: Extra inputs are not permitted"),
        ([], r"must be a JSON object"),
    ],
)
def test_bad_input_names_the_field(event: Any, message: str) -> None:
    with pytest.raises(InvalidFinderRequest, match=message):
        parse_request(event)
