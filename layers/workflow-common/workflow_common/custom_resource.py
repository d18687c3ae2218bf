"""Answering CloudFormation custom resource requests so a stack never waits for a reply that never comes."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# CloudFormation truncates reasons anyway; keep the response well under its 4 KB body limit.
MAX_REASON_LENGTH = 1000
# Reply FAILED this long before Lambda's own timeout, so CloudFormation is not left waiting for an hour.
TIMEOUT_MARGIN_SECONDS = 10


@dataclass(frozen=True)
class Outcome:
    status: Literal["SUCCESS", "FAILED"]
    physical_resource_id: str
    reason: str = ""
    data: dict[str, Any] | None = None


def send_response(event: dict[str, Any], outcome: Outcome, log_stream_name: str) -> None:
    body = {
        "Status": outcome.status,
        "Reason": (outcome.reason or f"See CloudWatch Logs stream {log_stream_name}")[:MAX_REASON_LENGTH],
        "PhysicalResourceId": outcome.physical_resource_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": outcome.data or {},
    }
    payload = json.dumps(body).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=payload,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(payload))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def respond_within_deadline(
    event: dict[str, Any],
    context: Any,
    handle: Callable[[dict[str, Any]], Outcome],
    on_error: Callable[[Exception], None],
) -> Outcome:
    """Run ``handle`` and always send exactly one response: its outcome, FAILED on error, FAILED on timeout."""
    fallback_id = event.get("PhysicalResourceId") or event["LogicalResourceId"]
    sent = threading.Event()
    lock = threading.Lock()

    def send_once(outcome: Outcome) -> None:
        with lock:
            if sent.is_set():
                return
            send_response(event, outcome, context.log_stream_name)
            sent.set()

    seconds_left = context.get_remaining_time_in_millis() / 1000 - TIMEOUT_MARGIN_SECONDS
    timer = threading.Timer(
        max(seconds_left, 1),
        send_once,
        args=(Outcome("FAILED", fallback_id, "timed out before the import finished"),),
    )
    timer.daemon = True
    timer.start()
    try:
        outcome = handle(event)
    except Exception as error:
        on_error(error)
        outcome = Outcome("FAILED", fallback_id, f"{type(error).__name__}: {error}")
    finally:
        timer.cancel()
    send_once(outcome)
    return outcome
