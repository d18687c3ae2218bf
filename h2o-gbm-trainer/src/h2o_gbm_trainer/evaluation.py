"""The `evaluate` console script: a trained model scored on a validation channel, as a SageMaker Processing job.

The quality gate runs it on the deployed model's artifact and this run's validation rows, so the deployed model
is measured on the same rows, and by the same metric code (the exported MOJO scored with `collect_metrics`), as
the trainer measured the tuned model. Layout under `$SAGEMAKER_BASE_DIR` (default /opt/ml), the ProcessingInputs'
and ProcessingOutputs' LocalPaths:

- `processing/input/model/model.tar.gz`: a training job's artifact (`model.zip`, `model-metadata.json`, ...)
- `processing/input/validation/`: the validation files (CSV with a header, gzip-compressed or not, or Parquet)
- `processing/evaluation/evaluation.json`: written, e.g. `{"metrics": {"validation:auc": 0.91, ...}, ...}`
- `output/message`: the one-line reason on failure (DescribeProcessingJob's ExitMessage)

Exit codes as `train`'s: 0 done, 2 bad input (artifact or data), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import h2o

from .cli import run_reporting_failure
from .cluster import local_h2o
from .data import DeclaredFormat, checked_format, csv_bytes, data_files, import_frame, read_header
from .environment import BASE_DIR_ENV, MAX_MEM_SIZE_ENV, VALIDATION_CHANNEL, Environment
from .errors import TrainingInputError
from .metrics import METRICS_BY_CATEGORY, collect_metrics, metric_lines
from .training import METADATA_FILE

logger = logging.getLogger("h2o_gbm_trainer")

EVALUATION_FORMAT_VERSION = 1


def model_archive(env: Environment) -> Path:
    return env.base_dir / "processing" / "input" / "model" / "model.tar.gz"


def validation_dir(env: Environment) -> Path:
    return env.base_dir / "processing" / "input" / VALIDATION_CHANNEL


def evaluation_file(env: Environment) -> Path:
    return env.base_dir / "processing" / "evaluation" / "evaluation.json"


def message_file(env: Environment) -> Path:
    return env.output_dir / "message"


def _unpack_model(archive: Path, folder: Path) -> dict[str, Any]:
    if not archive.is_file():
        raise TrainingInputError(f"missing {archive} (the model artifact to evaluate)")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise TrainingInputError(f"{archive.name} is not a readable .tar.gz: {error}") from None
    metadata_path = folder / METADATA_FILE
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        mojo = folder / metadata["mojo_file"]
        category = metadata["model_category"]
        features, target = metadata["features"], metadata["target"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainingInputError(
            f"{archive.name} holds no readable {METADATA_FILE} of this trainer: {type(error).__name__}: {error}"
        ) from None
    if category not in METRICS_BY_CATEGORY or not mojo.is_file() or not isinstance(target, str):
        raise TrainingInputError(f"{archive.name}: {METADATA_FILE} names no {mojo.name} MOJO model to score")
    return {"mojo": mojo, "category": category, "features": features, "target": target}


def _validation_files(folder: Path) -> list[Path]:
    files = data_files(folder)
    if not files:
        raise TrainingInputError(f"channel {VALIDATION_CHANNEL!r} has no files in {folder}")
    return files


def _check_columns(columns: list[str], model: dict[str, Any]) -> None:
    needed = [model["target"], *(item["name"] for item in model["features"])]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise TrainingInputError(f"channel {VALIDATION_CHANNEL!r} lacks the model's column {missing[0]!r}")


def _checked_header(files: list[Path], model: dict[str, Any]) -> list[str] | None:
    """A CSV channel's header, checked before the JVM starts, so a validation channel without the model's columns
    fails in a second; None for Parquet files (checked once H2O has read them)."""
    if checked_format(VALIDATION_CHANNEL, files, DeclaredFormat()):
        return None
    header = read_header(files[0], VALIDATION_CHANNEL)
    _check_columns(header, model)
    return header


def _load_validation(files: list[Path], header: list[str] | None, model: dict[str, Any]) -> h2o.H2OFrame:
    """Parsed as the trainer parsed it: the model's enum columns as categories, a class target as a factor."""
    target = model["target"]
    column_types = {item["name"]: item["type"] for item in model["features"]}
    if header is not None:
        csv_types = {name: kind for name, kind in column_types.items() if name in header}
        frame = import_frame(files, VALIDATION_CHANNEL, csv_column_types=csv_types)
    else:
        frame = import_frame(files, VALIDATION_CHANNEL, csv_column_types=None)
        _check_columns(frame.names, model)
        for name, kind in column_types.items():
            if kind == "enum" and frame.types[name] != "enum":
                frame[name] = frame[name].asfactor()
    if model["category"] != "Regression":
        frame[target] = frame[target].asfactor()
    return frame


def evaluate(env: Environment) -> dict[str, Any]:
    """Score the artifact on the validation channel and write evaluation.json; return what was written."""
    files = _validation_files(validation_dir(env))
    with tempfile.TemporaryDirectory(prefix="h2o-gbm-evaluate-") as unpacked:
        model = _unpack_model(model_archive(env), Path(unpacked))
        header = _checked_header(files, model)
        with local_h2o(env.max_mem_bytes, csv_bytes(files)):
            frame = _load_validation(files, header, model)
            scored = h2o.import_mojo(str(model["mojo"]))
            metrics = collect_metrics(scored.model_performance(test_data=frame), model["category"])
            rows = frame.nrows
    evaluation = {
        "format_version": EVALUATION_FORMAT_VERSION,
        "model_category": model["category"],
        "rows": rows,
        # Named as the trainer's metric lines and the tuner's objective (validation:auc).
        "metrics": {f"{VALIDATION_CHANNEL}:{name}": value for name, value in metrics.items()},
    }
    output = evaluation_file(env)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    for line in metric_lines(VALIDATION_CHANNEL, metrics):
        print(line, flush=True)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="evaluate",
        description=f"Score processing/input/model/model.tar.gz on processing/input/validation/ under "
        f"${BASE_DIR_ENV} (default /opt/ml), writing processing/evaluation/evaluation.json. "
        f"JVM heap: ${MAX_MEM_SIZE_ENV}.",
    ).parse_known_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s [evaluate] %(message)s"
    )
    env = Environment.from_env()
    return run_reporting_failure(lambda: evaluate(env), message_file(env), "evaluation")
