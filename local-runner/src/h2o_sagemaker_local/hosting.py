"""Local SageMaker endpoints: the real h2o-gbm-predictor `serve` process behind a stable loopback URL.

Each endpoint has a small reverse proxy on a fixed port; a deployment starts a new `serve` process on a
free port, waits for `/ping`, then switches the proxy to it and stops the old process after its in-flight
requests finished. Clients of the endpoint URL see no failed request across an update, as on SageMaker.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from h2o_sagemaker_local.containers import ContainerRuntime, container_name
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.training import split_s3_uri

SERVE_EXECUTABLE = Path(sys.executable).with_name("serve")
READY_TIMEOUT_SECONDS = 60
HEALTH_CHECK_SECONDS = 0.5  # how often InService endpoints are checked for a dead model server
FORWARDED_HEADERS = ("Content-Type", "Accept")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


def loopback_request(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, str]:
    """One HTTP request to 127.0.0.1:port: status, body and content type."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return (
            response.status,
            response.read(),
            response.getheader("Content-Type", "application/octet-stream"),
        )
    finally:
        connection.close()


class ModelServerFailed(Exception):
    """The model server did not become ready; the message is the endpoint's FailureReason."""


@dataclass
class ModelServer:
    """One `serve` process for one endpoint configuration."""

    base_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    active_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    container: ContainerRuntime | None = None  # serve in the predictor image, else as a local `serve` process

    @property
    def log_path(self) -> Path:
        return self.base_dir / "serve.log"

    @property
    def container_name(self) -> str:
        return container_name("endpoint", f"{self.base_dir.parent.name}-{self.base_dir.name}")

    def start(self) -> None:
        # One worker: locally the endpoint shares two cores with training jobs.
        settings = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "PYTHONUNBUFFERED": "1"}
        if self.container is None:
            command = [str(SERVE_EXECUTABLE)]
            environment = os.environ | settings
            environment |= {
                "SAGEMAKER_BASE_DIR": str(self.base_dir),
                "SAGEMAKER_BIND_TO_PORT": str(self.port),
            }
        else:
            command = self.container.serve_command(
                self.container_name, self.base_dir / "model", self.port, settings
            )
            environment = self.container.environment
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> int | None:
        """SIGKILL, as when the instance dies; returns the killed process id (None if it was not running)."""
        if not (self.process and self.is_alive()):
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.container:
            self.container.remove(self.container_name)
        return self.process.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ModelServerFailed(
                    f"model server exited with code {code} before it was ready; see {self.log_path}"
                )
            try:
                status, _, _ = self.request("GET", "/ping", b"", {})
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ModelServerFailed(f"model server not ready after {timeout:.0f} s; see {self.log_path}")

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        return loopback_request(self.port, method, path, body, headers)

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, drain_seconds: float = 10) -> None:
        deadline = time.monotonic() + drain_seconds
        while self.active_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.is_alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait()


class EndpointProxy(ThreadingHTTPServer):
    """Stable URL of an endpoint; forwards to whichever model server is current."""

    daemon_threads = True

    def __init__(self) -> None:
        self.backend: ModelServer | None = None
        self.backend_lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def acquire_backend(self) -> ModelServer | None:
        with self.backend_lock:
            backend = self.backend
            if backend:
                with backend.lock:
                    backend.active_requests += 1
            return backend

    def switch_to(self, backend: ModelServer) -> ModelServer | None:
        with self.backend_lock:
            previous, self.backend = self.backend, backend
            return previous


class _ProxyHandler(BaseHTTPRequestHandler):
    server: EndpointProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        backend = self.server.acquire_backend()
        if backend is None:
            self._reply(503, b'{"error": "endpoint has no model server"}', "application/json")
            return
        try:
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            status, payload, content_type = backend.request(self.command, self.path, body, headers)
        except OSError as error:
            status, payload, content_type = (
                502,
                f'{{"error": "model server unreachable: {error}"}}'.encode(),
                "application/json",
            )
        finally:
            with backend.lock:
                backend.active_requests -= 1
        self._reply(status, payload, content_type)

    def _reply(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class LocalEndpoint:
    """State of one endpoint, shaped like DescribeEndpoint."""

    name: str
    arn: str
    config: dict[str, Any]
    workdir: Path
    status: str = "Creating"
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_modified_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    proxy: EndpointProxy = field(default_factory=EndpointProxy)
    server: ModelServer | None = None
    deployed_config: dict[str, Any] | None = None
    starting: ModelServer | None = None  # the model server of a deployment in progress
    # A new model server serves only once this is set; LocalSageMaker.hold_deployments clears it.
    ready_gate: threading.Event = field(default_factory=_open_gate)
    container: ContainerRuntime | None = None
    tags: list[dict[str, str]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        config = self.deployed_config or self.config
        description: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "ProductionVariants": [
                {
                    "VariantName": variant["VariantName"],
                    "CurrentWeight": float(variant.get("InitialVariantWeight", 1)),
                    "DesiredWeight": float(variant.get("InitialVariantWeight", 1)),
                    "CurrentInstanceCount": variant.get("InitialInstanceCount", 1),
                    "DesiredInstanceCount": variant.get("InitialInstanceCount", 1),
                }
                for variant in config["ProductionVariants"]
            ],
        }
        if self.failure_reason:
            description["FailureReason"] = self.failure_reason
        return description

    def deploy(self, config: dict[str, Any], model: dict[str, Any]) -> None:
        """Bring up ``config`` (run in a thread); on success the proxy serves it and the old server stops."""
        base_dir = self.workdir / config["EndpointConfigName"]
        try:
            _download_model(
                model["PrimaryContainer"]["ModelDataUrl"], base_dir / "model", model.get("ExecutionRoleArn")
            )
            server = self.starting = ModelServer(base_dir, container=self.container)
            server.start()
            server.wait_ready()
            self.ready_gate.wait()
            if not server.is_alive():  # died while the deployment was held
                assert server.process is not None
                raise ModelServerFailed(
                    f"model server exited with code {server.process.returncode} before it was ready; "
                    f"see {server.log_path}"
                )
        except (ModelServerFailed, OSError, tarfile.TarError, KeyError) as error:
            self._set_status(
                "Failed",
                f"{type(error).__name__}: {error}"
                if not isinstance(error, ModelServerFailed)
                else str(error),
            )
            return
        finally:
            self.starting = None
        previous = self.proxy.switch_to(server)
        self.server, self.config, self.deployed_config = server, config, config
        self._set_status("InService")
        if previous:
            previous.stop()

    def check_health(self) -> None:
        """An InService endpoint whose model server died is Failed, as SageMaker reports a dead container."""
        if self.status == "InService" and self.server and not self.server.is_alive():
            code = self.server.process.returncode if self.server.process else None
            self._set_status(
                "Failed", f"model server process exited with code {code}; see {self.server.log_path}"
            )

    def crash(self) -> list[int]:
        """SIGKILL the process groups of its model servers (serving and starting); returns their process ids."""
        killed = [server.kill() for server in (self.server, self.starting) if server]
        return [pid for pid in killed if pid is not None]

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes, str]:
        headers = {"Content-Type": content_type} | ({"Accept": accept} if accept else {})
        return loopback_request(self.proxy.server_address[1], "POST", "/invocations", body, headers)

    def shutdown(self) -> None:
        self.proxy.shutdown()
        self.proxy.server_close()
        if self.server:
            self.server.stop(drain_seconds=0)

    def _set_status(self, status: str, failure_reason: str | None = None) -> None:
        self.status, self.failure_reason = status, failure_reason
        self.last_modified_time = datetime.now(UTC)


def _download_model(model_data_url: str, model_dir: Path, role_arn: str | None) -> None:
    """SageMaker fetches the artifact as the model's execution role."""
    bucket, key = split_s3_uri(model_data_url)
    model_dir.mkdir(parents=True, exist_ok=True)
    archive_path = model_dir.parent / "model.tar.gz"
    try:
        s3 = enforcement.role_client("s3", role_arn, "sagemaker.amazonaws.com", "SageMaker")
        s3.download_file(bucket, key, str(archive_path))
    except (ClientError, enforcement.AccessDenied) as error:
        raise ModelServerFailed(
            f"Failed to download model data from URL: {model_data_url}. Please ensure that there is an object "
            f"located at the URL and that the role passed to CreateModel has permissions to download the model "
            f"({error})"
        ) from None
    with tarfile.open(archive_path) as archive:
        archive.extractall(model_dir, filter="data")
