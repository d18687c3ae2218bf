"""A failed run told in a few lines: the step that failed, its error, and the innermost reason behind it.

Step Functions nests causes: a parent's cause holds its child's whole description as JSON, whose cause holds a
tuning job's description, whose ``FailureReason`` is the text a user can act on. The stage notifications name
the machine and step where a failure happened; the innermost workflow's notification is the one to follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Where AWS and the workflow put the reason a level deeper, most specific first.
REASON_KEYS = ("FailureReason", "ExitMessage", "errorMessage", "cause", "Cause", "message")
# Child workflows first: their failure is the cause of their parent's.
INNERMOST_FIRST = ("ModelTuning", "EndpointDeployment", "TuningWithDeployment")
REASON_MAX_CHARACTERS = 400


@dataclass(frozen=True)
class Failure:
    workflow: str  # the state machine where the step failed
    step: str
    error: str
    reason: str  # the innermost reason, one line


def innermost_reason(text: str) -> str:
    """Follow a cause into the JSON it holds, down to the deepest reason; one line, shortened."""
    for _ in range(10):  # nesting is a few levels deep
        stripped = text.strip()
        prefix, separator, rest = stripped.partition(": ")
        candidate = rest if separator and rest.lstrip().startswith("{") and " " not in prefix else stripped
        try:
            document = json.loads(candidate)
        except ValueError:
            break
        deeper = _reason_in(document)
        if deeper is None:
            break
        text = deeper
    line = " ".join(text.split())
    return line if len(line) <= REASON_MAX_CHARACTERS else line[: REASON_MAX_CHARACTERS - 1] + "…"


def _reason_in(document: Any) -> str | None:
    if isinstance(document, dict):
        for key in REASON_KEYS:
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return value
        for value in document.values():
            found = _reason_in(value)
            if found is not None:
                return found
    if isinstance(document, list):
        for item in document:
            found = _reason_in(item)
            if found is not None:
                return found
    return None


def describe_failure(error: str | None, cause: str | None, notifications: list[dict[str, Any]]) -> Failure:
    """The failure from the innermost workflow's Failed notification, else from the execution's own error."""
    failed = [item for item in notifications if item.get("stage") == "Failed"]
    failed.sort(
        key=lambda item: (
            INNERMOST_FIRST.index(item["workflow"])
            if item.get("workflow") in INNERMOST_FIRST
            else len(INNERMOST_FIRST)
        )
    )
    if failed:
        first = failed[0]
        return Failure(
            workflow=str(first.get("workflow")),
            step=str(first.get("step")),
            error=str(first.get("error")),
            reason=innermost_reason(str(first.get("cause") or "")),
        )
    return Failure("TuningWithDeployment", "(unknown)", error or "(none)", innermost_reason(cause or ""))
