"""`h2o-sagemaker-local run`: tune, deploy and score on this machine with the project's real files."""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, assert_never

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from h2o_sagemaker_local import channel_files, events, parameter_files
from h2o_sagemaker_local.account import ACCOUNT_ID, DATA_BUCKET, REGION
from h2o_sagemaker_local.containers import ContainerRuntime, ContainersUnavailable
from h2o_sagemaker_local.errors import DeploymentFailed, PipelineError, RunInterrupted
from h2o_sagemaker_local.outcome import describe_failure
from h2o_sagemaker_local.project import ProjectNotFound, find_project

# The run's own modules (moto, the stack deployer, matplotlib: about 1.8 s) are imported when a run or report starts,
# so that --help and option errors answer at once.
if TYPE_CHECKING:
    from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult

# Soft wrap: a long line stays one line (a terminal wraps it for display; a log keeps it whole).
console = Console(highlight=False, soft_wrap=True)
# The placeholders of the parameter files the local run fills, for its emulated account.
LOCAL_PLACEHOLDERS = {"account-id": ACCOUNT_ID, "region": REGION, "s3bucket": DATA_BUCKET}
# Validation rows per request when the run scores them through the endpoint: with InvokeEndpoint's 6 MB, room for
# the probabilities of about 200 classes per row in the response.
SCORING_ROWS_PER_REQUEST = 1000
# Input files the run reads from the project's examples/ unless given: option, file name, help.
EXAMPLE_FILES = (
    ("--hyperparameters", "hyperparameters.json", "hyperparameters.json: ranges and static values"),
    ("--manifest", "manifest.json", "manifest.json: the channels; <s3bucket> is filled"),
    ("--train", "train.csv", "the training channel's file: CSV (plain or gzip-compressed) or Parquet"),
    (
        "--validation",
        "validation.csv",
        "the validation channel's file: CSV (plain or gzip-compressed) or Parquet",
    ),
)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{what} file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise PipelineError(f"{what} file {path} is not valid JSON: {error}") from None


def local_inputs(options: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """ml-parameters, hyperparameters and manifest, filled for the emulated account by the generator users run
    for AWS."""
    if options.ml_parameters:
        ml_parameters = parameter_files.fill_placeholders(
            read_json(options.ml_parameters, "ml-parameters"), LOCAL_PLACEHOLDERS
        )
    else:
        ml_parameters = parameter_files.generate_ml_parameters(
            read_json(options.project.examples / "template-ml-parameters.json", "ml-parameters"),
            parameter_files.Deployment(account=ACCOUNT_ID, region=REGION, bucket=DATA_BUCKET),
        )
    from h2o_sagemaker_local.pipeline import ml_parameters_for_local_run

    hyperparameters = read_json(options.hyperparameters, "hyperparameters")
    manifest = parameter_files.fill_placeholders(read_json(options.manifest, "manifest"), LOCAL_PLACEHOLDERS)
    return (
        ml_parameters_for_local_run(
            ml_parameters, options.max_jobs, options.max_parallel, options.early_stopping
        ),
        hyperparameters,
        manifest,
    )


class Reporter:
    """Live progress: state transitions, each training job with its objective value, endpoint status."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose  # each state every execution enters, too
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.deploying: Path | None = None
        self.manifest = "a manifest upload"
        self.phase_started = time.monotonic()
        self.timings: dict[str, float] = {}

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.Deploying(template):
                self.deploying = template
            case events.Deployed():
                console.print(f"[bold]Deployed[/] {self.deploying} and its nested apps into moto")
            case events.ManifestUploaded(s3_uri):
                self.manifest = s3_uri
            case events.ExecutionStarted(arn):
                console.print(f"[bold]Execution started[/] {arn.rsplit(':', 1)[-1]} by {self.manifest}")
                self.phase_started = time.monotonic()
            case events.TuningStarted(name, request, warm_start_trials):
                config = request["HyperParameterTuningJobConfig"]
                limits = config["ResourceLimits"]
                parents = [
                    parent["HyperParameterTuningJobName"]
                    for parent in request.get("WarmStartConfig", {}).get("ParentHyperParameterTuningJobs", [])
                ]
                console.print(
                    f"[bold]Tuning[/] {name}: {config['Strategy']}, "
                    f"{limits.get('MaxNumberOfTrainingJobs', 'grid')} jobs, {limits['MaxParallelTrainingJobs']} in parallel, "
                    f"objective {config['HyperParameterTuningJobObjective']['Type']} "
                    f"{config['HyperParameterTuningJobObjective']['MetricName']}"
                    + (
                        f"; warm start from {', '.join(parents)} ({warm_start_trials} of their training jobs)"
                        if parents
                        else ""
                    )
                )
                self.progress.start()
                self.task = self.progress.add_task(
                    "training jobs", total=limits.get("MaxNumberOfTrainingJobs")
                )
            case events.TrainingStarted():
                pass  # the job is reported when it finishes, with its objective
            case events.TrainingFinished():
                if event.objective is not None:
                    tuned = " ".join(
                        f"{key}={value[:8]}" for key, value in sorted(event.hyperparameters.items())
                    )
                    line = f"  {event.name[-12:]} [green]{event.metric}={event.objective:.4f}[/]  {tuned}"
                else:
                    colour = "yellow" if event.status == "Stopped" else "red"
                    line = f"  {event.name[-12:]} [{colour}]{event.status}: {event.reason}[/]"
                self.progress.console.print(line, no_wrap=True, overflow="ellipsis")
                if self.task is not None:
                    self.progress.advance(self.task)
            case events.TuningFinished(status=status, reason=reason):
                self.progress.stop()
                self.timings["tuning"] = time.monotonic() - self.phase_started
                self.phase_started = time.monotonic()
                console.print(f"[bold]Tuning {status}[/]" + (f": {reason}" if reason else ""))
            case events.EndpointDeploying(name, config_name, url):
                console.print(f"[bold]Deploying endpoint[/] {name} with {config_name} at {url}")
            case events.StateEntered(execution, state):
                if self.verbose:
                    self.progress.console.print(f"  [dim]{execution}[/] → {state}")
            case events.EndpointStatus(name, status, reason):
                console.print(f"  endpoint {name}: {status}" + (f" ({reason})" if reason else ""))
            case events.TrafficShifted(name, config_name, green_share):
                console.print(f"  endpoint {name}: {green_share:.0%} of traffic on {config_name}")
            case events.EndpointRolledBack(name, config_name, _, reason):
                console.print(f"  endpoint {name}: [red]rolled back[/] to {config_name} ({reason})")
            case events.DataCaptureFailed(name, reason):
                console.print(f"  endpoint {name}: [red]data capture lost[/]: {reason}")
            case events.NotificationPublished(attributes, message):
                if attributes.get("stage") != "RunStarted":  # the execution's start is already told
                    self.progress.console.print(notification_line(attributes, message))
            case _:
                assert_never(event)

    def deployment_done(self) -> None:
        self.timings["deployment"] = time.monotonic() - self.phase_started


def notification_line(attributes: dict[str, str], message: dict[str, Any]) -> str:
    """A stage notification in one line: its attributes, and for a failure the step and error (any other
    message, such as a rejected manifest's, shortened)."""
    if "stage" not in attributes:
        return f"  [magenta]notification[/] {json.dumps(message)[:200]}"
    line = (
        f"  [magenta]notification[/] {attributes['workflow']} [bold]{attributes['stage']}[/] "
        f"{attributes['status']} endpoint {attributes['endpoint']}"
    )
    if attributes["stage"] == "Failed":
        line += f": {message.get('step')} {message.get('error')}"
    return line


def area_under_roc(labels: list[bool], scores: list[float]) -> float:
    """Mann-Whitney AUC with ties counted half, as H2O computes it on a full validation set: from the ranks of the
    positives among all scores (tied scores share their average rank), in O(n log n)."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise PipelineError("AUC needs both classes in the validation set")
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    positive_rank_sum, start = 0.0, 0
    for _, tied in itertools.groupby(ranked, key=lambda pair: pair[0]):
        tied_labels = [label for _, label in tied]
        average_rank = start + (len(tied_labels) + 1) / 2
        positive_rank_sum += average_rank * sum(tied_labels)
        start += len(tied_labels)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def invocation_bodies(
    csv_body: bytes, max_bytes: int, max_rows: int = SCORING_ROWS_PER_REQUEST
) -> list[bytes]:
    """The CSV as requests an endpoint takes: each its header row and at most ``max_rows`` rows in ``max_bytes``
    (InvokeEndpoint refuses a larger body; the rows bound the response, which has the same limit)."""
    header, *rows = csv.reader(io.StringIO(csv_body.decode()))

    def line(cells: list[str]) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(cells)
        return text.getvalue()

    head = line(header).encode()
    bodies, batch, size = [], [head], len(head)
    for number, cells in enumerate(rows, start=1):
        encoded = line(cells).encode()
        if len(head) + len(encoded) > max_bytes:
            raise PipelineError(
                f"row {number} of the validation set is over InvokeEndpoint's {max_bytes} bytes"
            )
        if len(batch) > max_rows or size + len(encoded) > max_bytes:
            bodies.append(b"".join(batch))
            batch, size = [head], len(head)
        batch.append(encoded)
        size += len(encoded)
    if len(batch) > 1:
        bodies.append(b"".join(batch))
    return bodies


def score_validation(
    url: str, body: bytes, metadata: dict[str, Any]
) -> tuple[list[dict[str, Any]], float | None]:
    """Score the validation set (as CSV: ``channel_files.csv_bytes``) through the endpoint's HTTP API, in requests
    within InvokeEndpoint's limits, with each row's feature contributions but for a multinomial model (which has
    none); the AUC for a binomial model."""
    import urllib.request

    from h2o_sagemaker_local.hosting import CUSTOM_ATTRIBUTES_HEADER, MAX_INVOCATION_BYTES

    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    if metadata["model_category"] != "Multinomial":
        headers[CUSTOM_ATTRIBUTES_HEADER] = "contributions=true"
    predictions: list[dict[str, Any]] = []
    for request_body in invocation_bodies(body, MAX_INVOCATION_BYTES):
        request = urllib.request.Request(
            f"{url}/invocations", data=request_body, method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions += json.loads(response.read())["predictions"]
    if metadata["model_category"] != "Binomial":
        return predictions, None
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    positive = metadata["target_domain"][1]
    labels = [row[metadata["target"]] == positive for row in rows]
    scores = [prediction["probabilities"][positive] for prediction in predictions]
    return predictions, area_under_roc(labels, scores)


def tuned_names(hyperparameters: dict[str, Any]) -> set[str]:
    ranges = hyperparameters.get("parameterRanges", {})
    return {item["Name"] for kind in ranges.values() for item in kind}


def summarize(
    pipeline: LocalPipeline,
    result: RunResult,
    reporter: Reporter,
    options: argparse.Namespace,
    workdir: Path,
    tuned: set[str],
    started: float,
) -> int:
    """The run's outcome: a failure in a few lines (the full record in the execution history), or the final
    status, the total time (from the command's start) and the summary; the exit code."""
    history_path = workdir / "execution-history.json"
    history_path.write_text(json.dumps(result.history, indent=2, default=str))
    if pipeline.api_faults:
        console.print(f"API faults injected: {pipeline.api_faults.summary()}")
    elapsed = time.monotonic() - started
    if result.status != "SUCCEEDED":
        failure = describe_failure(result.error, result.cause, pipeline.notifications())
        console.print(f"[bold red]Execution {result.status}[/] after {elapsed:.1f} s", soft_wrap=True)
        console.print(f"  failed step: {failure.workflow} {failure.step} ({failure.error})", soft_wrap=True)
        console.print(f"  root cause: {failure.reason}", soft_wrap=True)
        console.print(f"  full record: {history_path}", soft_wrap=True)
        return 1
    console.print(f"[bold green]Execution SUCCEEDED[/] in {elapsed:.1f} s")
    if result.output is None:
        raise PipelineError(f"execution {result.execution_arn} succeeded with no output")
    model, package = result.output["model"], result.output["modelPackage"]
    version = (
        f"{package['modelPackageVersion']} ({package['modelApprovalStatus']})  {package['modelPackageArn']}"
    )
    if not result.output["deployed"]:
        why = (
            "waiting for approval: approving it deploys it (aws sagemaker update-model-package --model-package-arn "
            f"{package['modelPackageArn']} --model-approval-status Approved)"
            if result.output.get("awaitingApproval")
            else f"rejected by the quality gate: {result.output['qualityGate']['reason']}"
        )
        console.print(f"[bold]Model version {version} not deployed[/]: {why}")
        console.print(f"  execution history: {history_path}")
        return 0
    endpoint_output = result.output["endpoint"]
    endpoint = pipeline.sagemaker.endpoints[endpoint_output["endpointName"]]
    metadata_path = endpoint.workdir / endpoint_output["endpointConfigName"] / "model" / "model-metadata.json"
    metadata = json.loads(metadata_path.read_text())
    predictions: list[dict[str, Any]] = []
    endpoint_auc = None
    if options.validation is not None:
        started = time.monotonic()
        validation = channel_files.csv_bytes(options.validation)
        predictions, endpoint_auc = score_validation(endpoint.proxy.url, validation, metadata)
        reporter.timings["scoring"] = time.monotonic() - started
        from h2o_sagemaker_local.report import save_scoring

        save_scoring(workdir, validation, predictions)

    table = Table(title="Local run", show_header=False)
    table.add_row("best training job", model["trainingJobName"])
    table.add_row("objective", f"{model['objective']['MetricName']} = {model['objective']['Value']:.6f}")
    chosen = {name: value for name, value in model["hyperParameters"].items() if name in tuned}
    table.add_row("tuned hyperparameters", json.dumps(chosen, sort_keys=True))
    table.add_row("model", f"{model['modelName']}  ({model['modelDataUrl']})")
    table.add_row("model version", version)
    table.add_row("endpoint", f"{endpoint_output['endpointName']}  {endpoint.proxy.url}/invocations")
    table.add_row(
        "validation rows scored",
        str(len(predictions))
        if options.validation is not None
        else "none: the manifest has no validation channel",
    )
    if endpoint_auc is not None:
        table.add_row("validation AUC via endpoint", f"{endpoint_auc:.6f}")
    captured = save_captured_data(pipeline, endpoint_output["endpointName"], workdir)
    if captured is not None:
        table.add_row("data capture", captured)
    table.add_row(
        "timings", ", ".join(f"{name} {seconds:.1f} s" for name, seconds in reporter.timings.items())
    )
    table.add_row("execution history", str(history_path))
    table.add_row("logs", f"{workdir / 'logs'} (Lambda functions, moto), {workdir / 'training-jobs'}")
    console.print(table)
    if not predictions:
        return 0
    shown = [
        {key: value for key, value in item.items() if key != "contributions"} for item in predictions[:3]
    ]
    console.print("first predictions: " + json.dumps(shown))
    if metadata["model_category"] == "Binomial" and "threshold" in metadata:
        positive = metadata["target_domain"][1]
        console.print(
            f"  (label {positive} when the probability of {positive} is at least {metadata['threshold']:.4f}, "
            "the model's max-F1 threshold, not 0.5)"
        )
    if predictions and "contributions" in predictions[0]:
        features = {
            name: value for name, value in predictions[0]["contributions"].items() if name != "BiasTerm"
        }
        largest = sorted(features, key=lambda name: abs(features[name]), reverse=True)[:3]
        console.print(
            "  the first, explained (largest feature contributions, H2O's TreeSHAP): "
            + ", ".join(f"{name} {features[name]:+.3f}" for name in largest)
        )
    return 0


def save_captured_data(pipeline: LocalPipeline, endpoint_name: str, workdir: Path) -> str | None:
    """What the endpoint has captured, copied from the local S3 (gone when the run ends) to the work folder's
    s3/<bucket>/<key>, where the report reads it; a line for the summary, None when the endpoint captures nothing."""
    capture = pipeline.sagemaker.endpoints[endpoint_name].describe().get("DataCaptureConfig")
    if not capture:
        return None
    import boto3  # with the run's modules: not for --help

    from h2o_sagemaker_local.data_capture import endpoint_folder
    from h2o_sagemaker_local.report import copy_in_work_folder
    from h2o_sagemaker_local.training import split_s3_uri

    pipeline.sagemaker.write_captured_data(endpoint_name)
    folder = f"{endpoint_folder(capture['DestinationS3Uri'], endpoint_name)}/"
    bucket, prefix = split_s3_uri(folder)
    s3 = boto3.client("s3", region_name=REGION)
    records = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            path = copy_in_work_folder(workdir, f"s3://{bucket}/{item['Key']}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            records += body.count(b"\n")
    return f"{records} request(s) in {folder}, copied to {copy_in_work_folder(workdir, folder)}"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="h2o-sagemaker-local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run tuning -> deployment -> predictions locally")
    run.add_argument(
        "--ml-parameters", type=Path, help="ml-parameters.json (default: the example, filled for local use)"
    )
    run.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="the checkout to deploy: this folder or the nearest above it with the parent template.yaml "
        "(default: the current folder)",
    )
    # The example files' defaults are the project's, known once --project-dir is.
    for option, example, what in EXAMPLE_FILES:
        run.add_argument(option, type=Path, help=f"{what} (default: examples/{example} of the project)")
    run.add_argument("--max-jobs", type=int, help="override maxNumberOfTrainingJobs")
    run.add_argument("--max-parallel", type=int, help="override maxParallelTrainingJobs")
    run.add_argument(
        "--early-stopping", choices=("Off", "Auto"), help="override trainingJobEarlyStoppingType"
    )
    run.add_argument("--keep-endpoint", action="store_true", help="keep serving the endpoint until Ctrl-C")
    run.add_argument(
        "--verbose", action="store_true", help="also print each state every execution enters, as it enters it"
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the run report (report.html in the work folder)",
    )
    run.add_argument(
        "--workdir", type=Path, help="where jobs, models and logs go (default: a new temporary folder)"
    )
    run.add_argument(
        "--seed",
        type=int,
        help="seed for the hyperparameter search, unless ml-parameters' tuningRandomSeed sets it (and the API faults)",
    )
    run.add_argument(
        "--api-faults",
        type=float,
        default=0.0,
        metavar="RATE",
        help="fail this fraction of the state machines' and Lambdas' AWS calls with the errors AWS returns "
        "(throttling, resource limits, internal errors); default 0",
    )
    run.add_argument(
        "--containers",
        action="store_true",
        help="run training jobs and endpoints in the built images (make images), as SageMaker does; slower",
    )
    report = commands.add_parser(
        "report", help="write the run report (report.html) of a run's work folder again, after the run"
    )
    report.add_argument(
        "workdir", type=Path, help="the work folder of a run (with its execution-history.json)"
    )
    options = parser.parse_args(argv)
    if options.command == "report":
        if not (options.workdir / "execution-history.json").is_file():
            parser.exit(
                2,
                f"{parser.prog}: error: {options.workdir} is not the work folder of a run "
                "(no execution-history.json)\n",
            )
        return options
    try:
        options.project = find_project(options.project_dir)
        check_options(options)
    except (ProjectNotFound, OptionError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return options


T = TypeVar("T")


class OptionError(ValueError):
    """An option the run cannot use; the message names it (printed as one line, exit code 2)."""


def _readable(option: str, path: Path, read: Callable[[Path], T]) -> T:
    if not path.exists():
        raise OptionError(f"{option} {path} does not exist")
    if not path.is_file():
        raise OptionError(f"{option} {path} is not a file")
    try:
        return read(path)
    except OSError as error:
        raise OptionError(f"{option} {path} cannot be read: {error.strerror}") from None


def _json_file(option: str, path: Path) -> Any:
    try:
        return json.loads(_readable(option, path, Path.read_bytes))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OptionError(f"{option} {path} is not valid JSON: {error}") from None


def _channel_content_type(manifest: Any, ml_parameters: Any, channel: str) -> str | None:
    """The ContentType the run's training jobs give the channel: the manifest channel's contentType, else
    ml-parameters.json's inputContentType, else text/csv; None when the manifest has no such channel."""
    channels = manifest.get("channels") if isinstance(manifest, dict) else None
    default = ml_parameters.get("inputContentType") if isinstance(ml_parameters, dict) else None
    for channel_settings in channels if isinstance(channels, list) else []:
        if isinstance(channel_settings, dict) and channel_settings.get("channelName") == channel:
            return str(channel_settings.get("contentType") or default or channel_files.CSV_CONTENT_TYPE)
    return None


def _data_file(option: str, path: Path, channel: str, content_type: str | None) -> None:
    """A channel's file the trainer can read, in the format its ContentType declares (the trainer refuses a
    Parquet file in a text/csv channel and the other way round): told now, not after a tuning job failed."""
    try:
        kind = _readable(option, path, channel_files.format_of)
    except channel_files.NotChannelData as error:
        raise OptionError(f"{option} {path} {error}") from None
    needed = channel_files.content_type_of(kind)
    if content_type is not None and content_type != needed:
        raise OptionError(
            f"{option} {path} is {kind}, but the {channel} channel's ContentType is {content_type}: set the "
            f'manifest channel\'s "contentType" to "{needed}"'
        )


def _placeholders_filled(option: str, path: Path, document: Any) -> None:
    try:
        parameter_files.fill_placeholders(document, LOCAL_PLACEHOLDERS)
    except parameter_files.PlaceholderWithoutValue as error:
        raise OptionError(
            f"{option} {path}: {error}; the local run fills only "
            f"{', '.join(f'<{name}>' for name in LOCAL_PLACEHOLDERS)} (examples/generate_ml_parameters.py fills "
            "a template for an account)"
        ) from None


def _job_budget(document: Any, key: str) -> int | None:
    value = document.get(key) if isinstance(document, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # the stack's import names a bad value


def check_options(options: argparse.Namespace) -> None:
    """Everything the run can tell about its options before a work folder is made or moto starts: each file
    there and readable (JSON files parse), the job budget consistent, the seed and fault rate in range, the
    work folder usable, the container runtime there when asked for. A parallelism above the job budget that only
    ml-parameters.json sets is capped (and said): the user asked for fewer jobs."""
    validation_given = options.validation is not None
    for option, example, _ in EXAMPLE_FILES:
        name = option.removeprefix("--").replace("-", "_")
        if getattr(options, name) is None:
            setattr(options, name, options.project.examples / example)
    ml_parameters = _json_file(
        "--ml-parameters", options.ml_parameters or options.project.examples / "template-ml-parameters.json"
    )
    if options.ml_parameters:
        _placeholders_filled("--ml-parameters", options.ml_parameters, ml_parameters)
    _json_file("--hyperparameters", options.hyperparameters)
    manifest = _json_file("--manifest", options.manifest)
    _placeholders_filled("--manifest", options.manifest, manifest)
    content_types = {
        channel: _channel_content_type(manifest, ml_parameters, channel)
        for channel in ("training", "validation")
    }
    if content_types["validation"] is None:
        if validation_given:
            raise OptionError(
                f"--validation {options.validation}: the manifest has no validation channel to upload it to"
            )
        options.validation = None  # nothing to upload, nor to score through the endpoint
    for option, path, channel in (
        ("--train", options.train, "training"),
        ("--validation", options.validation, "validation"),
    ):
        if path is not None:
            _data_file(option, path, channel, content_types[channel])
    for name in ("max_jobs", "max_parallel"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be at least 1")
    jobs = options.max_jobs or _job_budget(ml_parameters, "maxNumberOfTrainingJobs")
    parallel = options.max_parallel or _job_budget(ml_parameters, "maxParallelTrainingJobs")
    options.notes = []
    if jobs is not None and parallel is not None and parallel > jobs:
        if options.max_parallel is not None:
            raise OptionError(f"--max-parallel {parallel} is more than the {jobs} training jobs of the run")
        options.max_parallel = jobs
        options.notes.append(
            f"{jobs} training job(s), so {jobs} at a time (ml-parameters.json's maxParallelTrainingJobs is {parallel})"
        )
    if options.seed is not None and not 0 <= options.seed < 2**32:
        raise OptionError("--seed must be from 0 to 4294967295")
    if not 0 <= options.api_faults < 1:
        raise OptionError("--api-faults must be at least 0 and below 1")
    if options.workdir is not None and options.workdir.exists():
        if not options.workdir.is_dir():
            raise OptionError(f"--workdir {options.workdir} is a file, not a folder")
        if any(options.workdir.iterdir()):
            raise OptionError(f"--workdir {options.workdir} is not empty: give a new or empty folder")
    if options.containers:
        try:
            ContainerRuntime.detect(options.project.containers_conf)
        except ContainersUnavailable as error:
            raise OptionError(str(error)) from None


def run(options: argparse.Namespace) -> int:
    from h2o_sagemaker_local.pipeline import LocalPipeline
    from h2o_sagemaker_local.report import TIMINGS_FILE, write_report

    started = time.monotonic()
    ml_parameters, hyperparameters, manifest = local_inputs(options)  # bad files: no work folder made
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="h2o-sagemaker-local-"))
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"work folder: {workdir}")
    for note in options.notes:
        console.print(f"note: {note}")
    reporter = Reporter(verbose=options.verbose)
    pipeline = LocalPipeline(
        workdir,
        listener=reporter,
        seed=options.seed,
        api_fault_rate=options.api_faults,
        containers=options.containers,
        project=options.project,
    )

    def interrupt(signum: int, frame: object) -> None:
        pipeline.interrupted.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, interrupt)
    with pipeline:
        try:
            deploying = time.monotonic()
            pipeline.deploy(ml_parameters, hyperparameters)
            deployed_in = time.monotonic() - deploying
            result = pipeline.run(
                manifest,
                {"training": options.train}
                | ({"validation": options.validation} if options.validation else {}),
                "manifests/local-run/manifest.json",
            )
            reporter.deployment_done()
            code = summarize(
                pipeline, result, reporter, options, workdir, tuned_names(hyperparameters), started
            )
            timings = {"stack deployment (local)": deployed_in}
            if "scoring" in reporter.timings:
                timings["scoring through the endpoint"] = reporter.timings["scoring"]
            (workdir / TIMINGS_FILE).write_text(json.dumps(timings))
            if not options.no_report:
                console.print(f"report: {write_report(workdir)}", soft_wrap=True)
            if code == 0 and options.keep_endpoint:
                console.print("[bold]Endpoint kept.[/] Press Ctrl-C to stop it.")
                pipeline.interrupted.wait()
                console.print("\nStopping the endpoint.")
            return code
        except (RunInterrupted, KeyboardInterrupt):
            console.print("\nStopping: training jobs and endpoints are shut down.")
            return 130
        finally:
            if reporter.progress.live.is_started:  # stopping a stopped display prints an empty line
                reporter.progress.stop()


def main(argv: list[str] | None = None) -> int:
    # Bind the console to the real stdout now: Lambda calls redirect sys.stdout to their log files.
    console.file = sys.stdout
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    if options.command == "report":
        from h2o_sagemaker_local.report import ReportError, write_report

        try:
            console.print(f"report: {write_report(options.workdir)}", soft_wrap=True)
        except ReportError as error:
            console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
            return 2
        return 0
    try:
        return run(options)
    except (PipelineError, DeploymentFailed) as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
