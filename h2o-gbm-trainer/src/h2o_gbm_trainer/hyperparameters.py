"""Decode SageMaker's hyperparameters (a JSON object of strings) into one typed, validated object.

Accepted: the H2O GBM parameters below, the trainer's own settings as plain keys, and the original system's
`training` value, a Python-dict-looking string such as
`"{'classification': 'true', 'target': 'Survived', 'ignored_columns': 'PassengerId,Name'}"`.
Plain keys override the same setting inside `training`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import TrainingInputError

# Keys SageMaker adds on its own (e.g. `_tuning_objective_metric` from the tuner, `sagemaker_*` from the SDK).
RESERVED_KEY_PREFIXES = ("_", "sagemaker_")
TRAINING_DICT_KEY = "training"
TRAINING_DICT_SETTINGS = (
    "target",
    "classification",
    "distribution",
    "ignored_columns",
    "categorical_columns",
)
# Trainer settings that are not H2O estimator parameters.
TRAINER_SETTINGS = (
    "target",
    "classification",
    "ignored_columns",
    "categorical_columns",
    "checkpoint_interval_seconds",
)


def _column_list(value: object) -> object:
    """'a, b,,a' -> ('a', 'b'): comma-separated strings as SageMaker passes them; lists are taken as they are."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        names = [str(name).strip() for name in value]
        return tuple(dict.fromkeys(name for name in names if name))
    return value


def _h2o_spelling(choices: tuple[str, ...]) -> BeforeValidator:
    """Accept any letter case ('auc', 'AUC') and hand H2O its own spelling."""
    by_lower = {choice.lower(): choice for choice in choices}

    def canonical(value: object) -> object:
        return by_lower.get(value.strip().lower(), value) if isinstance(value, str) else value

    return BeforeValidator(canonical)


# The choices H2O accepts, as types (pydantic validates them) and as tuples (for their spelling).
DistributionName = Literal[
    "AUTO", "bernoulli", "quasibinomial", "multinomial", "gaussian", "poisson", "gamma", "tweedie",
    "laplace", "quantile", "huber",
]  # fmt: skip
StoppingMetricName = Literal[
    "AUTO", "deviance", "logloss", "MSE", "RMSE", "MAE", "RMSLE", "AUC", "AUCPR", "lift_top_group",
    "misclassification", "mean_per_class_error",
]  # fmt: skip
HistogramTypeName = Literal[
    "AUTO", "UniformAdaptive", "Random", "QuantilesGlobal", "RoundRobin", "UniformRobust",
]  # fmt: skip
CategoricalEncodingName = Literal[
    "AUTO", "Enum", "OneHotExplicit", "Binary", "Eigen", "LabelEncoder", "SortByResponse", "EnumLimited",
]  # fmt: skip
DISTRIBUTIONS: tuple[str, ...] = get_args(DistributionName)
STOPPING_METRICS: tuple[str, ...] = get_args(StoppingMetricName)
HISTOGRAM_TYPES: tuple[str, ...] = get_args(HistogramTypeName)
CATEGORICAL_ENCODINGS: tuple[str, ...] = get_args(CategoricalEncodingName)

Distribution = Annotated[DistributionName, _h2o_spelling(DISTRIBUTIONS)]
StoppingMetric = Annotated[StoppingMetricName, _h2o_spelling(STOPPING_METRICS)]
HistogramType = Annotated[HistogramTypeName, _h2o_spelling(HISTOGRAM_TYPES)]
CategoricalEncoding = Annotated[CategoricalEncodingName, _h2o_spelling(CATEGORICAL_ENCODINGS)]
ColumnNames = Annotated[tuple[str, ...], BeforeValidator(_column_list)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class Hyperparameters(BaseModel):
    """Every accepted key. A value left out (None) means H2O's own default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Trainer settings.
    target: str
    classification: bool | None = None
    ignored_columns: ColumnNames = ()
    categorical_columns: ColumnNames = ()
    checkpoint_interval_seconds: float = Field(
        default=60,
        gt=0,
        description="training time a spot interruption may lose: seconds between checkpoints",
    )

    # H2O GBM parameters.
    ntrees: int = Field(default=50, ge=1, le=100_000)
    max_depth: int | None = Field(default=None, ge=0)
    min_rows: float | None = Field(default=None, gt=0)
    nbins: int | None = Field(default=None, ge=2)
    nbins_cats: int | None = Field(default=None, ge=2)
    learn_rate: Fraction | None = None
    learn_rate_annealing: Fraction | None = None
    sample_rate: Fraction | None = None
    col_sample_rate: Fraction | None = None
    col_sample_rate_per_tree: Fraction | None = None
    min_split_improvement: float | None = Field(default=None, ge=0)
    histogram_type: HistogramType | None = None
    categorical_encoding: CategoricalEncoding | None = None
    score_tree_interval: int | None = Field(default=None, ge=0)
    stopping_rounds: int | None = Field(default=None, ge=0)
    stopping_metric: StoppingMetric | None = None
    stopping_tolerance: float | None = Field(default=None, ge=0)
    balance_classes: bool | None = None
    max_after_balance_size: float | None = Field(default=None, gt=0)
    distribution: Distribution | None = None
    max_runtime_secs: float | None = Field(default=None, ge=0)
    seed: int | None = None

    @field_validator("target")
    @classmethod
    def _target_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a column")
        return value.strip()

    def gbm_parameters(self) -> dict[str, Any]:
        """The H2O estimator parameters that were set (ntrees is chosen per checkpoint step by the trainer)."""
        return self.model_dump(exclude_none=True, exclude={*TRAINER_SETTINGS, "ntrees"})

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _training_dict(value: object) -> dict[str, object]:
    example = "\"{'target': 'Survived', 'classification': 'true'}\""
    if isinstance(value, dict):
        parsed: object = value
    else:
        try:
            parsed = ast.literal_eval(str(value))
        except (ValueError, SyntaxError):
            raise TrainingInputError(
                f"hyperparameter 'training' is not a dict-like string (e.g. {example}): {value!r}"
            ) from None
    if not isinstance(parsed, dict):
        raise TrainingInputError(
            f"hyperparameter 'training' must be a dict-like string (e.g. {example}): {value!r}"
        )
    unknown = [key for key in parsed if key not in TRAINING_DICT_SETTINGS]
    if unknown:
        raise TrainingInputError(
            f"unknown key {unknown[0]!r} in hyperparameter 'training' (accepted: {', '.join(TRAINING_DICT_SETTINGS)})"
        )
    return {str(key): item for key, item in parsed.items()}


def _describe(error: Mapping[str, Any], from_training_dict: set[str]) -> str:
    key = str(error["loc"][0]) if error["loc"] else "?"
    where = f"hyperparameter {key!r}" + (" (inside 'training')" if key in from_training_dict else "")
    if error["type"] == "extra_forbidden":
        return f"unknown hyperparameter {key!r} (accepted: {', '.join(sorted(Hyperparameters.model_fields))})"
    if error["type"] == "missing":
        return f"missing required {where} (a plain key or inside 'training')"
    return f"invalid {where}={error['input']!r}: {error['msg']}"


def decode_hyperparameters(raw: Mapping[str, object]) -> Hyperparameters:
    """Raise TrainingInputError naming the first bad key (and its value) when anything is wrong."""
    plain = {key: value for key, value in raw.items() if not key.startswith(RESERVED_KEY_PREFIXES)}
    training = _training_dict(plain.pop(TRAINING_DICT_KEY)) if TRAINING_DICT_KEY in plain else {}
    from_training_dict = set(training) - set(plain)
    try:
        return Hyperparameters.model_validate({**training, **plain})
    except ValidationError as error:
        raise TrainingInputError(_describe(error.errors()[0], from_training_dict)) from None
