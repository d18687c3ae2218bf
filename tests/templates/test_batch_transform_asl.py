"""What the batch transform state machine does beyond the rules every state machine follows: it takes the inputs
and defaults the README documents, and never retries a job that ran. That it scores with the model the endpoint
serves is shown end to end (local-runner/tests/test_local_pipeline.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITION: dict[str, Any] = json.loads((REPO_ROOT / "statemachine" / "batch-transform.asl.json").read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]


def documented_inputs() -> dict[str, str]:
    """Input key -> default cell of the README's batch transform input table."""
    section = (REPO_ROOT / "README.md").read_text().split("### Batch transform\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {}
    for row in rows:
        keys, default = row.split(" | ")[:2]
        values = [value.strip() for value in default.split(",")]
        for index, key in enumerate(re.findall(r"`(\w+)`", keys)):
            documented[key] = values[min(index, len(values) - 1)].strip("`")
    return documented


def test_the_readme_documents_every_input_with_its_default() -> None:
    rules = STATES["CheckInput"]["Choices"][0]["And"]
    # The optional inputs' rules (an Or allowing their absence) name no Variable at the top.
    required = {rule["Variable"].removeprefix("$.") for rule in rules if "Variable" in rule}
    defaults = STATES["ReadInput"]["Parameters"]["defaults"]
    documented_paths = {"$$.Execution.Name": "the execution's name"}
    assert documented_inputs() == {key: "(required)" for key in required} | {
        key.removesuffix(".$"): documented_paths[value]
        if key.endswith(".$")
        else json.dumps(value).strip('"')
        for key, value in defaults.items()
    }


def test_only_failures_to_start_the_job_are_retried() -> None:
    """A job that ran (failed or stopped: States.TaskFailed) keeps its name: starting it again would be refused."""
    retried = {error for retrier in STATES["Transform"]["Retry"] for error in retrier["ErrorEquals"]}
    assert retried == {"SageMaker.ResourceLimitExceededException", "SageMaker.AmazonSageMakerException"}
