"""Lambda functions run in this process: each invocation calls the function's real handler module with the
function's environment and execution role applied, and its prints going to the function's own log."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from h2o_sagemaker_local.iam import enforcement

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalFunction:
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    layer_dirs: list[Path]
    role_arn: str | None = None


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever sys.stdout is at the time of writing."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


CURRENT_STDOUT = _CurrentStdout()


@dataclass
class FunctionRegistry:
    """Function name -> real handler module, with the function's environment applied during each call.

    With a ``log_dir``, what a function prints (Powertools' JSON log lines) goes to ``<log_dir>/<name>.log``,
    as CloudWatch Logs keeps it apart from the caller's console on AWS.
    """

    log_dir: Path | None = None
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    log_files: dict[str, TextIO] = field(default_factory=dict)
    modules: dict[str, ModuleType] = field(default_factory=dict)  # function name -> its handler module
    caches: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # function name -> its Powertools providers

    def resolve(self, function_name: str) -> Handler:
        function = self.functions[
            function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        ]
        handler_name = function.handler.rsplit(".", 1)[1]
        for path in [function.code_dir, *function.layer_dirs]:
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

        def invoke(event: dict[str, Any], context: Any) -> Any:
            # Lambdas read their settings from the environment; one call at a time keeps them apart.
            with self.lock, contextlib.redirect_stdout(self._log_file(function.name)):
                # The runtime's environment holds the execution role's credentials (when IAM is enforced).
                environment = function.environment | enforcement.role_environment(
                    function.role_arn, "lambda.amazonaws.com", function.name
                )
                saved = {key: os.environ.get(key) for key in environment}
                os.environ.update(environment)
                try:
                    with (
                        enforcement.acting_as(function.role_arn, "lambda.amazonaws.com", function.name),
                        self._process_caches(function),
                    ):
                        # Powertools' log handler keeps the stream it found at import: give it one that follows
                        # sys.stdout, so each call's lines reach that call's log file.
                        with contextlib.redirect_stdout(CURRENT_STDOUT):
                            module = self._module(function)
                        return getattr(module, handler_name)(event, context)
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value

        return invoke

    @contextlib.contextmanager
    def _process_caches(self, function: LocalFunction) -> Iterator[None]:
        """Process-wide caches of the Lambda libraries, kept per function as each runs in its own process on AWS:
        Powertools keeps its parameter providers, with their boto3 clients, in one dict."""
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        own = self.caches.setdefault(function.name, {})
        others = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(own)
        try:
            yield
        finally:
            own.clear()
            own.update(DEFAULT_PROVIDERS)
            DEFAULT_PROVIDERS.clear()
            DEFAULT_PROVIDERS.update(others)

    def _module(self, function: LocalFunction) -> ModuleType:
        """The function's handler module, imported afresh for this registry: each deployed function starts cold, as
        in its own Lambda runtime, so no client an earlier run in this process cached at module level is reused.
        The shared layer (and the libraries) are imported once per process, so they must keep no per-function
        state such as a client."""
        if function.name not in self.modules:
            module_name = function.handler.rsplit(".", 1)[0]
            sys.modules.pop(module_name, None)
            self.modules[function.name] = importlib.import_module(module_name)
        return self.modules[function.name]

    def _log_file(self, function_name: str) -> TextIO:
        if self.log_dir is None:
            return sys.stdout
        if function_name not in self.log_files:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.log_files[function_name] = (self.log_dir / f"{function_name}.log").open("a", buffering=1)
        return self.log_files[function_name]

    def close(self) -> None:
        for log_file in self.log_files.values():
            log_file.close()
        self.log_files.clear()
