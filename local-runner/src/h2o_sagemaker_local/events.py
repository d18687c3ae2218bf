"""What a local run reports as it goes: one frozen dataclass per event, so a listener matches on types and a
misspelt event is an error (mypy, or NameError at run time), not a message nobody receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Deploying:
    template: Path


@dataclass(frozen=True)
class Deployed:
    outputs: dict[str, str]


@dataclass(frozen=True)
class ManifestUploaded:
    s3_uri: str


@dataclass(frozen=True)
class ExecutionStarted:
    arn: str


@dataclass(frozen=True)
class StateEntered:
    execution: str  # the execution's name, the last part of its ARN
    state: str


@dataclass(frozen=True)
class TuningStarted:
    name: str
    request: dict[str, Any]  # the CreateHyperParameterTuningJob request
    warm_start_trials: int = 0  # the parents' training jobs a warm start's search started from


@dataclass(frozen=True)
class TrainingStarted:
    name: str
    hyperparameters: dict[str, str]  # the tuned ones


@dataclass(frozen=True)
class TrainingFinished:
    name: str
    status: str
    objective: float | None  # None when the job failed or reported no objective
    reason: str | None
    metric: str
    hyperparameters: dict[str, str]


@dataclass(frozen=True)
class TuningFinished:
    name: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class EndpointDeploying:
    name: str
    config: str
    url: str


@dataclass(frozen=True)
class EndpointStatus:
    name: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class TrafficShifted:
    """A blue/green update moved traffic to the new configuration's model server."""

    name: str  # the endpoint
    config: str  # the endpoint configuration being deployed
    green_share: float  # of the endpoint's requests it takes from now on, 0 to 1


@dataclass(frozen=True)
class EndpointRolledBack:
    """A blue/green update gave all traffic back to the old configuration, which the endpoint serves again."""

    name: str
    config: str  # the configuration served again
    alarms: tuple[str, ...]  # the rollback alarms in ALARM; none when the update timed out
    reason: str


@dataclass(frozen=True)
class DataCaptureFailed:
    """Requests an endpoint captured could not be written to S3 (they were served all the same)."""

    name: str  # the endpoint
    reason: str


@dataclass(frozen=True)
class NotificationPublished:
    attributes: dict[
        str, str
    ]  # workflow, stage, status, endpoint: what a subscription's filter policy matches
    message: dict[str, Any]  # the JSON message


Event = (
    Deploying
    | Deployed
    | ManifestUploaded
    | ExecutionStarted
    | StateEntered
    | TuningStarted
    | TrainingStarted
    | TrainingFinished
    | TuningFinished
    | EndpointDeploying
    | EndpointStatus
    | TrafficShifted
    | EndpointRolledBack
    | DataCaptureFailed
    | NotificationPublished
)
ProgressListener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener when nobody listens."""
