"""The run report: written by a real local run (2 training jobs), opened in a real headless Chromium (Debian's,
driven by playwright), every chart rendered with its title and axis labels, and made again from the work folder
after the run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from h2o_sagemaker_local.cli import area_under_roc
from h2o_sagemaker_local.report import REPORT_FILE, load_run, roc_curve, write_report

CHROMIUM = shutil.which("chromium")
# Every chart's title, and axis labels the report must carry as text.
CHARTS = {
    "Tuning history": ("training job (launch order)", "validation:auc"),
    "Hyperparameters against validation:auc": ("learn_rate", "max_depth"),
    "ROC curve (validation, through the endpoint)": ("false positive rate", "true positive rate"),
    "Feature contributions (validation, through the endpoint)": ("mean |contribution| (log-odds)", "feature"),
    "Variable importance (deployed model)": ("share of the total importance (%)", "variable"),
    "Scoring history (deployed model)": ("number of trees", "auc"),
    "Time of each phase": ("seconds", "phase"),
}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("run") / "work"
    command = [str(Path(sys.executable).with_name("h2o-sagemaker-local")), "run", "--max-jobs", "2"]
    finished = subprocess.run(
        [*command, "--workdir", str(workdir)], capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return workdir, finished.stdout


@pytest.fixture(scope="module")
def page(run_folder: tuple[Path, str]) -> Iterator[tuple[Any, list[str]]]:
    """The report open in headless Chromium, with every console error and page error it raised."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    workdir, _ = run_folder
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        opened = browser.new_page(viewport={"width": 1200, "height": 900})
        opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
        opened.goto((workdir / REPORT_FILE).as_uri(), wait_until="load")
        yield opened, errors
        browser.close()


@pytest.mark.h2o
def test_the_run_writes_its_report_and_says_where(run_folder: tuple[Path, str]) -> None:
    workdir, output = run_folder
    assert f"report: {workdir / REPORT_FILE}" in output.splitlines()
    # The validation rows were scored with their contributions; the summary explains the first.
    [explained] = [line for line in output.splitlines() if line.startswith("  the first, explained (")]
    assert "Sex " in explained  # among the three largest for the first validation row, a man of 48
    assert (workdir / REPORT_FILE).stat().st_size > 10_000


@pytest.mark.h2o
def test_every_chart_renders_in_a_browser_with_its_title_and_axis_labels(
    page: tuple[Any, list[str]], run_folder: tuple[Path, str]
) -> None:
    opened, errors = page
    assert errors == []
    # The charts' <text> elements the browser laid out (each with a box on the page).
    svg_texts = opened.eval_on_selector_all(
        "svg text",
        "texts => texts.filter(t => t.getBBox().width > 0).map(t => t.textContent)",
    )
    rendered = "\n".join(svg_texts)
    for title, labels in CHARTS.items():
        assert title in rendered, title
        for label in labels:
            assert label in rendered, f"{title}: {label}"
    # Each chart has a size on the page: it rendered, not just parsed.
    boxes = [svg.bounding_box() for svg in opened.locator("svg").all()]
    assert len(boxes) == len(CHARTS) and all(
        box and box["width"] > 100 and box["height"] > 100 for box in boxes
    )
    text = opened.locator("body").inner_text()
    assert "Confusion matrix at" in text and "the model's max-F1 threshold" in text
    assert "Best training job:" in text
    # The example deployment captures: the request the run scored is shown as SageMaker wrote it.
    assert "Data capture" in text and "AllTraffic" in text and '"mode": "INPUT"' in text
    workdir, _ = run_folder
    screenshot = workdir.parent / "report.png"
    opened.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000


@pytest.mark.h2o
def test_the_report_is_made_again_from_the_work_folder_after_the_run(run_folder: tuple[Path, str]) -> None:
    workdir, _ = run_folder
    first = (workdir / REPORT_FILE).read_text()
    (workdir / REPORT_FILE).unlink()
    started = time.monotonic()
    finished = subprocess.run(
        [str(Path(sys.executable).with_name("h2o-sagemaker-local")), "report", str(workdir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.strip() == f"report: {workdir / REPORT_FILE}"
    again = (workdir / REPORT_FILE).read_text()
    # The same report, but for matplotlib's random SVG ids.
    assert again.count("<svg") == first.count("<svg") and len(again) == pytest.approx(len(first), rel=0.02)
    started = time.monotonic()
    write_report(workdir)
    assert time.monotonic() - started < 2, "the report costs the run under 2 s"


@pytest.mark.h2o
def test_the_report_reads_what_the_run_did(run_folder: tuple[Path, str]) -> None:
    workdir, _ = run_folder
    record = load_run(workdir)
    assert record.status == "SUCCEEDED" and record.metric == "validation:auc" and record.maximize
    assert [job.index for job in record.jobs] == [1, 2]
    assert record.best is not None and record.deployed_metadata is not None
    assert len(record.predictions) == len(record.validation_rows) == 179
    assert {"TuneModel", "RegisterModel", "DeployModel", "stack deployment (local)"} <= set(record.phases)


def test_the_roc_area_is_the_mann_whitney_auc() -> None:
    labels = [True, False, True, False, True, False, True]
    scores = [0.9, 0.1, 0.4, 0.4, 0.8, 0.7, 0.2]
    fpr, tpr, thresholds, auc = roc_curve(labels, scores)
    assert auc == pytest.approx(area_under_roc(labels, scores))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert thresholds[1:] == sorted(set(scores), reverse=True)


def test_a_folder_that_is_not_a_runs_is_a_one_line_error(tmp_path: Path) -> None:
    finished = subprocess.run(
        [str(Path(sys.executable).with_name("h2o-sagemaker-local")), "report", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert finished.stderr == (
        f"h2o-sagemaker-local: error: {tmp_path} is not the work folder of a run (no execution-history.json)\n"
    )


def synthetic_record(category: str, domain: list[str] | None, predictions: list[dict[str, Any]]) -> Any:
    from h2o_sagemaker_local.report import RunRecord, TrainingJob

    jobs = [
        TrainingJob("tuning-001-a", 1, 0.8, {"max_depth": "3"}, None),
        TrainingJob("tuning-002-b", 2, None, {"max_depth": "5"}, "out of memory"),
        TrainingJob("tuning-003-c", 3, 0.6, {"max_depth": "7"}, None),
    ]
    rows = [{"y": str(value)} for value in ("1", "2", "3", "1")]
    return RunRecord(
        status="SUCCEEDED",
        metric="validation:rmse" if category == "Regression" else "validation:logloss",
        maximize=False,
        tuned=["max_depth"],
        log_scaled=set(),
        jobs=jobs,
        deployed_metadata={"model_category": category, "target": "y", "target_domain": domain},
        validation_rows=rows,
        predictions=predictions,
    )


def test_a_regression_is_shown_predicted_against_actual() -> None:
    from h2o_sagemaker_local.report import render

    page = render(synthetic_record("Regression", None, [{"value": v} for v in (1.1, 2.2, 2.7, 0.9)]))
    assert "Predicted against actual (validation, through the endpoint)" in page
    assert "actual y" in page and "predicted y" in page
    assert "ROC curve" not in page
    # Minimize: the best job is the lowest, the failed one listed with its reason.
    assert "Best training job: tuning-003-c (validation:rmse = 0.600000)" in page
    assert "out of memory" in page


def test_contributions_are_shown_as_each_features_mean_absolute_contribution() -> None:
    from h2o_sagemaker_local.report import contributions_chart

    contributions = [{"age": 1.0, "fare": -3.0, "BiasTerm": 0.5}, {"age": -2.0, "fare": 1.0, "BiasTerm": 0.5}]
    predictions = [{"value": 1.0, "contributions": row} for row in contributions] * 2
    record = synthetic_record("Regression", None, predictions)
    chart = contributions_chart(record, record.deployed_metadata)
    assert chart is not None and "mean |contribution| (y)" in chart and "BiasTerm" not in chart
    # fare (mean 2.0) is drawn after age (1.5): barh puts the last bar on top, the largest first to read.
    assert chart.index(">age<") < chart.index(">fare<")
    assert (
        contributions_chart(synthetic_record("Regression", None, [{"value": 1.0}]), record.deployed_metadata)
        is None
    )


def test_a_multinomial_model_is_shown_per_class() -> None:
    from h2o_sagemaker_local.report import render

    labels = ["1", "2", "2", "1"]  # rows are 1, 2, 3, 1
    page = render(synthetic_record("Multinomial", ["1", "2", "3"], [{"label": label} for label in labels]))
    # class 1: 2 rows, both found (precision 1, recall 1); class 2: 1 row, predicted twice; class 3: never found.
    assert "<tr><td>1</td><td>2</td><td>1.000</td><td>1.000</td><td>1.000</td></tr>" in page
    assert "<tr><td>2</td><td>1</td><td>0.500</td><td>1.000</td><td>0.667</td></tr>" in page
    assert "<tr><td>3</td><td>1</td><td>0.000</td><td>0.000</td><td>0.000</td></tr>" in page


def test_the_captured_data_is_shown_with_its_bodies_shortened() -> None:
    from h2o_sagemaker_local.report import CAPTURED_DATA_SHOWN_CHARACTERS, CapturedData, render

    body = "Pclass,Sex\n" + "1,female\n" * 100
    record = {
        "captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": body}},
        "eventMetadata": {"inferenceId": "passenger-<713>"},
    }
    captured = CapturedData("s3://bucket/capture/endpoint/", 25, ["Input"], {"AllTraffic": 3}, record)
    page = render(replace(synthetic_record("Regression", None, []), captured=captured))
    assert "25% of the requests sampled, input kept, in s3://bucket/capture/endpoint/" in page
    assert "<tr><td>AllTraffic</td><td>3</td></tr>" in page
    shown = body[:CAPTURED_DATA_SHOWN_CHARACTERS]
    assert json.dumps(shown + " …", ensure_ascii=False)[1:-1] in page and body not in page
    assert "passenger-&lt;713&gt;" in page  # escaped
    # The run's record itself is left whole.
    assert record["captureData"]["endpointInput"]["data"] == body

    nothing = CapturedData("s3://bucket/capture/endpoint/", 100, ["Input", "Output"], {}, None)
    page = render(replace(synthetic_record("Regression", None, []), captured=nothing))
    assert "input and output kept" in page and "No request was captured." in page
