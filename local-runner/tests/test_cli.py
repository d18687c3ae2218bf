"""The command's input handling and summary arithmetic, without running the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from h2o_sagemaker_local.cli import area_under_roc, local_inputs, main, parse_arguments, tuned_names
from h2o_sagemaker_local.pipeline import DATA_BUCKET, PipelineError, ml_parameters_for_local_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_defaults_are_the_examples_filled_for_the_local_bucket() -> None:
    ml_parameters, hyperparameters, manifest = local_inputs(parse_arguments(["run"]))

    assert "<" not in json.dumps(ml_parameters) + json.dumps(manifest)
    assert {channel["s3DataSource"]["S3Uri"].split("/")[2] for channel in manifest["channels"]} == {
        DATA_BUCKET
    }
    assert hyperparameters == json.loads((EXAMPLES / "hyperparameters.json").read_text())
    assert (ml_parameters["maxNumberOfTrainingJobs"], ml_parameters["maxParallelTrainingJobs"]) == (10, 2)
    assert tuned_names(hyperparameters) >= {"ntrees", "learn_rate"}


def test_the_job_budget_options_override_ml_parameters() -> None:
    document = {"maxNumberOfTrainingJobs": 10, "maxParallelTrainingJobs": 2}

    local = ml_parameters_for_local_run(document, max_jobs=4, max_parallel=1)

    assert (local["maxNumberOfTrainingJobs"], local["maxParallelTrainingJobs"]) == (4, 1)
    assert local["endpointPollIntervalSeconds"] == 1
    assert document == {"maxNumberOfTrainingJobs": 10, "maxParallelTrainingJobs": 2}


@pytest.mark.parametrize("option", ["--max-jobs", "--max-parallel"])
def test_a_job_budget_below_one_is_refused(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["run", option, "0"])

    assert exit_info.value.code == 2
    assert f"{option} must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ('{"channels": [', "is not valid JSON")],
)
def test_a_bad_manifest_file_is_a_one_line_error_before_any_work(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "manifest.json"
    if content is not None:
        manifest.write_text(content)
    workdir = tmp_path / "work"

    code = main(["run", "--manifest", str(manifest), "--workdir", str(workdir)])

    output = capsys.readouterr().out
    assert code == 1
    assert output.splitlines()[-1] == f"error: manifest file {manifest} {message}" + (
        ": Expecting value: line 1 column 15 (char 14)" if content else ""
    )
    assert "Traceback" not in output
    assert not workdir.exists()


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert area_under_roc([True, False, True, False], [0.9, 0.1, 0.4, 0.4]) == pytest.approx(0.875)
    assert area_under_roc([True, False], [0.2, 0.8]) == 0.0
    with pytest.raises(PipelineError, match="both classes"):
        area_under_roc([True, True], [0.2, 0.8])
