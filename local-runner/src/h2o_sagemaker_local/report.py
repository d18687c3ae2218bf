"""The run report: one self-contained HTML file in the work folder, to look at what a local run did.

It shows the tuning history (every training job's objective in launch order, the best so far, failed jobs
marked), each tuned hyperparameter against the objective, the best job's hyperparameters, the deployed model
scored through the endpoint on the validation channel (ROC curve with its AUC and the threshold the labels use,
and the confusion matrix at that threshold, for a binomial model; predicted against actual for a regression;
per-class metrics for a multinomial one; each feature's mean absolute contribution, but for multinomial), the
model's variable importance and scoring history, what the endpoint captured when data capture is on, and the
time each phase took.

Everything comes from the work folder, so the report can be made again after the run
(``h2o-sagemaker-local report WORKDIR``): ``execution-history.json`` (the run's input and its phases),
``training-jobs/<job>/`` (each job's hyperparameters, model metadata and failure), the deployed model's metadata
under ``endpoints/``, and what the command saved at the end of the run (``validation-scored.json``: the
validation rows' predictions through the endpoint; ``timings.json``; ``s3/<bucket>/<key>``: the captured data).

Charts are drawn by matplotlib as SVG with their text kept as text, inlined in the HTML: no script, no font or
file to fetch, readable offline and by a browser test (titles and axis labels are text in the page).
"""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from h2o_sagemaker_local.data_capture import endpoint_folder
from h2o_sagemaker_local.training import split_s3_uri

REPORT_FILE = "report.html"
SCORED_FILE = "validation-scored.json"
TIMINGS_FILE = "timings.json"
HISTORY_FILE = "execution-history.json"
S3_COPY_FOLDER = "s3"  # objects copied from the local S3 at the end of a run, as <bucket>/<key>
CAPTURED_DATA_SHOWN_CHARACTERS = 300  # of each body in the captured record the report shows
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 11})


class ReportError(Exception):
    """The work folder lacks what the report needs; the message says what."""


@dataclass(frozen=True)
class TrainingJob:
    name: str
    index: int  # launch order in its tuning job, from 1
    objective: float | None  # None: the job failed or reported no objective
    hyperparameters: dict[str, str]
    failure: str | None


@dataclass(frozen=True)
class CapturedData:
    """What the endpoint captured (SageMaker's data capture), read from the run's copy in the work folder."""

    folder: str  # s3://<destination>/<endpoint>/
    sampling_percentage: int
    capture_modes: list[str]  # Input, Output
    requests_by_variant: dict[str, int]
    first_record: dict[str, Any] | None


@dataclass
class RunRecord:
    """What the report shows, read from a work folder."""

    status: str
    metric: str  # e.g. validation:auc
    maximize: bool
    tuned: list[str]  # the tuned hyperparameters' names
    log_scaled: set[str]
    jobs: list[TrainingJob]
    deployed_metadata: dict[str, Any] | None  # model-metadata.json of the model the endpoint serves
    validation_rows: list[dict[str, str]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds
    captured: CapturedData | None = None  # None: the deployment captures nothing

    @property
    def scored(self) -> list[tuple[TrainingJob, float]]:
        """The jobs that reported the objective, with it."""
        return [(job, job.objective) for job in self.jobs if job.objective is not None]

    @property
    def best(self) -> TrainingJob | None:
        if not self.scored:
            return None
        return (max if self.maximize else min)(self.scored, key=lambda item: item[1])[0]


# --- reading a work folder -----------------------------------------------------------------------------------


def _events(history: dict[str, list[dict[str, Any]]], suffix: str) -> list[dict[str, Any]]:
    for arn, events in history.items():
        if arn.rsplit(":", 1)[-1].endswith(suffix):
            return events
    return []


def _run_input(history: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    parent = next(iter(history.values()), [])
    started = [event for event in parent if event["type"] == "ExecutionStarted"]
    if not started:
        raise ReportError("the execution history has no start of the run")
    return dict(json.loads(started[0]["executionStartedEventDetails"]["input"]))


def _status(history: dict[str, list[dict[str, Any]]]) -> str:
    parent = next(iter(history.values()), [])
    ends = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionAborted": "ABORTED"}
    return next((ends[event["type"]] for event in reversed(parent) if event["type"] in ends), "RUNNING")


def _phases(history: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Seconds each top-level task of the run took (the parent's states), in order."""
    parent = next(iter(history.values()), [])
    entered: dict[str, datetime] = {}
    phases: dict[str, float] = {}
    for event in parent:
        if event["type"] == "TaskStateEntered":
            entered[event["stateEnteredEventDetails"]["name"]] = datetime.fromisoformat(event["timestamp"])
        elif event["type"] == "TaskStateExited":
            name = event["stateExitedEventDetails"]["name"]
            if name in entered and not name.startswith("Notify"):
                seconds = (datetime.fromisoformat(event["timestamp"]) - entered[name]).total_seconds()
                phases[name] = phases.get(name, 0.0) + seconds
    return phases


def _training_jobs(workdir: Path, tuning_job: str, metric: str) -> list[TrainingJob]:
    channel, _, name = metric.partition(":")
    jobs = []
    for folder in sorted((workdir / "training-jobs").glob(f"{tuning_job}-*")):
        index = int(folder.name.removeprefix(f"{tuning_job}-").split("-", 1)[0])
        config = folder / "input" / "config" / "hyperparameters.json"
        hyperparameters = json.loads(config.read_text()) if config.is_file() else {}
        metadata_path = folder / "model" / "model-metadata.json"
        metrics = (
            (json.loads(metadata_path.read_text()).get("metrics") or {}).get(channel) or {}
            if metadata_path.is_file()
            else {}
        )
        failure_path = folder / "output" / "failure"
        failure = failure_path.read_text().strip() if failure_path.is_file() else None
        value = metrics.get(name)
        jobs.append(TrainingJob(folder.name, index, None if failure else value, hyperparameters, failure))
    return sorted(jobs, key=lambda job: job.index)


def _deployed_metadata(workdir: Path, history: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    deployment = _events(history, "-deployment")
    succeeded = [event for event in deployment if event["type"] == "ExecutionSucceeded"]
    if not succeeded:
        return None
    output = json.loads(succeeded[-1]["executionSucceededEventDetails"]["output"])
    path = workdir / "endpoints" / output["endpointName"] / output["endpointConfigName"] / "model"
    metadata = path / "model-metadata.json"
    return dict(json.loads(metadata.read_text())) if metadata.is_file() else None


def copy_in_work_folder(workdir: Path, s3_uri: str) -> Path:
    """Where the run's copy of an S3 object, or of the objects under a prefix, is: s3/<bucket>/<key>."""
    bucket, key = split_s3_uri(s3_uri)
    return workdir / S3_COPY_FOLDER / bucket / key


def captured_data(workdir: Path, deployment: dict[str, Any]) -> CapturedData | None:
    config = deployment.get("dataCaptureConfig")
    if not config:
        return None
    folder = endpoint_folder(config["DestinationS3Uri"], deployment["endpointName"]) + "/"
    copied = copy_in_work_folder(workdir, folder)
    by_variant: dict[str, int] = {}
    first: dict[str, Any] | None = None
    for path in sorted(copied.glob("*/*/*/*/*/*.jsonl")):
        lines = path.read_text().splitlines()
        variant = path.relative_to(copied).parts[0]
        by_variant[variant] = by_variant.get(variant, 0) + len(lines)
        if first is None and lines:
            first = json.loads(lines[0])
    return CapturedData(
        folder=folder,
        sampling_percentage=config["InitialSamplingPercentage"],
        capture_modes=[option["CaptureMode"] for option in config["CaptureOptions"]],
        requests_by_variant=by_variant,
        first_record=first,
    )


def load_run(workdir: Path) -> RunRecord:
    history_path = workdir / HISTORY_FILE
    if not history_path.is_file():
        raise ReportError(f"{workdir} has no {HISTORY_FILE}: give the work folder of a run")
    history = json.loads(history_path.read_text())
    run_input = _run_input(history)
    config = run_input["tuning"]["hyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    ranges = [item for kind in config.get("ParameterRanges", {}).values() for item in kind]
    record = RunRecord(
        status=_status(history),
        metric=objective["MetricName"],
        maximize=objective["Type"] == "Maximize",
        tuned=[item["Name"] for item in ranges],
        log_scaled={item["Name"] for item in ranges if item.get("ScalingType") == "Logarithmic"},
        jobs=_training_jobs(
            workdir, run_input["tuning"]["hyperParameterTuningJobName"], objective["MetricName"]
        ),
        deployed_metadata=_deployed_metadata(workdir, history),
        phases=_phases(history),
        captured=captured_data(workdir, run_input["deployment"]),
    )
    timings = workdir / TIMINGS_FILE
    if timings.is_file():  # the command's own phases: the stack's deployment before the run, scoring after it
        measured = json.loads(timings.read_text())
        before = {name: seconds for name, seconds in measured.items() if name.startswith("stack")}
        after = {name: seconds for name, seconds in measured.items() if name not in before}
        record.phases = before | record.phases | after
    scored = workdir / SCORED_FILE
    if scored.is_file():
        document = json.loads(scored.read_text())
        record.validation_rows = document["rows"]
        record.predictions = document["predictions"]
    return record


def save_scoring(workdir: Path, validation: bytes, predictions: list[dict[str, Any]]) -> None:
    """What the command scored through the endpoint (the validation set as CSV), for this report and a later one."""
    rows = list(csv.DictReader(io.StringIO(validation.decode())))
    (workdir / SCORED_FILE).write_text(json.dumps({"rows": rows, "predictions": predictions}))


# --- charts ----------------------------------------------------------------------------------------------------


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prologue or doctype


def tuning_history(record: RunRecord) -> str:
    figure, axes = plt.subplots(figsize=(7, 3.2))
    scored = record.scored
    axes.scatter(
        [job.index for job, _ in scored], [value for _, value in scored], label="training job", zorder=3
    )
    best_so_far, points = None, []
    for job in record.jobs:
        if job.objective is not None and (
            best_so_far is None
            or (job.objective > best_so_far if record.maximize else job.objective < best_so_far)
        ):
            best_so_far = job.objective
        if best_so_far is not None:
            points.append((job.index, best_so_far))
    if points:
        axes.step(*zip(*points, strict=True), where="post", color="tab:green", label="best so far")
    failed = [job for job in record.jobs if job.objective is None]
    if failed:
        bottom = min((value for _, value in scored), default=0.0)
        axes.scatter(
            [job.index for job in failed], [bottom] * len(failed), marker="x", color="tab:red", label="failed"
        )
    axes.set_title("Tuning history")
    axes.set_xlabel("training job (launch order)")
    axes.set_ylabel(record.metric)
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    return _svg(figure)


def hyperparameters_against_objective(record: RunRecord) -> str:
    names = [name for name in record.tuned if any(name in job.hyperparameters for job in record.jobs)]
    columns = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    scored = record.scored
    for axes, name in zip(grid.flat, names, strict=False):
        values = [job.hyperparameters.get(name, "") for job, _ in scored]
        numeric = all(_is_number(value) for value in values)
        xs: list[Any] = [float(value) for value in values] if numeric else values
        axes.scatter(xs, [objective for _, objective in scored], s=18)
        if numeric and name in record.log_scaled:
            axes.set_xscale("log")
            # Plain numbers at 1, 2 and 5 of each decade: matplotlib's labels overlap on a range of one decade.
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
            axes.xaxis.set_minor_formatter(
                FuncFormatter(lambda value, _: f"{value:.2g}" if f"{value:.0e}"[0] in "25" else "")
            )
            axes.tick_params(axis="x", which="both", labelrotation=30)
        axes.set_title(name)
        axes.set_xlabel(name)
        axes.set_ylabel(record.metric)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(names) :]:
        axes.set_visible(False)
    figure.suptitle(f"Hyperparameters against {record.metric}")
    figure.tight_layout()
    return _svg(figure)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def roc_curve(labels: list[bool], scores: list[float]) -> tuple[list[float], list[float], list[float], float]:
    """False and true positive rates at every distinct score (highest first), the thresholds, and the AUC."""
    positives = sum(labels)
    negatives = len(labels) - positives
    ordered = sorted(zip(scores, labels, strict=True), key=lambda item: -item[0])
    fpr, tpr, thresholds = [0.0], [0.0], [math.inf]
    true_positives = false_positives = 0
    for index, (score, label) in enumerate(ordered):
        true_positives += label
        false_positives += not label
        if index + 1 == len(ordered) or ordered[index + 1][0] != score:
            fpr.append(false_positives / negatives)
            tpr.append(true_positives / positives)
            thresholds.append(score)
    auc = sum((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2 for i in range(1, len(fpr)))
    return fpr, tpr, thresholds, auc


def binomial_charts(record: RunRecord, metadata: dict[str, Any]) -> tuple[str, str, float, float]:
    """The ROC chart, the confusion matrix table (at the model's threshold), the AUC and the threshold."""
    positive = metadata["target_domain"][1]
    labels = [row[metadata["target"]] == positive for row in record.validation_rows]
    scores = [float(prediction["probabilities"][positive]) for prediction in record.predictions]
    threshold = float(metadata.get("threshold", 0.5))
    fpr, tpr, _, auc = roc_curve(labels, scores)
    predicted = [prediction["label"] == positive for prediction in record.predictions]
    matrix = {
        (actual, guess): sum(1 for a, g in zip(labels, predicted, strict=True) if a == actual and g == guess)
        for actual in (False, True)
        for guess in (False, True)
    }
    at_threshold_fpr = matrix[(False, True)] / max(1, matrix[(False, True)] + matrix[(False, False)])
    at_threshold_tpr = matrix[(True, True)] / max(1, matrix[(True, True)] + matrix[(True, False)])
    figure, axes = plt.subplots(figsize=(4.2, 4.0))
    axes.plot(fpr, tpr, label=f"AUC {auc:.4f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.scatter(
        [at_threshold_fpr], [at_threshold_tpr], color="tab:red", zorder=3, label=f"threshold {threshold:.3f}"
    )
    axes.set_title("ROC curve (validation, through the endpoint)")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    negative = metadata["target_domain"][0]
    table = _table(
        ["actual \\ predicted", html.escape(negative), html.escape(positive)],
        [
            [html.escape(negative), str(matrix[(False, False)]), str(matrix[(False, True)])],
            [html.escape(positive), str(matrix[(True, False)]), str(matrix[(True, True)])],
        ],
    )
    return _svg(figure), table, auc, threshold


def regression_chart(record: RunRecord, metadata: dict[str, Any]) -> str:
    actual = [float(row[metadata["target"]]) for row in record.validation_rows]
    predicted = [float(prediction["value"]) for prediction in record.predictions]
    figure, axes = plt.subplots(figsize=(4.2, 4.0))
    axes.scatter(actual, predicted, s=12)
    low, high = min(actual + predicted), max(actual + predicted)
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=0.8)
    axes.set_title("Predicted against actual (validation, through the endpoint)")
    axes.set_xlabel(f"actual {metadata['target']}")
    axes.set_ylabel(f"predicted {metadata['target']}")
    axes.grid(alpha=0.3)
    return _svg(figure)


def per_class_table(record: RunRecord, metadata: dict[str, Any]) -> str:
    classes = list(metadata["target_domain"])
    actual = [row[metadata["target"]] for row in record.validation_rows]
    predicted = [prediction["label"] for prediction in record.predictions]
    rows = []
    for name in classes:
        hits = sum(1 for a, p in zip(actual, predicted, strict=True) if a == p == name)
        predicted_as = predicted.count(name)
        present = actual.count(name)
        precision = hits / predicted_as if predicted_as else 0.0
        recall = hits / present if present else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append([html.escape(name), str(present), f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"])
    return _table(["class", "rows", "precision", "recall", "F1"], rows)


def contributions_chart(record: RunRecord, metadata: dict[str, Any]) -> str | None:
    """Each feature's mean absolute contribution over the validation rows (H2O's TreeSHAP, through the endpoint):
    how far, on average, the feature moved a prediction, in the model's link space."""
    explained = [
        prediction["contributions"] for prediction in record.predictions if "contributions" in prediction
    ]
    if not explained:
        return None
    features = [name for name in explained[0] if name != "BiasTerm"]
    means = {name: sum(abs(row[name]) for row in explained) / len(explained) for name in features}
    top = sorted(means, key=means.__getitem__)[-20:]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
    axes.barh(top, [means[name] for name in top])
    axes.set_title("Feature contributions (validation, through the endpoint)")
    unit = "log-odds" if metadata["model_category"] == "Binomial" else metadata["target"]
    axes.set_xlabel(f"mean |contribution| ({unit})")
    axes.set_ylabel("feature")
    return _svg(figure)


def variable_importance_chart(metadata: dict[str, Any]) -> str | None:
    importances = metadata.get("variable_importances") or []
    if not importances:
        return None
    top = sorted(importances, key=lambda item: item["percentage"], reverse=True)[:20][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
    axes.barh([item["variable"] for item in top], [100 * item["percentage"] for item in top])
    axes.set_title("Variable importance (deployed model)")
    axes.set_xlabel("share of the total importance (%)")
    axes.set_ylabel("variable")
    return _svg(figure)


def scoring_history_chart(metadata: dict[str, Any], metric: str) -> str | None:
    history = metadata.get("scoring_history") or []
    name = metric.partition(":")[2]
    series = {
        channel: [
            (row["number_of_trees"], row[f"{channel}_{name}"])
            for row in history
            if row.get(f"{channel}_{name}") is not None
        ]
        for channel in ("training", "validation")
    }
    if not any(series.values()):
        return None
    figure, axes = plt.subplots(figsize=(6, 3))
    for channel, points in series.items():
        if points:
            axes.plot(*zip(*points, strict=True), marker=".", label=channel)
    axes.set_title("Scoring history (deployed model)")
    axes.set_xlabel("number of trees")
    axes.set_ylabel(name)
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    return _svg(figure)


def timings_chart(phases: dict[str, float]) -> str | None:
    if not phases:
        return None
    names = list(phases)[::-1]
    figure, axes = plt.subplots(figsize=(6, 0.35 * len(names) + 1))
    axes.barh(names, [phases[name] for name in names])
    axes.set_title("Time of each phase")
    axes.set_xlabel("seconds")
    axes.set_ylabel("phase")
    return _svg(figure)


# --- the page --------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; text-align: left; } .chart { margin: 0.5em 0; } .failed { color: #b00; }
.note { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.6em; font-size: 0.85em; white-space: pre-wrap; word-break: break-all; }
"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(title: str, *parts: str | None) -> str:
    content = "".join(f'<div class="chart">{part}</div>' for part in parts if part)
    return f"<h2>{html.escape(title)}</h2>{content}" if content else ""


def captured_data_section(captured: CapturedData) -> str:
    """Where the captured data is, how many requests each variant captured, and one captured record as SageMaker
    writes it (its bodies shortened)."""
    settings = (
        f'<p class="note">{captured.sampling_percentage}% of the requests sampled, '
        f"{' and '.join(mode.lower() for mode in captured.capture_modes)} kept, in "
        f"{html.escape(captured.folder)} (copied to the work folder's {S3_COPY_FOLDER}/).</p>"
    )
    if captured.first_record is None:
        return _section("Data capture", settings, '<p class="note">No request was captured.</p>')
    counts = _table(
        ["variant", "captured requests"],
        [[html.escape(variant), str(count)] for variant, count in captured.requests_by_variant.items()],
    )
    record = copy.deepcopy(captured.first_record)
    for body in record.get("captureData", {}).values():
        if len(body.get("data", "")) > CAPTURED_DATA_SHOWN_CHARACTERS:
            body["data"] = body["data"][:CAPTURED_DATA_SHOWN_CHARACTERS] + " …"
    example = f"<h3>A captured record</h3><pre>{html.escape(json.dumps(record, indent=2, ensure_ascii=False))}</pre>"
    return _section("Data capture", settings, counts, example)


def render(record: RunRecord) -> str:
    best = record.best
    sections = [
        _section("Tuning", tuning_history(record) if record.jobs else None),
        _section(
            "Hyperparameters", hyperparameters_against_objective(record) if best and record.tuned else None
        ),
    ]
    if best:
        tuned = [
            [html.escape(name), html.escape(best.hyperparameters.get(name, ""))] for name in record.tuned
        ]
        sections.append(
            _section(
                f"Best training job: {best.name} ({record.metric} = {best.objective:.6f})",
                _table(["tuned hyperparameter", "value"], tuned),
            )
        )
    failed = [job for job in record.jobs if job.failure]
    if failed:
        rows = [
            [
                str(job.index),
                html.escape(job.name),
                f'<span class="failed">{html.escape(job.failure or "")}</span>',
            ]
            for job in failed
        ]
        sections.append(_section("Training jobs that did not complete", _table(["#", "job", "reason"], rows)))
    metadata = record.deployed_metadata
    if metadata and record.predictions:
        category = metadata["model_category"]
        if category == "Binomial":
            roc, matrix, auc, threshold = binomial_charts(record, metadata)
            note = (
                f'<p class="note">{len(record.predictions)} validation rows scored through the endpoint: AUC {auc:.4f}. '
                f"A row is labelled {html.escape(metadata['target_domain'][1])} when its probability is at least "
                f"{threshold:.3f}, the model's max-F1 threshold.</p>"
            )
            sections.append(
                _section(
                    "Deployed model on the validation channel",
                    note,
                    roc,
                    f"<h3>Confusion matrix at {threshold:.3f}</h3>{matrix}",
                    contributions_chart(record, metadata),
                )
            )
        elif category == "Regression":
            sections.append(
                _section(
                    "Deployed model on the validation channel",
                    regression_chart(record, metadata),
                    contributions_chart(record, metadata),
                )
            )
        else:
            sections.append(
                _section("Deployed model on the validation channel", per_class_table(record, metadata))
            )
    if metadata:
        sections.append(
            _section(
                "Deployed model",
                variable_importance_chart(metadata),
                scoring_history_chart(metadata, record.metric),
            )
        )
    if record.captured:
        sections.append(captured_data_section(record.captured))
    sections.append(_section("Timings", timings_chart(record.phases)))
    title = f"Local run report: {record.status}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="note">{len(record.jobs)} training jobs, objective {html.escape(record.metric)} '
        f"({'Maximize' if record.maximize else 'Minimize'}).</p>{''.join(sections)}</body></html>"
    )


def write_report(workdir: Path) -> Path:
    """Render the report of the run in ``workdir`` into ``workdir/report.html``; returns its path."""
    path = workdir / REPORT_FILE
    path.write_text(render(load_run(workdir)), encoding="utf-8")
    return path
