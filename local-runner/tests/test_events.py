"""The progress events are types: the reporter handles each one, and anything else is an error, not dropped."""

from __future__ import annotations

import io
import typing
from pathlib import Path

import pytest
from h2o_sagemaker_local import cli, events
from mypy import api as mypy_api
from rich.console import Console

TUNING_REQUEST = {
    "HyperParameterTuningJobConfig": {
        "Strategy": "Bayesian",
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
    }
}
# One of each event, in a run's order, with the line the reporter prints for it (None: prints nothing).
RUN: list[tuple[events.Event, str | None]] = [
    (events.Deploying(Path("/p/template.yaml")), None),  # told once deployed
    (
        events.Deployed({"NotificationTopicArn": "arn"}),
        "Deployed /p/template.yaml and its nested apps into moto",
    ),
    (events.ManifestUploaded("s3://b/m.json"), None),  # told with the execution it starts
    (events.ExecutionStarted("arn:aws:states:r:1:execution:m:e"), "Execution started e by s3://b/m.json"),
    (events.StateEntered("run-1", "Tune"), None),  # only with --verbose
    (
        events.TuningStarted("tuning-1", TUNING_REQUEST),
        "Tuning tuning-1: Bayesian, 2 jobs, 1 in parallel, objective Maximize validation:auc",
    ),
    (events.TrainingStarted("tuning-1-001-ab", {"ntrees": "50"}), None),
    (
        events.TrainingFinished(
            "tuning-1-001-ab", "Completed", 0.8123, None, "validation:auc", {"ntrees": "50"}
        ),
        "  ing-1-001-ab validation:auc=0.8123  ntrees=50",  # the job's name shortened to its last 12
    ),
    (
        events.TrainingFinished("tuning-1-002-cd", "Failed", None, "out of memory", "validation:auc", {}),
        "  ing-1-002-cd Failed: out of memory",
    ),
    (events.TuningFinished("tuning-1", "Completed", None), "Tuning Completed"),
    (
        events.EndpointDeploying("ep", "ep-config", "http://127.0.0.1:1"),
        "Deploying endpoint ep with ep-config at",
    ),
    (events.EndpointStatus("ep", "Failed", "no model"), "  endpoint ep: Failed (no model)"),
    (events.TrafficShifted("ep", "ep-config-2", 0.25), "  endpoint ep: 25% of traffic on ep-config-2"),
    (
        events.EndpointRolledBack("ep", "ep-config", ("ep-5xx",), "rollback alarm(s) in ALARM: ep-5xx"),
        "  endpoint ep: rolled back to ep-config (rollback alarm(s) in ALARM: ep-5xx)",
    ),
    (
        events.DataCaptureFailed("ep", "2 captured request(s) not written to s3://b/c/x.jsonl: AccessDenied"),
        "  endpoint ep: data capture lost: 2 captured request(s) not written to s3://b/c/x.jsonl: AccessDenied",
    ),
    (
        events.NotificationPublished(
            {"workflow": "EndpointDeployment", "stage": "Failed", "status": "FAILED", "endpoint": "ep"},
            {"step": "InspectEndpoint", "error": "EndpointFailed"},
        ),
        "  notification EndpointDeployment Failed FAILED endpoint ep: InspectEndpoint EndpointFailed",
    ),
    (
        events.NotificationPublished(
            {}, {"workflow": "ml-parameter-provider", "error": "no training channel"}
        ),
        '  notification {"workflow": "ml-parameter-provider", "error": "no training channel"}',
    ),
]


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    text = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=text, highlight=False, width=200))
    return text


def test_every_event_type_is_in_the_run_above() -> None:
    assert {type(event) for event, _ in RUN} == set(typing.get_args(events.Event))


def test_the_reporter_prints_each_event(output: io.StringIO) -> None:
    reporter = cli.Reporter()
    for event, line in RUN:
        before = output.tell()
        reporter(event)
        printed = output.getvalue()[before:]
        if line is None:
            assert printed == ""
        else:
            assert line in printed, (event, printed)
    assert set(reporter.timings) == {"tuning"}


def test_a_warm_started_tuning_job_names_its_parents_and_the_jobs_it_starts_from(output: io.StringIO) -> None:
    parents = [{"HyperParameterTuningJobName": name} for name in ("tuning-0", "tuning-00")]
    request = TUNING_REQUEST | {
        "WarmStartConfig": {"ParentHyperParameterTuningJobs": parents, "WarmStartType": "TransferLearning"}
    }
    cli.Reporter()(events.TuningStarted("tuning-1", request, 17))
    assert (
        "in parallel, objective Maximize validation:auc; warm start from tuning-0, tuning-00 (17 of their "
        in (output.getvalue())
    )


def test_verbose_reporter_prints_each_state_entered(output: io.StringIO) -> None:
    cli.Reporter(verbose=True)(events.StateEntered("run-1", "Tune"))
    assert output.getvalue() == "  run-1 → Tune\n"


@pytest.mark.parametrize("not_an_event", ["deploying", ("deploying", {"template": "t"}), {"template": "t"}])
def test_anything_but_an_event_fails(output: io.StringIO, not_an_event: object) -> None:
    with pytest.raises(AssertionError, match="unreachable"):
        cli.Reporter()(not_an_event)  # type: ignore[arg-type]  # what the type checker refuses, at run time


def test_a_misspelt_or_untyped_event_is_a_type_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the listeners got before, a name string and a dict, the type checker now refuses; a misspelt event
    class does not exist."""
    with pytest.raises(AttributeError):
        events.Deployng  # type: ignore[attr-defined]  # noqa: B018  # the misspelling under test
    caller = tmp_path / "caller.py"
    caller.write_text(
        "from pathlib import Path\n"
        "from h2o_sagemaker_local import events\n"
        "def report(listener: events.ProgressListener) -> None:\n"
        "    listener(events.Deployng(Path('t')))\n"
        "    listener('deploying', {'template': 't'})\n"
    )
    monkeypatch.setenv("MYPYPATH", str(Path(events.__file__).parents[1]))
    # No config file: the project's names the files to check, and mypy takes either those or the given ones.
    stdout, _, status = mypy_api.run(["--config-file=", "--no-incremental", str(caller)])
    assert status == 1
    assert f'{caller}:4: error: Module has no attribute "Deployng"' in stdout
    assert f"{caller}:5: error: Too many arguments" in stdout
