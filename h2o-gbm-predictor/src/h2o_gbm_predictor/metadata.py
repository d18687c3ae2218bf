"""The model folder's contract with h2o-gbm-trainer: model-metadata.json names the MOJO and describes its inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_FILE = "model-metadata.json"
FORMAT_VERSION = 1
CATEGORIES = ("Binomial", "Multinomial", "Regression")


class ModelMetadataError(ValueError):
    """The model folder does not hold a usable model-metadata.json and the files it names."""


@dataclass(frozen=True)
class Feature:
    name: str
    numeric: bool


@dataclass(frozen=True)
class ModelMetadata:
    mojo_path: Path
    genmodel_jar_path: Path
    model_category: str
    target: str
    target_domain: tuple[str, ...] | None
    input_columns: tuple[str, ...]
    features: tuple[Feature, ...]


def _require(document: dict[str, Any], key: str, expected: type | tuple[type, ...]) -> Any:
    if key not in document:
        raise ModelMetadataError(f"{METADATA_FILE}: missing key {key!r}")
    value = document[key]
    if not isinstance(value, expected):
        raise ModelMetadataError(f"{METADATA_FILE}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise ModelMetadataError(f"{METADATA_FILE}: {what} must be a non-empty list of strings")
    if len(set(value)) != len(value):
        raise ModelMetadataError(f"{METADATA_FILE}: {what} has duplicate names")
    return tuple(value)


def _model_file(model_dir: Path, document: dict[str, Any], key: str) -> Path:
    name = _require(document, key, str)
    path = model_dir / name
    # The name must stay inside the model folder: it comes from a file, not from us.
    if Path(name).name != name or not path.is_file():
        raise ModelMetadataError(f"{METADATA_FILE}: {key} {name!r} is not a file in {model_dir}")
    return path


def _features(value: Any) -> tuple[Feature, ...]:
    if not isinstance(value, list) or not value:
        raise ModelMetadataError(f"{METADATA_FILE}: 'features' must be a non-empty list")
    features = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ModelMetadataError(f"{METADATA_FILE}: every feature needs a string 'name'")
        if entry.get("type") not in ("enum", "numeric"):
            raise ModelMetadataError(
                f"{METADATA_FILE}: feature {entry['name']!r} has type {entry.get('type')!r}, expected 'enum' or 'numeric'"
            )
        features.append(Feature(name=entry["name"], numeric=entry["type"] == "numeric"))
    _string_list([feature.name for feature in features], "'features' names")
    return tuple(features)


def load_metadata(model_dir: Path) -> ModelMetadata:
    path = model_dir / METADATA_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelMetadataError(
            f"{path} not found: the model folder must come from h2o-gbm-trainer"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelMetadataError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(document, dict):
        raise ModelMetadataError(f"{METADATA_FILE}: expected a JSON object")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelMetadataError(
            f"{METADATA_FILE}: format_version {document.get('format_version')!r} is not supported (expected {FORMAT_VERSION})"
        )
    category = _require(document, "model_category", str)
    if category not in CATEGORIES:
        raise ModelMetadataError(
            f"{METADATA_FILE}: model_category {category!r} is not one of {', '.join(CATEGORIES)}"
        )
    target_domain = None
    if category != "Regression":
        target_domain = _string_list(document.get("target_domain"), "'target_domain'")
    features = _features(document.get("features"))
    input_columns = _string_list(document.get("input_columns"), "'input_columns'")
    missing = [feature.name for feature in features if feature.name not in input_columns]
    if missing:
        raise ModelMetadataError(f"{METADATA_FILE}: features {missing} are not among 'input_columns'")
    return ModelMetadata(
        mojo_path=_model_file(model_dir, document, "mojo_file"),
        genmodel_jar_path=_model_file(model_dir, document, "genmodel_jar"),
        model_category=category,
        target=_require(document, "target", str),
        target_domain=target_domain,
        input_columns=input_columns,
        features=features,
    )
