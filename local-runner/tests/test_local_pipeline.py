"""The whole local pipeline on the examples: real templates, ASL files, Lambdas, trainer and predictor."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow.csv
import pyarrow.parquet
import pytest
from batch_records import headerless_csv, validation_rows
from botocore.exceptions import ClientError
from h2o_sagemaker_local import channel_files, report
from h2o_sagemaker_local.cli import (
    area_under_roc,
    local_inputs,
    parse_arguments,
    save_captured_data,
    score_validation,
)
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.pipeline import DATA_BUCKET, LocalPipeline, PipelineError, RunResult
from h2o_sagemaker_local.stack import REGION
from polling import wait_until
from process_watch import no_process_left, processes_using
from request_loop import RequestLoop

pytestmark = pytest.mark.h2o

MAX_JOBS, MAX_PARALLEL = 4, 2


@pytest.fixture(scope="module")
def options():
    return parse_arguments(["run", "--max-jobs", str(MAX_JOBS), "--max-parallel", str(MAX_PARALLEL)])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, options) -> Iterator[LocalPipeline]:
    ml_parameters, hyperparameters, _ = local_inputs(options)
    with LocalPipeline(tmp_path_factory.mktemp("pipeline"), seed=7) as local:
        local.deploy(ml_parameters, hyperparameters)
        yield local
    assert no_process_left(local.workdir), "a training job or model server outlived the pipeline"


@pytest.fixture(scope="module")
def first_run(pipeline: LocalPipeline, options) -> RunResult:
    return run_examples(pipeline, options, "manifests/first/manifest.json")


def run_examples(pipeline: LocalPipeline, options, manifest_key: str) -> RunResult:
    _, _, manifest = local_inputs(options)
    return pipeline.run(manifest, {"training": options.train, "validation": options.validation}, manifest_key)


def tuning_job(pipeline: LocalPipeline, result: RunResult):
    return pipeline.sagemaker.tuning_jobs[result.output["model"]["hyperParameterTuningJobName"]]


def endpoint_auc(pipeline: LocalPipeline, result: RunResult, validation: Path) -> float:
    endpoint = pipeline.sagemaker.endpoints[result.output["endpoint"]["endpointName"]]
    model_dir = endpoint.workdir / result.output["endpoint"]["endpointConfigName"] / "model"
    metadata = json.loads((model_dir / "model-metadata.json").read_text())
    predictions, auc = score_validation(endpoint.proxy.url, channel_files.csv_bytes(validation), metadata)
    assert len(predictions) == 179
    return auc


def test_a_manifest_upload_tunes_creates_the_best_model_and_deploys_it(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    assert first_run.status == "SUCCEEDED", first_run.cause
    tuning = tuning_job(pipeline, first_run)
    # The example asks for early stopping (trainingJobEarlyStoppingType Auto): a job worse than the median of
    # the earlier ones at one of its scoring rounds is stopped (SIGTERM); the first job never is.
    statuses = [job.status for job in tuning.training_jobs]
    assert len(statuses) == MAX_JOBS and statuses[0] == "Completed", [
        (job.name, job.status, job.failure_reason) for job in tuning.training_jobs
    ]
    stopped = [job for job in tuning.training_jobs if job.status != "Completed"]
    for job in stopped:
        assert job.status == "Stopped" and "stopped by SIGTERM" in job.log_path.read_text(), job.name
    completed = [job for job in tuning.training_jobs if job.status == "Completed"]
    best = max(completed, key=lambda job: job.metrics["validation:auc"])
    model = first_run.output["model"]
    assert model["trainingJobName"] == best.name
    assert model["objective"] == {"MetricName": "validation:auc", "Value": best.metrics["validation:auc"]}
    assert model["modelDataUrl"] == f"s3://{DATA_BUCKET}/model-artifacts/{best.name}/output/model.tar.gz"
    assert first_run.output["endpoint"]["updated"] is False
    # The parent's history and both child executions' (tuning, deployment) are kept.
    assert len(first_run.history) == 3


def test_each_stage_of_the_run_is_notified_once_with_its_filter_attributes(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    endpoint, model = first_run.output["endpoint"], first_run.output["model"]
    received = pipeline.notifications_with_attributes()
    stages = [(message["workflow"], message["stage"]) for message, _ in received]
    assert stages == [
        ("TuningWithDeployment", "RunStarted"),
        ("ModelTuning", "TuningCompleted"),
        ("TuningWithDeployment", "ModelRegistered"),
        ("EndpointDeployment", "Deployed"),
    ]
    statuses = {"RunStarted": "STARTED", "ModelRegistered": "Approved"}
    for message, attributes in received:
        assert attributes == {
            "workflow": message["workflow"],
            "stage": message["stage"],
            "status": statuses.get(message["stage"], "SUCCEEDED"),
            "endpoint": endpoint["endpointName"],
        }
    started, tuned, registered, deployed = (message for message, _ in received)
    assert started["execution"] == first_run.execution_arn
    assert tuned["bestTrainingJobName"] == model["trainingJobName"]
    assert tuned["objective"] == model["objective"] and tuned["hyperParameters"] == model["hyperParameters"]
    version = first_run.output["modelPackage"]
    assert (registered["modelPackageArn"], registered["modelPackageVersion"]) == (
        version["modelPackageArn"],
        version["modelPackageVersion"],
    )
    assert (deployed["endpointConfigName"], deployed["modelName"], deployed["instanceCount"]) == (
        endpoint["endpointConfigName"],
        model["modelName"],
        endpoint["instanceCount"],
    )
    assert deployed["modelPackageArn"] == version["modelPackageArn"]


def test_each_child_execution_names_the_run_that_started_it(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    """AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID links the tuning and deployment executions to the run's in the
    Step Functions console."""
    children = [arn for arn in pipeline.histories(first_run.execution_arn) if arn != first_run.execution_arn]
    assert len(children) == 2
    for arn in children:
        child_input = json.loads(pipeline.sfn.describe_execution(executionArn=arn)["input"])
        assert child_input["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == first_run.execution_arn


def test_no_more_than_max_parallel_training_jobs_ran_at_once(pipeline: LocalPipeline, first_run) -> None:
    jobs = tuning_job(pipeline, first_run).training_jobs
    for job in jobs:  # the most jobs running at once is reached at some job's start
        running = [other for other in jobs if other.start_time <= job.start_time < other.end_time]
        assert len(running) <= MAX_PARALLEL
    assert any(
        other is not job and other.start_time <= job.start_time < other.end_time
        for job in jobs
        for other in jobs
    ), "the jobs ran one at a time"


def test_the_endpoint_scores_the_validation_set_to_the_best_jobs_validation_auc(
    pipeline: LocalPipeline, first_run: RunResult, options
) -> None:
    assert endpoint_auc(pipeline, first_run, options.validation) == pytest.approx(
        first_run.output["model"]["objective"]["Value"], abs=1e-9
    )
    # And through the SageMaker runtime API, as a client on AWS calls it.
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    response = runtime.invoke_endpoint(
        EndpointName=first_run.output["endpoint"]["endpointName"],
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"Pclass": 1, "Sex": "female", "Age": 30, "Fare": 80.0, "Embarked": "C"}),
    )
    [prediction] = json.loads(response["Body"].read())["predictions"]
    assert prediction["label"] == "1"


def charted_metrics(body: dict) -> list[tuple[str, str, dict[str, str]]]:
    """Each metric a dashboard's metric widgets chart: namespace, name and dimensions (options left out)."""
    charted = []
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"] if widget["type"] == "metric" else []:
            namespace, name, *rest = [part for part in metric if not isinstance(part, dict)]
            charted.append((namespace, name, dict(zip(rest[::2], rest[1::2], strict=True))))
    return charted


def test_the_dashboard_charts_the_metrics_the_endpoint_publishes_and_its_rollback_alarms(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    """The local SageMaker publishes AWS/SageMaker's invocation metrics as SageMaker does; the instance metrics
    (/aws/sagemaker/Endpoints) and Step Functions' are not emulated, so only the first are checked for data."""
    assert pipeline.stack is not None
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    body = json.loads(
        cloudwatch.get_dashboard(DashboardName=pipeline.stack.outputs["DashboardName"])["DashboardBody"]
    )
    endpoint = first_run.output["endpoint"]["endpointName"]
    invocation_metrics = [item for item in charted_metrics(body) if item[0] == "AWS/SageMaker"]
    assert {name for _, name, _ in invocation_metrics} == {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
    }
    for namespace, name, dimensions in invocation_metrics:
        assert dimensions == {"EndpointName": endpoint, "VariantName": "AllTraffic"}
        query = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
        }
        wait_until(
            functools.partial(lambda query: cloudwatch.list_metrics(**query)["Metrics"], query),
            f"{name} published for {endpoint}",
            timeout=10,
        )
    [alarm_widget] = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    alarms = cloudwatch.describe_alarms(AlarmNames=pipeline.stack.outputs["RollbackAlarmNames"].split(","))
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        alarm["AlarmArn"] for alarm in alarms["MetricAlarms"]
    )


def test_invoke_endpoint_refuses_a_body_over_6_mb_and_an_unknown_endpoint_as_sagemaker_does(
    first_run: RunResult,
) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(
            EndpointName=first_run.output["endpoint"]["endpointName"],
            ContentType="text/csv",
            Body=b"x" * (6 * 1024 * 1024 + 1),
        )
    assert (
        refused.value.response["Error"]["Code"] == "ValidationError"
    )  # the runtime's error, per its API model
    assert "Member must have length less than or equal to 6291456" in str(refused.value)
    with pytest.raises(ClientError, match="Member must have length less than or equal to 64"):
        runtime.invoke_endpoint(
            EndpointName=first_run.output["endpoint"]["endpointName"],
            ContentType="text/csv",
            Body=b"Pclass\n1\n",
            InferenceId="x" * 65,
        )
    with pytest.raises(
        ClientError,
        match=r"Value 'text/csv;q{1020}' at 'accept' failed to satisfy constraint: Member must have length less "
        r"than or equal to 1024",
    ):
        runtime.invoke_endpoint(
            EndpointName=first_run.output["endpoint"]["endpointName"],
            ContentType="text/csv",
            Accept="text/csv;" + "q" * 1020,
            Body=b"Pclass\n1\n",
        )
    with pytest.raises(ClientError, match=r"Value at 'customAttributes' .* less than or equal to 1024"):
        runtime.invoke_endpoint(
            EndpointName=first_run.output["endpoint"]["endpointName"],
            ContentType="text/csv",
            Body=b"Pclass\n1\n",
            CustomAttributes="x" * 1025,
        )
    with pytest.raises(ClientError, match="Endpoint no-such-endpoint of account 123456789012 not found"):
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=b"a\n1\n")


@pytest.mark.parametrize(
    ("member", "value", "refusal"),
    [
        (
            "TargetVariant",
            "Canary",
            "TargetVariant Canary is not a production variant of endpoint .* \\(AllTraffic\\)",
        ),
        ("TargetModel", "other.tar.gz", "TargetModel is for a multi-model endpoint"),
        ("TargetContainerHostname", "second", "TargetContainerHostname is for a multi-container endpoint"),
        (
            "InferenceComponentName",
            "component",
            "InferenceComponentName is for an endpoint of inference components",
        ),
        ("SessionId", "NEW_SESSION", "SessionId is for an endpoint with stateful sessions"),
        (
            "EnableExplanations",
            "`true`",
            "EnableExplanations is for an endpoint with a ClarifyExplainerConfig",
        ),
    ],
)
def test_invoke_endpoint_refuses_members_for_endpoints_this_stack_does_not_make(
    first_run: RunResult, member: str, value: str, refusal: str
) -> None:
    """Answering as if they had been honoured would pass locally what fails, or does something else, on AWS."""
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    endpoint = first_run.output["endpoint"]["endpointName"]
    with pytest.raises(ClientError, match=refusal) as refused:
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=b"Pclass\n1\n", **{member: value}
        )
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    served = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=b"Pclass\n1\n", TargetVariant="AllTraffic"
    )
    assert served["InvokedProductionVariant"] == "AllTraffic"


def test_custom_attributes_reach_the_model_server_which_explains_its_predictions(
    first_run: RunResult,
) -> None:
    """InvokeEndpoint's CustomAttributes go to the container as SageMaker passes them: contributions=true adds
    each row's feature contributions; the model server's 400 for a bad value comes back as ModelError."""
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    endpoint = first_run.output["endpoint"]["endpointName"]
    row = b"Pclass,Sex,Age,Fare,Embarked\n3,male,22,7.25,S\n"
    explained = json.loads(
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=row, CustomAttributes="contributions=true"
        )["Body"].read()
    )["predictions"][0]
    plain = json.loads(
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row)["Body"].read()
    )
    assert explained.pop("contributions")["Sex"] < 0  # being male lowered the survival odds
    assert explained == plain["predictions"][0]
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=row, CustomAttributes="contributions=maybe"
        )
    assert refused.value.response["Error"]["Code"] == "ModelError"
    assert "contributions must be true or false" in str(refused.value)


def test_every_variable_a_function_call_sets_stays_set_between_calls(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    """Other threads copy os.environ (botocore, for each credential resolution) while functions run: a variable a
    call removed afterwards could vanish mid-copy (KeyError 'AWS_SESSION_TOKEN' failed a run's notification)."""
    assert first_run.status == "SUCCEEDED"
    names = {name for function in pipeline.registry.functions.values() for name in function.environment}
    names |= set(enforcement.ROLE_CREDENTIAL_VARIABLES)
    assert sorted(name for name in names if name not in os.environ) == []
    assert os.environ["AWS_SESSION_TOKEN"] == "", "the runner's own clients sign without a session token"


def test_the_endpoint_is_registered_for_auto_scaling(first_run: RunResult) -> None:
    endpoint = first_run.output["endpoint"]["endpointName"]
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    [target] = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{endpoint}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    [policy] = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    metric = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


def captured_records(endpoint: str) -> list[dict]:
    s3 = boto3.client("s3", region_name=REGION)
    listing = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"data-capture/{endpoint}/AllTraffic/")
    records = []
    for item in listing.get("Contents", []):
        assert re.fullmatch(
            rf"data-capture/{endpoint}/AllTraffic/\d{{4}}/\d\d/\d\d/\d\d/\d\d-\d\d-\d{{3}}-[0-9a-f-]{{36}}\.jsonl",
            item["Key"],
        ), item["Key"]
        body = s3.get_object(Bucket=DATA_BUCKET, Key=item["Key"])["Body"].read().decode()
        records += [json.loads(line) for line in body.splitlines()]
    return records


def test_the_endpoint_captures_its_requests_and_responses_in_sagemakers_format(first_run: RunResult) -> None:
    """The example's dataCapture: every request and its answer, as JSON Lines under data-capture/ in the data
    bucket, written as the model's execution role; CSV and JSON kept as text."""
    endpoint = first_run.output["endpoint"]["endpointName"]
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    described = sagemaker.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]
    assert described == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{DATA_BUCKET}/data-capture/",
    }
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    sent = {
        "text/csv": "Pclass,Sex,Age,Fare,Embarked\n3,male,61.5,7.75,Q\n",
        "application/json": json.dumps(
            {"Pclass": 2, "Sex": "female", "Age": 61.5, "Fare": 13.0, "Embarked": "S"}
        ),
    }
    answers = {}
    for content_type, body in sent.items():
        # InferenceId (optional) is kept with the record: Model Monitor joins ground truth labels on it.
        identified = {"InferenceId": "passenger-713"} if content_type == "text/csv" else {}
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            ContentType=content_type,
            Accept="text/csv",
            Body=body.encode(),
            **identified,
        )
        answers[content_type] = (response["Body"].read().decode(), response["ContentType"])

    def ours() -> list[dict]:
        inputs = set(sent.values())
        return [r for r in captured_records(endpoint) if r["captureData"]["endpointInput"]["data"] in inputs]

    records = wait_until(lambda: len(ours()) == 2 and ours(), "the two requests captured", timeout=30)
    for record in records:
        data = record["captureData"]
        content_type = data["endpointInput"]["observedContentType"]
        assert data["endpointInput"] == {
            "observedContentType": content_type,
            "mode": "INPUT",
            "data": sent[content_type],
            "encoding": "CSV" if content_type == "text/csv" else "JSON",
        }
        answer, answer_type = answers[content_type]
        assert data["endpointOutput"] == {
            "observedContentType": answer_type,
            "mode": "OUTPUT",
            "data": answer,
            "encoding": "CSV",
        }
        assert record["eventVersion"] == "0"
        assert record["eventMetadata"].get("inferenceId") == (
            "passenger-713" if content_type == "text/csv" else None
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventMetadata"]["inferenceTime"])
    assert len({record["eventMetadata"]["eventId"] for record in records}) == 2


def test_the_run_copies_the_captured_data_into_its_work_folder(
    pipeline: LocalPipeline, first_run: RunResult, tmp_path: Path
) -> None:
    """The local S3 ends with the run: the summary copies what the endpoint captured, written at once."""
    endpoint = first_run.output["endpoint"]["endpointName"]
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"Pclass,Sex\n1,female\n")

    line = save_captured_data(pipeline, endpoint, tmp_path)

    in_s3 = captured_records(endpoint)
    copied = [
        json.loads(text) for path in tmp_path.rglob("*.jsonl") for text in path.read_text().splitlines()
    ]
    assert sorted(map(json.dumps, copied)) == sorted(map(json.dumps, in_s3))
    assert "Pclass,Sex\n1,female\n" in [record["captureData"]["endpointInput"]["data"] for record in copied]
    assert line == (
        f"{len(in_s3)} request(s) in s3://{DATA_BUCKET}/data-capture/{endpoint}/, copied to "
        f"{tmp_path / 's3' / DATA_BUCKET / 'data-capture' / endpoint}"
    )
    # The run report reads the copy.
    started = first_run.history[first_run.execution_arn][0]["executionStartedEventDetails"]
    captured = report.captured_data(tmp_path, json.loads(started["input"])["deployment"])
    assert captured is not None and captured.requests_by_variant == {"AllTraffic": len(in_s3)}


def test_the_batch_transform_workflow_scores_with_the_model_the_endpoint_serves(
    pipeline: LocalPipeline, first_run: RunResult, options
) -> None:
    endpoint, model = first_run.output["endpoint"], first_run.output["model"]
    model_dir = (
        pipeline.sagemaker.endpoints[endpoint["endpointName"]].workdir
        / endpoint["endpointConfigName"]
        / "model"
    )
    metadata = json.loads((model_dir / "model-metadata.json").read_text())
    rows = validation_rows(options.validation)
    records = headerless_csv(rows, metadata["input_columns"])
    pipeline.s3.put_object(Bucket=DATA_BUCKET, Key="scoring/input/validation.csv", Body=records)
    pipeline.notifications_with_attributes()  # the run's, checked above
    document = {
        "transformJobName": "survival-scoring-1",
        "endpointName": endpoint["endpointName"],
        "inputS3Uri": f"s3://{DATA_BUCKET}/scoring/input/",
        "outputS3Uri": f"s3://{DATA_BUCKET}/scoring/output/",
    }

    result = pipeline.batch_transform(document)

    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output == document | {
        "modelName": model["modelName"],
        "transformJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:transform-job/survival-scoring-1",
    }
    output = pipeline.s3.get_object(Bucket=DATA_BUCKET, Key="scoring/output/validation.csv.out")[
        "Body"
    ].read()
    scores = [float(record[2]) for record in csv.reader(io.StringIO(output.decode()))]
    labels = [row[metadata["target"]] == metadata["target_domain"][1] for row in rows]
    assert area_under_roc(labels, scores) == pytest.approx(model["objective"]["Value"], abs=1e-9)
    # The settings the input left out: CSV in and out, one record a line, one ml.c5.xlarge.
    job = pipeline.sagemaker.describe_transform_job({"TransformJobName": "survival-scoring-1"})
    assert (job["TransformInput"]["SplitType"], job["TransformOutput"]["Accept"]) == ("Line", "text/csv")
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1}
    [(message, attributes)] = pipeline.notifications_with_attributes()
    assert (message["stage"], message["modelName"], message["outputS3Uri"]) == (
        "TransformCompleted",
        model["modelName"],
        document["outputS3Uri"],
    )
    assert attributes == {
        "workflow": "BatchTransform",
        "stage": "TransformCompleted",
        "status": "SUCCEEDED",
        "endpoint": endpoint["endpointName"],
    }
    explained = pipeline.batch_transform(
        document
        | {
            "transformJobName": "survival-scoring-2",
            "outputS3Uri": f"s3://{DATA_BUCKET}/explained/",
            "contributions": True,
        }
    )
    assert explained.status == "SUCCEEDED", explained.cause
    lines = list(
        csv.reader(
            io.StringIO(
                pipeline.s3.get_object(Bucket=DATA_BUCKET, Key="explained/validation.csv.out")["Body"]
                .read()
                .decode()
            )
        )
    )
    # Each line: the label, the two probabilities, a contribution per feature and BiasTerm, the unknown levels.
    assert {len(line) for line in lines} == {3 + len(metadata["features"]) + 1 + 1}
    assert [float(line[2]) for line in lines] == scores
    job = pipeline.sagemaker.describe_transform_job({"TransformJobName": "survival-scoring-2"})
    assert job["Environment"] == {"H2O_GBM_PREDICTOR_CONTRIBUTIONS": "true"}


def test_a_batch_transform_without_its_endpoint_fails_notified_and_bad_locations_fail_at_once(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    pipeline.notifications_with_attributes()
    document = {
        "transformJobName": "no-endpoint-scoring",
        "endpointName": "no-such-endpoint",
        "inputS3Uri": f"s3://{DATA_BUCKET}/scoring/input/",
        "outputS3Uri": f"s3://{DATA_BUCKET}/scoring/missing/",
    }

    missing = pipeline.batch_transform(document)

    assert (missing.status, missing.error) == ("FAILED", "BatchTransformFailed")
    assert "Could not find endpoint" in (missing.cause or "")
    [(message, _)] = pipeline.notifications_with_attributes()
    assert (message["stage"], message["step"]) == ("Failed", "FindServingConfig")
    nowhere = pipeline.batch_transform({key: document[key] for key in ("endpointName", "inputS3Uri")})
    assert (nowhere.status, nowhere.error) == ("FAILED", "InvalidBatchTransformInput")
    # The model's execution role may read and write the data bucket only.
    elsewhere = pipeline.batch_transform(document | {"outputS3Uri": "s3://another-bucket/scoring/"})
    assert (elsewhere.status, elsewhere.error) == ("FAILED", "InvalidBatchTransformInput")
    assert f"both URIs in s3://{DATA_BUCKET}/" in (elsewhere.cause or "")
    unclear = pipeline.batch_transform(document | {"contributions": "yes"})
    assert (unclear.status, unclear.error) == ("FAILED", "InvalidBatchTransformInput")
    assert pipeline.notifications_with_attributes() == []


def test_a_second_run_updates_the_endpoint_without_failing_a_request(
    pipeline: LocalPipeline, first_run: RunResult, options
) -> None:
    endpoint = pipeline.sagemaker.endpoints[first_run.output["endpoint"]["endpointName"]]
    header_and_row = "\n".join(options.validation.read_text().splitlines()[:2]).encode()
    with RequestLoop(endpoint.proxy.url, header_and_row) as traffic:
        second_run = run_examples(pipeline, options, "manifests/second/manifest.json")

    assert second_run.status == "SUCCEEDED", second_run.cause
    assert second_run.output["endpoint"]["updated"] is True
    assert second_run.output["endpoint"]["endpointName"] == first_run.output["endpoint"]["endpointName"]
    assert (
        second_run.output["endpoint"]["endpointConfigName"]
        != first_run.output["endpoint"]["endpointConfigName"]
    )
    assert traffic.outcomes and set(traffic.outcomes) == {200}, [
        item for item in traffic.outcomes if item != 200
    ][:3]
    assert endpoint_auc(pipeline, second_run, options.validation) == pytest.approx(
        second_run.output["model"]["objective"]["Value"], abs=1e-9
    )


def test_parquet_channels_train_and_the_endpoint_scores_parquet_rows_to_the_same_auc(
    pipeline: LocalPipeline, first_run: RunResult, options, tmp_path: Path
) -> None:
    """Both channels Parquet files (ContentType application/x-parquet): the trainer reads them, and the endpoint,
    given the validation rows as the CSV `run` scores with, agrees with the validation AUC H2O computed on the
    Parquet frame."""
    _, _, manifest = local_inputs(options)
    files = {}
    for channel in manifest["channels"]:
        name = channel["channelName"]
        files[name] = tmp_path / f"{name}.parquet"
        source = options.train if name == "training" else options.validation
        pyarrow.parquet.write_table(pyarrow.csv.read_csv(source), files[name])
        channel["contentType"] = "application/x-parquet"
        channel["s3DataSource"]["S3Uri"] = channel["s3DataSource"]["S3Uri"].replace(".csv", ".parquet")

    result = pipeline.run(manifest, files, "manifests/parquet/manifest.json")

    assert result.status == "SUCCEEDED", result.cause
    [data_config] = {
        json.dumps(job.request["InputDataConfig"], sort_keys=True)
        for job in tuning_job(pipeline, result).training_jobs
    }
    assert {channel["ContentType"] for channel in json.loads(data_config)} == {"application/x-parquet"}
    assert endpoint_auc(pipeline, result, files["validation"]) == pytest.approx(
        result.output["model"]["objective"]["Value"], abs=1e-9
    )


def test_a_manifest_without_the_training_channel_is_rejected_before_any_tuning_job(
    pipeline: LocalPipeline, first_run: RunResult, options
) -> None:
    _, _, manifest = local_inputs(options)
    manifest["channels"] = [item for item in manifest["channels"] if item["channelName"] != "training"]
    tuning_jobs_before = set(pipeline.sagemaker.tuning_jobs)

    with pytest.raises(PipelineError, match="training"):
        pipeline.run(manifest, {"validation": options.validation}, "manifests/no-training/manifest.json")

    assert set(pipeline.sagemaker.tuning_jobs) == tuning_jobs_before


def test_ctrl_c_stops_the_run_and_leaves_no_process(tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("h2o-sagemaker-local")),
        "run", "--max-jobs", "2", "--max-parallel", "2", "--workdir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "training-jobs").glob("*/training.log")) or not processes_using(tmp_path):
        assert time.monotonic() < deadline and process.poll() is None, "no training job started"
        time.sleep(0.2)

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    assert "Stopping" in output and "Traceback" not in output
    assert no_process_left(tmp_path), processes_using(tmp_path)
