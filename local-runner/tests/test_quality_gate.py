"""The quality gate through the local pipeline: real templates, ASL, Lambdas, trainer (train and evaluate, the
latter as a Processing job scoring the deployed model on the run's validation rows) and predictor.

Four runs on one stack, 2 training jobs each, the validation rows always the same: a model trained on 100 rows
is deployed (nothing to beat); one trained on all rows beats it and replaces it; one trained on 100 rows again
does not beat the deployed model and is rejected; one trained on inverted labels is under minObjectiveValue and
is rejected. A rejection leaves the endpoint's config untouched, fails no request, is notified with both
figures and ends the run successfully with deployed false.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from feature_statements import serves_the_quality_gate_only, statements_of_stack_roles
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult
from h2o_sagemaker_local.stack import REGION
from process_watch import no_process_left
from request_loop import RequestLoop

pytestmark = pytest.mark.h2o

MIN_AUC = 0.6
SMALL_TRAINING_ROWS = 100


@pytest.fixture(scope="module")
def options() -> Any:
    return parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, options: Any) -> Iterator[LocalPipeline]:
    ml_parameters, hyperparameters, _ = local_inputs(options)
    ml_parameters["qualityGate"] = {"minObjectiveValue": MIN_AUC}
    with LocalPipeline(tmp_path_factory.mktemp("gate"), seed=11) as local:
        local.deploy(ml_parameters, hyperparameters)
        yield local
    assert no_process_left(local.workdir), "a training, processing job or model server outlived the pipeline"


@pytest.fixture(scope="module")
def training_files(tmp_path_factory: pytest.TempPathFactory, options: Any) -> dict[str, Path]:
    rows = list(csv.DictReader(io.StringIO(options.train.read_text())))
    folder = tmp_path_factory.mktemp("training")

    def written(name: str, chosen: list[dict[str, str]]) -> Path:
        path = folder / name / "train.csv"
        path.parent.mkdir()
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(chosen)
        return path

    inverted = [row | {"Survived": str(1 - int(row["Survived"]))} for row in rows]
    return {
        "all": options.train,
        "small": written("small", rows[:SMALL_TRAINING_ROWS]),
        "inverted": written("inverted", inverted),
    }


def run_on(pipeline: LocalPipeline, options: Any, training: Path, name: str) -> RunResult:
    _, _, manifest = local_inputs(options)
    result = pipeline.run(
        manifest, {"training": training, "validation": options.validation}, f"manifests/{name}/manifest.json"
    )
    assert result.status == "SUCCEEDED", result.cause
    return result


def gate_notification(pipeline: LocalPipeline) -> tuple[dict[str, Any], dict[str, str]]:
    [gate] = [item for item in pipeline.notifications_with_attributes() if item[0]["stage"] == "GateDecision"]
    return gate


def serving_config(endpoint_name: str) -> str:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    return str(sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"])


@dataclass(frozen=True)
class GatedRun:
    result: RunResult
    gate_message: dict[str, Any]
    gate_attributes: dict[str, str]
    processing_jobs: int  # Processing jobs the local SageMaker had run once this run ended


def gated_run(pipeline: LocalPipeline, options: Any, training: Path, name: str) -> GatedRun:
    result = run_on(pipeline, options, training, name)
    message, attributes = gate_notification(pipeline)
    print(f"{name}: {message['decision']}: {message['reason']}")
    return GatedRun(result, message, attributes, len(pipeline.sagemaker.processing_jobs))


@pytest.fixture(scope="module")
def deployed_runs(pipeline: LocalPipeline, options: Any, training_files: dict[str, Path]) -> list[GatedRun]:
    return [
        gated_run(pipeline, options, training_files["small"], "first"),
        gated_run(pipeline, options, training_files["all"], "better"),
    ]


def test_the_first_model_is_deployed_with_nothing_to_beat(pipeline: LocalPipeline, deployed_runs) -> None:
    first = deployed_runs[0]
    assert first.result.output["deployed"] is True
    assert first.gate_attributes["status"] == "ACCEPTED" and first.gate_attributes["stage"] == "GateDecision"
    assert first.gate_message["deployedValue"] is None
    assert first.gate_message["reason"].endswith("passes the gate: no model is deployed yet")
    assert first.processing_jobs == 0, "no deployed model: nothing scored"


def test_a_better_model_beats_the_deployed_one_on_its_validation_rows_and_replaces_it(
    pipeline: LocalPipeline, deployed_runs
) -> None:
    first, better = (run.result for run in deployed_runs)
    message = deployed_runs[1].gate_message
    assert better.output["deployed"] is True and deployed_runs[1].gate_attributes["status"] == "ACCEPTED"
    # The deployed model's score is the one the trainer measured for it: same rows, same metric code.
    assert message["deployedValue"] == pytest.approx(first.output["model"]["objective"]["Value"], abs=1e-9)
    assert (
        message["candidateValue"] == better.output["model"]["objective"]["Value"] > message["deployedValue"]
    )
    assert message["deployedModelName"] == first.output["model"]["modelName"]
    assert (
        serving_config(better.output["endpoint"]["endpointName"])
        == better.output["endpoint"]["endpointConfigName"]
    )
    [job] = pipeline.sagemaker.processing_jobs.values()
    assert job.status == "Completed"


def test_a_model_not_beating_the_deployed_one_is_rejected_without_touching_the_endpoint(
    pipeline: LocalPipeline, options: Any, training_files: dict[str, Path], deployed_runs
) -> None:
    serving = deployed_runs[1].result
    endpoint_name = serving.output["endpoint"]["endpointName"]
    endpoint = pipeline.sagemaker.endpoints[endpoint_name]
    header_and_row = "\n".join(options.validation.read_text().splitlines()[:2]).encode()
    with RequestLoop(endpoint.proxy.url, header_and_row) as traffic:
        rejected = gated_run(pipeline, options, training_files["small"], "worse")

    worse, message, attributes = rejected.result, rejected.gate_message, rejected.gate_attributes
    assert attributes == {
        "workflow": "TuningWithDeployment",
        "stage": "GateDecision",
        "status": "REJECTED",
        "endpoint": endpoint_name,
    }
    deployed_auc = serving.output["model"]["objective"]["Value"]
    candidate_auc = worse.output["model"]["objective"]["Value"]
    assert (message["candidateValue"], message["deployedValue"]) == (
        candidate_auc,
        pytest.approx(deployed_auc),
    )
    assert candidate_auc < deployed_auc
    assert "does not beat the deployed model" in message["reason"]
    assert worse.output["deployed"] is False
    assert worse.output["qualityGate"]["status"] == "REJECTED" and "endpoint" not in worse.output
    assert serving_config(endpoint_name) == serving.output["endpoint"]["endpointConfigName"]
    assert traffic.outcomes and set(traffic.outcomes) == {200}, [
        item for item in traffic.outcomes if item != 200
    ][:3]
    assert len(worse.history) == 2, "the rejected run started no endpoint deployment (parent and tuning only)"


def test_a_model_under_min_objective_value_is_rejected(
    pipeline: LocalPipeline, options: Any, training_files: dict[str, Path], deployed_runs
) -> None:
    serving = deployed_runs[1].result
    endpoint_name = serving.output["endpoint"]["endpointName"]
    rejected = gated_run(pipeline, options, training_files["inverted"], "inverted")
    inverted, message, attributes = rejected.result, rejected.gate_message, rejected.gate_attributes
    assert attributes["status"] == "REJECTED" and inverted.output["deployed"] is False
    assert message["candidateValue"] < MIN_AUC
    assert message["deployedValue"] == pytest.approx(serving.output["model"]["objective"]["Value"])
    assert message["reason"].endswith(f"is below the floor qualityGate.minObjectiveValue {MIN_AUC}")
    assert serving_config(endpoint_name) == serving.output["endpoint"]["endpointConfigName"]


def test_every_statement_serving_the_quality_gate_was_used_by_its_runs(
    pipeline: LocalPipeline, deployed_runs: list[GatedRun]
) -> None:
    gate_statements = {
        key
        for key, statement in statements_of_stack_roles(REGION).items()
        if serves_the_quality_gate_only(key[0], statement)
    }
    used = {(item.role_name, item.policy, item.index) for item in pipeline.access.used}
    # The finder's and judge's statements, the parent's Processing job grants and its invocation of both.
    assert len(gate_statements) >= 5
    assert gate_statements - used == set()
