"""SIGTERM (a managed spot interruption, early stopping, StopTrainingJob) stops the job: at once where Python
can, for certain at the next training step.

The handler raises in the main thread, which interrupts a blocking call to the H2O JVM at once. But CPython may
run it while a finalizer runs (garbage collection: urllib3 closing a connection pool), and an exception raised
there is printed and dropped: the job then trained on to the end. So the request is also kept, and training
checks it between steps.
"""

from __future__ import annotations

import threading
from types import FrameType

from .errors import TrainingError

MESSAGE = (
    "stopped by SIGTERM (a spot interruption, early stopping or StopTrainingJob); the last checkpoint is kept for "
    "a restart"
)
_requested = threading.Event()


class Interrupted(TrainingError):
    pass


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise Interrupted(MESSAGE)


def check() -> None:
    """Raise Interrupted if SIGTERM came, even if the handler's own exception was lost."""
    if _requested.is_set():
        raise Interrupted(MESSAGE)
