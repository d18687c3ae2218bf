"""How the tests see that no process outlives a training job, an endpoint or a run: by /proc, not by the
emulator's own bookkeeping, so a process the emulator lost track of is still found."""

from __future__ import annotations

import time
from pathlib import Path


def processes_using(folder: Path) -> list[int]:
    """Processes whose environment points into ``folder`` (training jobs, their JVMs, model servers, stubs)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder).encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def no_process_left(folder: Path, timeout: float = 5) -> bool:
    """True once nothing runs with ``folder`` in its environment: a killed process takes a moment to go."""
    deadline = time.monotonic() + timeout
    while processes_using(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
