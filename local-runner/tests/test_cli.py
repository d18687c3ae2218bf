"""The command's input handling and summary arithmetic, without running the pipeline."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv
import pyarrow.parquet
import pytest
from h2o_sagemaker_local import channel_files
from h2o_sagemaker_local.account import DATA_BUCKET
from h2o_sagemaker_local.cli import (
    area_under_roc,
    invocation_bodies,
    local_inputs,
    main,
    parse_arguments,
    tuned_names,
)
from h2o_sagemaker_local.errors import PipelineError
from h2o_sagemaker_local.pipeline import ml_parameters_for_local_run
from h2o_sagemaker_local.report import REPORT_FILE
from hypothesis import given
from hypothesis import strategies as st

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
    assert "trainingJobEarlyStoppingType" not in local
    assert document == {"maxNumberOfTrainingJobs": 10, "maxParallelTrainingJobs": 2}
    stopping = ml_parameters_for_local_run(document, None, None, early_stopping="Off")
    assert stopping["trainingJobEarlyStoppingType"] == "Off"
    assert (
        local_inputs(parse_arguments(["run", "--early-stopping", "Off"]))[0]["trainingJobEarlyStoppingType"]
        == "Off"
    )


def run_command(*options: str) -> tuple[int, str, str]:
    """``h2o-sagemaker-local run <options>``: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["run", *options])
        except SystemExit as exit_info:
            code = int(exit_info.code or 0)
    return code, out.getvalue(), err.getvalue()


def unreadable(tmp_path: Path) -> Path:
    path = tmp_path / "locked.json"
    path.write_text("{}")
    path.chmod(0)
    return path


def parquet_manifest() -> dict:
    """The example manifest with a Parquet training channel."""
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    manifest["channels"][0] |= {"contentType": "application/x-parquet"}
    assert manifest["channels"][0]["channelName"] == "training"
    return manifest


def training_only_manifest() -> dict:
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    manifest["channels"] = [item for item in manifest["channels"] if item["channelName"] == "training"]
    return manifest


def test_without_a_validation_channel_nothing_is_scored_through_the_endpoint(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(training_only_manifest()))

    assert parse_arguments(["run", "--manifest", str(manifest)]).validation is None
    assert parse_arguments(["run"]).validation == EXAMPLES / "validation.csv"


def test_channel_files_may_be_gzip_compressed_csv_or_parquet(tmp_path: Path) -> None:
    """The formats the trainer reads; the validation set is scored through the endpoint as CSV."""
    train, validation, manifest = (
        tmp_path / "train.parquet",
        tmp_path / "v.csv.gz",
        tmp_path / "manifest.json",
    )
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(EXAMPLES / "train.csv"), train)
    validation.write_bytes(gzip.compress((EXAMPLES / "validation.csv").read_bytes()))
    manifest.write_text(json.dumps(parquet_manifest()))

    options = parse_arguments(
        ["run", "--manifest", str(manifest), "--train", str(train), "--validation", str(validation)]
    )

    assert (options.train, options.validation) == (train, validation)
    assert channel_files.csv_bytes(validation) == (EXAMPLES / "validation.csv").read_bytes()
    as_csv = list(csv.DictReader(io.StringIO(channel_files.csv_bytes(train).decode())))
    assert as_csv == list(csv.DictReader((EXAMPLES / "train.csv").open()))


def test_a_channel_file_is_told_apart_by_its_ends_only(tmp_path: Path) -> None:
    """Files longer than what is read of them: a gzip stream cut short at the head is still gzip CSV."""
    rows = "\n".join(f"{n},{n * 7919 % 104729},{n**3}" for n in range(60_000))
    text = tmp_path / "large.csv"
    text.write_text("a,b,c\n" + rows)
    compressed = tmp_path / "large.csv.gz"
    compressed.write_bytes(gzip.compress(text.read_bytes()))
    parquet = tmp_path / "large.parquet"
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(text), parquet)
    assert min(path.stat().st_size for path in (text, compressed, parquet)) > channel_files.HEAD_BYTES

    assert [channel_files.format_of(path) for path in (text, compressed, parquet)] == [
        channel_files.FileFormat.CSV,
        channel_files.FileFormat.GZIP_CSV,
        channel_files.FileFormat.PARQUET,
    ]
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[:-1])
    with pytest.raises(channel_files.NotChannelData, match="not a whole Parquet file"):
        channel_files.format_of(cut)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--train", "{missing}"], "--train {missing} does not exist"),
        (["--validation", "{folder}"], "--validation {folder} is not a file"),
        (["--train", "{empty}"], "--train {empty} is empty: give a CSV file with a header row"),
        (
            ["--train", "{binary}"],
            "--train {binary} is neither CSV text (plain or gzip-compressed) nor a Parquet file",
        ),
        (["--train", "{bad_gzip}"], "--train {bad_gzip} is not a valid gzip file"),
        (["--validation", "{cut_parquet}"], "--validation {cut_parquet} is not a whole Parquet file"),
        (
            ["--train", "{parquet}"],
            "--train {parquet} is Parquet, but the training channel's ContentType is text/csv: set the manifest "
            'channel\'s "contentType" to "application/x-parquet"',
        ),
        (
            ["--manifest", "{training_only_manifest}", "--validation", "{gzip_csv}"],
            "--validation {gzip_csv}: the manifest has no validation channel to upload it to",
        ),
        (
            ["--manifest", "{parquet_manifest}", "--train", "{gzip_csv}"],
            "--train {gzip_csv} is gzip-compressed CSV, but the training channel's ContentType is "
            'application/x-parquet: set the manifest channel\'s "contentType" to "text/csv"',
        ),
        (["--manifest", "{missing}"], "--manifest {missing} does not exist"),
        (
            ["--manifest", "{bad_json}"],
            "--manifest {bad_json} is not valid JSON: Expecting value: line 1 column 15",
        ),
        (["--hyperparameters", "{bad_json}"], "--hyperparameters {bad_json} is not valid JSON"),
        (["--ml-parameters", "{missing}"], "--ml-parameters {missing} does not exist"),
        (["--max-jobs", "0"], "--max-jobs must be at least 1"),
        (["--max-parallel", "0"], "--max-parallel must be at least 1"),
        (
            ["--max-jobs", "2", "--max-parallel", "3"],
            "--max-parallel 3 is more than the 2 training jobs of the run",
        ),
        (["--seed", "-1"], "--seed must be from 0 to 4294967295"),
        (["--seed", str(2**32)], "--seed must be from 0 to 4294967295"),
        (["--api-faults", "1.5"], "--api-faults must be at least 0 and below 1"),
        (
            ["--ml-parameters", "{template}"],
            "--ml-parameters {template}: no value for the placeholder <training-security-group>; the local run "
            "fills only <account-id>, <region>, <s3bucket>",
        ),
        (["--workdir", "{file}"], "--workdir {file} is a file, not a folder"),
        (["--workdir", "{full}"], "--workdir {full} is not empty: give a new or empty folder"),
    ],
)
def test_each_bad_option_is_one_line_exit_2_and_nothing_started(
    options: list[str], message: str, tmp_path: Path
) -> None:
    places = {
        "missing": tmp_path / "nowhere" / "file.csv",
        "folder": tmp_path,
        "empty": tmp_path / "empty.csv",
        "binary": tmp_path / "binary.csv",
        "bad_json": tmp_path / "bad.json",
        "file": tmp_path / "a-file",
        "full": tmp_path / "full",
        "template": Path(__file__).resolve().parents[2] / "examples" / "template-ml-parameters.json",
    }
    places["empty"].write_text("\n")
    places["binary"].write_bytes(b"PK\x03\x04\x00\x00")
    places["bad_json"].write_text('{"channels": [')
    places |= {
        "bad_gzip": tmp_path / "bad.csv.gz",
        "cut_parquet": tmp_path / "cut.parquet",
        "gzip_csv": tmp_path / "train.csv.gz",
        "parquet": tmp_path / "train.parquet",
        "parquet_manifest": tmp_path / "manifest.json",
        "training_only_manifest": tmp_path / "training-only.json",
    }
    places["bad_gzip"].write_bytes(b"\x1f\x8bnot gzip at all")
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(EXAMPLES / "train.csv"), places["parquet"])
    places["cut_parquet"].write_bytes(places["parquet"].read_bytes()[:1000])
    places["gzip_csv"].write_bytes(gzip.compress((EXAMPLES / "train.csv").read_bytes()))
    places["parquet_manifest"].write_text(json.dumps(parquet_manifest()))
    places["training_only_manifest"].write_text(json.dumps(training_only_manifest()))
    places["file"].write_text("x")
    (places["full"] / "old-run").mkdir(parents=True)
    filled = [option.format(**places) for option in options]
    workdir = [] if "--workdir" in options else ["--workdir", str(tmp_path / "work")]

    code, out, err = run_command(*filled, *workdir)

    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"h2o-sagemaker-local: error: {message.format(**places)}")
    assert not (tmp_path / "work").exists(), "a work folder was made"


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["report", "--help"], ["run", "--max-jobs", "0"]]
)
def test_help_and_option_errors_answer_without_importing_the_run(argv: list[str]) -> None:
    # moto, the stack deployer and matplotlib take about 1.8 s to import; a typo should not wait for them.
    probe = (
        "import sys\n"
        "from h2o_sagemaker_local.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'moto', 'matplotlib', 'cfnlint', 'boto3'}))\n"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert finished.stdout.splitlines()[-1] == "[]"
    if argv == ["--help"]:
        assert REPORT_FILE in finished.stdout  # the help names the report's file as report.py writes it


def test_the_readme_documents_every_option_of_run() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("\n## Run locally\n", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `--")
        for name in re.findall(r"`(--[a-z-]+)", line.split(" | ", 1)[0])
    }
    code, usage, _ = run_command("--help")
    assert code == 0
    options = set(re.findall(r"\[(--[a-z-]+)", usage)) - {"--help"}

    assert documented == options


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    locked = unreadable(tmp_path)
    if os.access(locked, os.R_OK):
        pytest.skip("running as root: every file is readable")
    code, _, err = run_command("--hyperparameters", str(locked), "--workdir", str(tmp_path / "work"))
    assert code == 2 and f"--hyperparameters {locked} cannot be read: Permission denied" in err


def test_a_job_budget_under_the_parallelism_of_ml_parameters_caps_it_and_says_so(tmp_path: Path) -> None:
    options = parse_arguments(["run", "--max-jobs", "1"])
    assert (options.max_jobs, options.max_parallel) == (1, 1)
    assert options.notes == [
        "1 training job(s), so 1 at a time (ml-parameters.json's maxParallelTrainingJobs is 2)"
    ]
    ml_parameters, _, _ = local_inputs(options)
    assert (ml_parameters["maxNumberOfTrainingJobs"], ml_parameters["maxParallelTrainingJobs"]) == (1, 1)


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert area_under_roc([True, False, True, False], [0.9, 0.1, 0.4, 0.4]) == pytest.approx(0.875)
    assert area_under_roc([True, False], [0.2, 0.8]) == 0.0
    with pytest.raises(PipelineError, match="both classes"):
        area_under_roc([True, True], [0.2, 0.8])


def pairwise_auc(labels: list[bool], scores: list[float]) -> float:
    """The definition: the share of (positive, negative) pairs the positive wins, a tie half."""
    positives = [score for label, score in zip(labels, scores, strict=True) if label]
    negatives = [score for label, score in zip(labels, scores, strict=True) if not label]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1)), min_size=2
    ).filter(lambda pairs: len({label for label, _ in pairs}) == 2)
)
def test_auc_by_ranks_is_the_pairwise_definition(pairs: list[tuple[bool, float]]) -> None:
    labels, scores = [label for label, _ in pairs], [score for _, score in pairs]
    assert area_under_roc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_auc_of_a_large_validation_set_takes_well_under_a_second() -> None:
    """Counting pairs took about 9 minutes at 200k rows (8.4e9 pairs, measured at 20k: 5.3 s); ranks take n log n."""
    generator = random.Random(5)
    labels = [generator.random() < 0.3 for _ in range(200_000)]
    scores = [round(generator.random(), 3) for _ in labels]  # many ties
    started = time.perf_counter()
    auc = area_under_roc(labels, scores)
    assert time.perf_counter() - started < 1.0
    assert 0.45 < auc < 0.55


def test_the_validation_set_is_scored_in_requests_within_invoke_endpoints_limits() -> None:
    rows = [["1", 'Doe, "Jr"', "line one\nline two"], *([["2", "x" * 40, ""]] * 60)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([["id", "name", "note"], *rows])

    bodies = invocation_bodies(text.getvalue().encode(), max_bytes=600, max_rows=25)

    parsed = [list(csv.reader(io.StringIO(body.decode()))) for body in bodies]
    assert all(len(body) <= 600 for body in bodies)
    assert all(rows_of_body[0] == ["id", "name", "note"] for rows_of_body in parsed)
    assert all(1 <= len(rows_of_body) - 1 <= 25 for rows_of_body in parsed)
    assert [row for rows_of_body in parsed for row in rows_of_body[1:]] == rows
    with pytest.raises(PipelineError, match="row 1 of the validation set is over InvokeEndpoint's 30 bytes"):
        invocation_bodies(text.getvalue().encode(), max_bytes=30)


@pytest.mark.h2o
def test_a_failing_run_says_where_and_why_in_a_few_lines(tmp_path: Path) -> None:
    """Every training job fails (the training data lacks a column the hyperparameters ignore): the terminal shows
    the failed step and the innermost reason, under 15 lines, and where the full record is."""
    training = tmp_path / "train.csv"
    rows = (EXAMPLES / "train.csv").read_text().splitlines()
    training.write_text("\n".join(row.split(",", 1)[1] for row in rows) + "\n")  # without PassengerId
    command = [str(Path(sys.executable).with_name("h2o-sagemaker-local")), "run", "--max-jobs", "2"]
    finished = subprocess.run(
        [*command, "--train", str(training), "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = finished.stdout.splitlines()
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert len(lines) < 15, finished.stdout
    assert "Traceback" not in finished.stdout + finished.stderr
    summary = lines[lines.index(next(line for line in lines if line.startswith("Execution FAILED"))) :]
    assert summary[1] == "  failed step: ModelTuning TuneHyperparameters (States.TaskFailed)"
    assert summary[2] == (
        "  root cause: All training jobs failed: ignored_columns: no such column 'PassengerId' in the training data"
    )
    assert summary[3] == f"  full record: {tmp_path / 'work' / 'execution-history.json'}"
    assert json.loads((tmp_path / "work" / "execution-history.json").read_text())  # the record is there
    # The report of a failed run shows the failed jobs with their reason.
    assert lines[-1] == f"report: {tmp_path / 'work' / 'report.html'}"
    report = (tmp_path / "work" / "report.html").read_text()
    assert (
        "Training jobs that did not complete" in report and "no such column &#x27;PassengerId&#x27;" in report
    )
