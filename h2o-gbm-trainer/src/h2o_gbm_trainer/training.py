"""One training job: hyperparameters -> private H2O JVM -> data -> GBM (checkpointed) -> MOJO + metadata."""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2o
from h2o.estimators import H2OGradientBoostingEstimator
from h2o.exceptions import H2OResponseError

from . import interruption
from .checkpoints import CheckpointStore, fingerprint, tree_count
from .cluster import LocalH2O, connect, local_h2o
from .data import Channels, TrainingData, find_channels, load_training_data
from .distributed import (
    Hosts,
    finish_as_leader,
    plan_cluster,
    read_hosts,
    serve_as_member,
    wait_for_cloud,
    watching_members,
)
from .environment import TRAINING_CHANNEL, VALIDATION_CHANNEL, Environment
from .errors import TrainingInputError
from .hyperparameters import Hyperparameters, decode_hyperparameters
from .metrics import METRICS_BY_CATEGORY, collect_metrics, metric_lines
from .progress import ScoringProgress

logger = logging.getLogger(__name__)

MOJO_FILE = "model.zip"
GENMODEL_JAR = "h2o-genmodel.jar"
METADATA_FILE = "model-metadata.json"
METADATA_FORMAT_VERSION = 1
FIRST_STEP_TREES = 10  # a first checkpoint soon, and the speed measurement that sizes the next steps


@dataclass
class TrainingReport:
    """What the job did, for callers such as the benchmark; seconds per phase in `seconds`."""

    trees: int = 0
    resumed_from_trees: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def read_hyperparameters(env: Environment) -> Hyperparameters:
    path = env.hyperparameters_file
    if not path.is_file():
        raise TrainingInputError(f"missing {path} (the job's hyperparameters)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError and too-long integers all are
        raise TrainingInputError(f"input/config/hyperparameters.json is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise TrainingInputError("input/config/hyperparameters.json must be a JSON object of strings")
    return decode_hyperparameters(raw)


def _rejected_parameters(error: H2OResponseError) -> TrainingInputError | None:
    """H2O's 'ERRR on field: _min_rows: ...' validation messages as one line naming the hyperparameters."""
    message = str(getattr(error.args[0], "msg", "")) if error.args else ""
    problems = re.findall(r"ERRR on field: _(\w+): (.+?)(?=\s*ERRR on field:|$)", message, flags=re.DOTALL)
    if not problems:
        return None
    return TrainingInputError(
        "H2O rejected the hyperparameters: "
        + "; ".join(f"{name}: {' '.join(reason.split())}" for name, reason in problems)
    )


def reported_channel(has_validation: bool) -> str:
    """The channel whose metrics the job prints: validation when there is one."""
    return VALIDATION_CHANNEL if has_validation else TRAINING_CHANNEL


def _fit(
    hyperparameters: Hyperparameters,
    data: TrainingData,
    ntrees: int,
    checkpoint_id: str | None,
    progress: ScoringProgress,
) -> Any:
    model_id = f"gbm-{uuid.uuid4().hex}"  # known before the build, to read its scoring rounds as they come
    estimator = H2OGradientBoostingEstimator(
        **hyperparameters.gbm_parameters(), ntrees=ntrees, checkpoint=checkpoint_id, model_id=model_id
    )
    try:
        with progress.watching(model_id):
            estimator.train(
                x=data.feature_columns,
                y=data.target,
                training_frame=data.training,
                validation_frame=data.validation,
            )
    except H2OResponseError as error:
        rejected = _rejected_parameters(error)
        if rejected:
            raise rejected from None
        raise
    return estimator


def build_model(
    hyperparameters: Hyperparameters,
    data: TrainingData,
    checkpoints: CheckpointStore | None,
    report: TrainingReport,
) -> Any:
    """Grow the GBM in steps of about `checkpoint_interval_seconds`, saving a checkpoint after each step.

    Every step is a separate H2O build (setup, scoring, saving), so steps are sized by time, not trees: the
    first step builds FIRST_STEP_TREES trees, later ones as many as the measured speed fits in the interval.
    Without a checkpoint folder the whole model is built in one step. Each scoring round's metric lines are
    printed as the model grows (progress.py)."""
    model, trees = None, 0
    if checkpoints:
        restored = checkpoints.restore()
        if restored:
            model, trees = restored.model, restored.trees
            report.resumed_from_trees = trees
            logger.info("resumed from checkpoint: %d trees already built", trees)
            if restored.finished or trees == hyperparameters.ntrees:
                return model
    progress = ScoringProgress(reported_channel(data.validation is not None), trees_reported=trees)
    step = FIRST_STEP_TREES if checkpoints else hyperparameters.ntrees
    while True:
        goal = min(trees + step, hyperparameters.ntrees)
        started = time.perf_counter()
        model = _fit(hyperparameters, data, goal, model.model_id if model else None, progress)
        built = tree_count(model)
        seconds_per_tree = (time.perf_counter() - started) / max(built - trees, 1)
        step = max(1, int(hyperparameters.checkpoint_interval_seconds / seconds_per_tree))
        finished = built < goal or goal == hyperparameters.ntrees  # fewer trees than asked: stopped early
        if checkpoints:
            checkpoints.save(model, finished=finished)
            logger.info("checkpoint saved: %d of %d trees", built, hyperparameters.ntrees)
        interruption.check()  # a SIGTERM whose exception a finalizer swallowed stops the job here
        if finished:
            return model
        trees = built


def _features(model: Any, target: str) -> list[dict[str, Any]]:
    """The columns the model uses, in its order (H2O's output lists the response last)."""
    output = model._model_json["output"]
    return [
        {"name": name, "type": "enum" if kind == "Enum" else "numeric", "domain": domain}
        for name, kind, domain in zip(output["names"], output["column_types"], output["domains"], strict=True)
        if name != target
    ]


def _scoring_history(model: Any) -> list[dict[str, float]]:
    """H2O's scoring history as rows of its numeric columns (number_of_trees, training_auc, validation_auc ...)."""
    table = model._model_json["output"].get("scoring_history")
    if table is None:
        return []
    columns = list(table.col_header)
    return [
        {
            name: float(value)
            for name, value in zip(columns, row, strict=True)
            if name not in ("", "timestamp", "duration")
            and isinstance(value, int | float)
            and not math.isnan(value)
        }
        for row in table.cell_values
    ]


def _variable_importances(model: Any) -> list[dict[str, Any]]:
    return [
        {"variable": name, "relative_importance": relative, "scaled_importance": scaled, "percentage": share}
        for name, relative, scaled, share in model.varimp() or []
    ]


def export_model(
    model: Any, data: TrainingData, hyperparameters: Hyperparameters, model_dir: Path
) -> dict[str, Any]:
    """Write the MOJO, the genmodel jar and model-metadata.json (the predictor's contract) to model_dir."""
    category = model._model_json["output"]["model_category"]
    if category not in METRICS_BY_CATEGORY:
        raise TrainingInputError(
            f"the target {data.target!r} gives a {category} model; expected a class or a number"
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    written = Path(
        model.download_mojo(path=str(model_dir), get_genmodel_jar=True, genmodel_name=GENMODEL_JAR)
    )
    written.replace(model_dir / MOJO_FILE)
    # Metrics come from the exported MOJO, the model that gets deployed: after a checkpoint restart H2O's
    # in-memory model re-scores a frame differently (validation AUC 0.9085 against the MOJO's 0.9123, measured).
    # Uploaded rather than imported by path: in a cluster of several instances any node may read an imported file,
    # and the model folder is the leader's alone.
    shipped = h2o.upload_mojo(str(model_dir / MOJO_FILE))
    validation = data.validation
    metadata = {
        "format_version": METADATA_FORMAT_VERSION,
        "mojo_file": MOJO_FILE,
        "genmodel_jar": GENMODEL_JAR,
        "h2o_version": h2o.__version__,
        "algorithm": "gbm",
        "model_category": category,
        "target": data.target,
        "target_domain": None if category == "Regression" else model._model_json["output"]["domains"][-1],
        "input_columns": data.input_columns,
        "features": _features(model, data.target),
        "metrics": {
            VALIDATION_CHANNEL: (
                collect_metrics(shipped.model_performance(test_data=validation), category)
                if validation is not None
                else None
            ),
            TRAINING_CHANNEL: collect_metrics(shipped.model_performance(test_data=data.training), category),
        },
        "hyperparameters": hyperparameters.as_json(),
        # The probability of the positive class from which a row is labelled positive: H2O's max-F1 threshold
        # (on the validation channel when there is one), which the MOJO's labels use; null but for binomial.
        "threshold": model._model_json["output"].get("default_threshold") if category == "Binomial" else None,
        "variable_importances": _variable_importances(model),
        "scoring_history": _scoring_history(model),
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def _log_jvm_up(report: TrainingReport, server: LocalH2O) -> None:
    logger.info(
        "H2O JVM up in %.2f s (%s port %d; start-up archive: %s)",
        report.seconds["jvm_start"],
        server.ip,
        server.port,
        server.startup_archive,
    )


def _load_train_and_export(
    env: Environment, hyperparameters: Hyperparameters, channels: Channels, report: TrainingReport
) -> None:
    """The job's work on a connected H2O: its data, the GBM (checkpointed), the model files."""
    started = time.perf_counter()
    data = load_training_data(channels, hyperparameters)
    report.seconds["data_load"] = time.perf_counter() - started
    validation_rows = data.validation.nrows if data.validation is not None else 0
    logger.info(
        "data loaded in %.2f s: training %d rows x %d columns, validation %d rows",
        report.seconds["data_load"],
        data.training.nrows,
        data.training.ncols,
        validation_rows,
    )

    checkpoints = None
    if env.checkpoint_dir.is_dir():
        folder = env.checkpoint_dir / env.job_name if env.job_name else env.checkpoint_dir
        folder.mkdir(exist_ok=True)
        checkpoints = CheckpointStore(
            folder, fingerprint(channels.fingerprint, hyperparameters.as_json()), hyperparameters.ntrees
        )
    logger.info("training started: up to %d trees", hyperparameters.ntrees)
    started = time.perf_counter()
    model = build_model(hyperparameters, data, checkpoints, report)
    report.trees = tree_count(model)
    report.seconds["train"] = time.perf_counter() - started
    logger.info("training finished in %.2f s: %d trees", report.seconds["train"], report.trees)

    started = time.perf_counter()
    report.metadata = export_model(model, data, hyperparameters, env.model_dir)
    report.seconds["export"] = time.perf_counter() - started
    logger.info("model exported in %.2f s to %s", report.seconds["export"], env.model_dir)


def _train_in_cluster(
    env: Environment,
    hosts: Hosts,
    hyperparameters: Hyperparameters,
    channels: Channels,
    report: TrainingReport,
) -> None:
    """One instance of a multi-instance job (distributed.py): the leader trains, a member lends its node."""
    started = time.monotonic()
    timeout = env.join_timeout_seconds
    plan = plan_cluster(hosts, env.job_name, env.cluster_base_port, started, timeout)
    role = "leader" if hosts.is_leader else f"member (leader {hosts.leader})"
    logger.info("instance %s of %d, the cluster's %s: %s", hosts.current, hosts.count, role, plan.describe())
    with local_h2o(
        env.max_mem_bytes,
        channels.csv_bytes,
        network=plan.network(),
        connected=False,
        may_record_archive=hosts.is_leader,
    ) as server:
        report.seconds["jvm_start"] = time.monotonic() - started
        _log_jvm_up(report, server)
        size = wait_for_cloud(server, plan, started, timeout)
        report.seconds["cloud"] = time.monotonic() - started
        logger.info("H2O cloud of %d nodes formed in %.2f s (%s)", size, report.seconds["cloud"], plan.name)
        if not hosts.is_leader:
            serve_as_member(server, plan)
            logger.info("the leader %s finished: this instance leaves the H2O cluster", hosts.leader)
            return
        connect(server)
        with watching_members(plan, server):
            _load_train_and_export(env, hyperparameters, channels, report)
        finish_as_leader(server, plan)


def train(env: Environment) -> TrainingReport:
    """Run one job under `env`; raise TrainingError (or TrainingInputError) with the failure reason.

    With several hosts in resourceconfig.json this instance joins the job's H2O cluster (distributed.py): only the
    leader writes the model and prints the metric lines."""
    report = TrainingReport()
    hyperparameters = read_hyperparameters(env)
    channels = find_channels(env, hyperparameters)  # every instance: bad input fails them all at once
    hosts = read_hosts(env)
    if hosts.count > 1:
        _train_in_cluster(env, hosts, hyperparameters, channels, report)
        if not hosts.is_leader:
            return report
    else:
        started = time.perf_counter()
        with local_h2o(env.max_mem_bytes, channels.csv_bytes) as server:
            report.seconds["jvm_start"] = time.perf_counter() - started
            _log_jvm_up(report, server)
            _load_train_and_export(env, hyperparameters, channels, report)

    channel = reported_channel(channels.validation is not None)
    for line in metric_lines(channel, report.metadata["metrics"][channel]):
        print(line, flush=True)
    return report
