"""Waiting in tests for something the system under test does in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 300, interval: float = 0.05) -> Any:
    """The first true value ``condition`` returns, polled every ``interval`` s; fails naming ``what`` after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(interval)
    return result
