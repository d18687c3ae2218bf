"""Batch transform jobs in the local SageMaker: a real model of the example, served by the real predictor as
SageMaker runs it in batch transform, through boto3 and moto as a user's CreateTransformJob arrives."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_shapes import SAGEMAKER_API, assert_matches_api_shape
from batch_records import headerless_csv, validation_rows
from botocore.exceptions import ClientError
from h2o_sagemaker_local.cli import area_under_roc
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from h2o_sagemaker_local.transform import assemble, mini_batches
from local_sagemaker import local_sagemaker_behind_moto
from polling import wait_until
from trained_models import TrainedModel, train_models

pytestmark = pytest.mark.h2o

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
BUCKET = "batch-bucket"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagemaker-execution"
MODEL = "titanic"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return train_models(tmp_path_factory.mktemp, {"titanic": "20"})["titanic"]


@pytest.fixture
def sagemaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained_model: TrainedModel
) -> Iterator[LocalSageMaker]:
    """A LocalSageMaker installed behind moto, with the model created as CreateModel makes it."""
    with local_sagemaker_behind_moto(monkeypatch, tmp_path / "work", ACCOUNT_ID, REGION) as local:
        client("s3").create_bucket(Bucket=BUCKET)
        client("s3").put_object(Bucket=BUCKET, Key="models/model.tar.gz", Body=trained_model.archive)
        client("sagemaker").create_model(
            ModelName=MODEL,
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={
                "Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/h2o-gbm-predictor:latest",
                "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz",
            },
        )
        yield local


def transform_request(name: str, **settings: Any) -> dict[str, Any]:
    transform_input = {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/{name}/input/"}
        },
        "ContentType": "text/csv",
        "SplitType": "Line",
    } | settings.pop("TransformInput", {})
    return {
        "TransformJobName": name,
        "ModelName": MODEL,
        "TransformInput": transform_input,
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/batch/{name}/output",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        }
        | settings.pop("TransformOutput", {}),
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    } | settings


def run_job(request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    sagemaker = client("sagemaker")
    sagemaker.create_transform_job(**request)

    def ended() -> dict[str, Any] | None:
        description = sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
        return description if description["TransformJobStatus"] not in ("InProgress", "Stopping") else None

    return wait_until(ended, f"transform job {request['TransformJobName']} ending", timeout)


def output_object(name: str, path: str) -> str:
    return (
        client("s3").get_object(Bucket=BUCKET, Key=f"batch/{name}/output/{path}.out")["Body"].read().decode()
    )


def test_a_transform_job_scores_every_record_to_the_models_validation_auc(
    sagemaker: LocalSageMaker, trained_model: TrainedModel
) -> None:
    metadata = trained_model.metadata
    rows = validation_rows()
    body = headerless_csv(rows, metadata["input_columns"])
    lines = body.splitlines(keepends=True)
    half = len(lines) // 2
    s3 = client("s3")
    s3.put_object(Bucket=BUCKET, Key="batch/csv/input/part-1.csv", Body=b"".join(lines[:half]))
    s3.put_object(Bucket=BUCKET, Key="batch/csv/input/more/part-2.csv", Body=b"".join(lines[half:]))

    description = run_job(transform_request("csv"))

    assert description["TransformJobStatus"] == "Completed", description.get("FailureReason")
    # BatchStrategy, MaxPayloadInMB and MaxConcurrentTransforms left unset: the container's /execution-parameters.
    assert (
        description["BatchStrategy"],
        description["MaxPayloadInMB"],
        description["MaxConcurrentTransforms"],
    ) == (
        "MultiRecord",
        6,
        1,
    )
    assert_matches_api_shape(
        sagemaker.describe_transform_job({"TransformJobName": "csv"}),
        SAGEMAKER_API.operation_model("DescribeTransformJob").output_shape,
    )
    output = output_object("csv", "part-1.csv") + output_object("csv", "more/part-2.csv")
    assert output.count("\n") == len(rows)
    positive = metadata["target_domain"][1]
    scores = [float(record[2]) for record in csv.reader(io.StringIO(output))]
    labels = [row[metadata["target"]] == positive for row in rows]
    assert area_under_roc(labels, scores) == pytest.approx(metadata["metrics"]["validation"]["auc"], abs=1e-9)


def test_gzip_input_one_record_per_request_and_json_lines_give_the_same_predictions(
    sagemaker: LocalSageMaker, trained_model: TrainedModel
) -> None:
    rows = validation_rows()[:40]
    body = headerless_csv(rows, trained_model.metadata["input_columns"])
    s3 = client("s3")
    s3.put_object(Bucket=BUCKET, Key="batch/plain/input/rows.csv", Body=body)
    s3.put_object(Bucket=BUCKET, Key="batch/gzip/input/rows.csv.gz", Body=gzip.compress(body))

    plain = run_job(transform_request("plain"))
    compressed = run_job(
        transform_request(
            "gzip",
            BatchStrategy="SingleRecord",
            MaxConcurrentTransforms=2,
            TransformInput={"CompressionType": "Gzip"},
            TransformOutput={"Accept": "application/jsonlines"},
        )
    )

    assert (plain["TransformJobStatus"], compressed["TransformJobStatus"]) == ("Completed", "Completed")
    from_csv = [record[:3] for record in csv.reader(io.StringIO(output_object("plain", "rows.csv")))]
    from_json_lines = [json.loads(line) for line in output_object("gzip", "rows.csv.gz").splitlines()]
    assert len(from_csv) == len(from_json_lines) == len(rows)
    for (label, probability_0, probability_1), prediction in zip(from_csv, from_json_lines, strict=True):
        assert prediction["label"] == label
        assert prediction["probabilities"] == pytest.approx(
            {"0": float(probability_0), "1": float(probability_1)}
        )


def test_a_request_the_model_refuses_fails_the_job_with_its_answer(sagemaker: LocalSageMaker) -> None:
    client("s3").put_object(Bucket=BUCKET, Key="batch/bad/input/rows.csv", Body=b"Age,Colour\n22,red\n")

    description = run_job(transform_request("bad"))

    assert description["TransformJobStatus"] == "Failed"
    assert "/invocations answered 400" in description["FailureReason"]
    assert "Colour" in description["FailureReason"]
    with pytest.raises(ClientError):
        output_object("bad", "rows.csv")


def test_a_stopped_transform_job_ends_stopped_and_writes_nothing(
    sagemaker: LocalSageMaker, trained_model: TrainedModel
) -> None:
    body = headerless_csv(validation_rows(), trained_model.metadata["input_columns"])
    client("s3").put_object(Bucket=BUCKET, Key="batch/stopped/input/rows.csv", Body=body * 50)
    sagemaker_client = client("sagemaker")
    sagemaker_client.create_transform_job(**transform_request("stopped", BatchStrategy="SingleRecord"))
    job = sagemaker.transform_jobs["stopped"]
    wait_until(lambda: job.settings, "the model server ready and the records being sent", timeout=60)

    sagemaker_client.stop_transform_job(TransformJobName="stopped")

    assert sagemaker_client.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    wait_until(lambda: job.status == "Stopped", "the transform job stopped", timeout=30)
    with pytest.raises(ClientError):
        output_object("stopped", "rows.csv")
    with pytest.raises(ClientError, match="not in progress"):
        sagemaker_client.stop_transform_job(TransformJobName="stopped")


def test_an_input_prefix_without_objects_fails_the_job(sagemaker: LocalSageMaker) -> None:
    description = run_job(transform_request("empty"))
    assert description["TransformJobStatus"] == "Failed"
    assert "No S3 objects found" in description["FailureReason"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"TransformInput": {"SplitType": "RecordIO"}}, "SplitType RecordIO"),
        (
            {
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://b/m"}}
                }
            },
            "S3DataType S3Prefix only",
        ),
        ({"TransformInput": {"SplitType": "None"}, "BatchStrategy": "MultiRecord"}, "SplitType to Line"),
        ({"MaxPayloadInMB": 101}, "greater than 100 MB"),
        ({"MaxPayloadInMB": 60, "MaxConcurrentTransforms": 2}, "cannot exceed 100 MB"),
        ({"DataProcessing": {"JoinSource": "Input"}}, "DataProcessing"),
        ({"ModelName": "missing"}, "Could not find model"),
    ],
)
def test_what_sagemaker_or_the_emulation_refuses_is_refused_at_create_time(
    sagemaker: LocalSageMaker, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ClientError, match=words) as refused:
        client("sagemaker").create_transform_job(**transform_request("refused", **changes))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert sagemaker.transform_jobs == {}


def test_mini_batches_follow_the_split_type_the_strategy_and_the_payload_limit() -> None:
    data = b"a,1\nbb,2\nccc,3"
    assert list(mini_batches(data, "Line", "SingleRecord", 1024)) == [b"a,1\n", b"bb,2\n", b"ccc,3"]
    assert list(mini_batches(data, "Line", "MultiRecord", 9)) == [b"a,1\nbb,2\n", b"ccc,3"]
    assert list(mini_batches(data, "Line", "MultiRecord", None)) == [data]
    assert list(mini_batches(data, "None", "MultiRecord", 1024)) == [data]
    with pytest.raises(Exception, match="larger than MaxPayloadInMB"):
        list(mini_batches(data, "None", "MultiRecord", 8))
    assert assemble([b"1\n2\n", b"3\r\n"], "Line") == b"1\n2\n3\n"
    assert assemble([b"1\n2\n", b"3"], "None") == b"1\n2\n3"
