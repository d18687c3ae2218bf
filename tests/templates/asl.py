"""The project's state machines as the ASL tests read them: each ASL file with its template's declaration, and
the walks over a definition (transitions, reachability, nested states, keys) the rules are written with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [
    REPO_ROOT / "template.yaml",
    *(
        REPO_ROOT / app / "template.yaml"
        for app in (
            "ml-parameter-provider",
            "sagemaker-model-tuner",
            "sagemaker-model-deployer",
            "data-bucket",
        )
    ),
]
ASL_FILES = sorted(
    path for path in REPO_ROOT.glob("**/statemachine/*.asl.json") if ".aws-sam" not in path.parts
)
NOTIFY = "NotifyFailure"


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def load_template(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches, matches
    return template


@dataclass(frozen=True)
class StateMachine:
    """One AWS::Serverless::StateMachine: its ASL file, parsed, and the template properties declaring it."""

    asl_file: Path
    properties: dict[str, Any]

    @property
    def definition(self) -> dict[str, Any]:
        return json.loads(self.asl_file.read_text())

    @property
    def states(self) -> dict[str, dict[str, Any]]:
        return self.definition["States"]

    def __str__(self) -> str:
        return relative(self.asl_file)


def state_machines() -> list[StateMachine]:
    """Every state machine declared in a template."""
    return [
        StateMachine(template_path.parent / resource["Properties"]["DefinitionUri"], resource["Properties"])
        for template_path in TEMPLATES
        for resource in load_template(template_path)["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]


def transitions(state: dict[str, Any]) -> set[str]:
    targets = {state[key] for key in ("Next", "Default") if key in state}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    targets |= {catcher["Next"] for catcher in state.get("Catch", [])}
    return targets


def reachable(states: dict[str, dict[str, Any]], start: str) -> set[str]:
    seen, pending = set(), [start]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(transitions(states[name]))
    return seen


def walk_states(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """All states, including those inside Parallel branches and Map iterators."""
    found = []
    for name, state in states.items():
        found.append((name, state))
        for branch in state.get("Branches", []):
            found.extend(walk_states(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.extend(walk_states(processor["States"]))
    return found


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_anywhere(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_anywhere(item)}
    return set()


def values_of(key: str, value: Any) -> list[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(value, dict):
        return [item for name, item in value.items() if name == key] + [
            found for item in value.values() for found in values_of(key, item)
        ]
    if isinstance(value, list):
        return [found for item in value for found in values_of(key, item)]
    return []


def failure_reporting_tasks(states: dict[str, dict[str, Any]]) -> set[str]:
    """The notification and the cleanup tasks (or Maps of them) that lead to it, whether they succeed or fail:
    on the failure path only, they report their own failure beside the original one instead of being notified
    under their own name."""
    reporting = {NOTIFY}
    while True:
        leading_there = {
            name
            for name, state in states.items()
            if state["Type"] in {"Task", "Map"}
            and state.get("Next") in reporting
            and all(catcher["Next"] in reporting for catcher in state.get("Catch", []))
        }
        if leading_there <= reporting:
            return reporting
        reporting |= leading_there


def failing_tasks(states: dict[str, dict[str, Any]]) -> list[str]:
    """Top-level states that call AWS or Lambda and so can fail (a Map fails when its inner task does)."""
    reporting = failure_reporting_tasks(states)
    return [
        name for name, state in states.items() if state["Type"] in {"Task", "Map"} and name not in reporting
    ]
