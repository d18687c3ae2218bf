"""Local SageMaker endpoints: the real h2o-gbm-predictor `serve` process behind a stable loopback URL.

Each endpoint has a small reverse proxy on a fixed port; a deployment starts a new `serve` process on a
free port, waits for `/ping`, then switches the proxy to it and stops the old process after its in-flight
requests finished. Clients of the endpoint URL see no failed request across an update, as on SageMaker.

An update with a DeploymentConfig is a blue/green update as ``deployment_guardrails`` plans it: the proxy's
router splits the requests between the old (blue) and the new (green) model server by their shares, which move
to green step by step while the rollback alarms are watched; then blue stops, or, on an alarm or a timeout,
everything returns to blue and green stops. Locally a fleet is one `serve` process whatever its instance count:
a share of the instances is a share of the requests.

The proxy records each ``/invocations`` request (status, model latency, its own overhead) for the endpoint's
CloudWatch metrics (``endpoint_metrics``), which the local SageMaker publishes off the request path, and queues
the sample of the requests and responses its configuration's DataCaptureConfig captures (``data_capture``), which
is written to S3 there too.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from h2o_sagemaker_local import events
from h2o_sagemaker_local.containers import ContainerRuntime, container_name
from h2o_sagemaker_local.data_capture import CapturedInvocation, CaptureSettings
from h2o_sagemaker_local.deployment_guardrails import BlueGreenPlan, TrafficStep
from h2o_sagemaker_local.endpoint_metrics import Invocation
from h2o_sagemaker_local.events import ProgressListener
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.training import split_s3_uri

SERVE_EXECUTABLE = Path(sys.executable).with_name("serve")
READY_TIMEOUT_SECONDS = 60
HEALTH_CHECK_SECONDS = 0.5  # how often InService endpoints are checked for a dead model server
ALARM_CHECK_SECONDS = 0.5  # how often a blue/green update looks at its rollback alarms


@functools.cache
def invocation_header(member: str) -> str:
    """The HTTP header of an InvokeEndpoint request member, as botocore's model names it."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    return str(model.operation_model("InvokeEndpoint").input_shape.members[member].serialization["name"])


CUSTOM_ATTRIBUTES_HEADER = invocation_header("CustomAttributes")
# The capture record keeps the InferenceId as eventMetadata.inferenceId, by which Model Monitor joins ground truth
# to the captured predictions.
INFERENCE_ID_HEADER = invocation_header("InferenceId")
# What InvokeEndpoint passes on to the model server: its ContentType, Accept and CustomAttributes (the InferenceId
# stays with SageMaker, which keeps it in the captured data).
FORWARDED_HEADERS = ("Content-Type", "Accept", CUSTOM_ATTRIBUTES_HEADER)
# InvokeEndpoint's Body, the request's and the response's alike: at most 6 MB (botocore's sagemaker-runtime model).
MAX_INVOCATION_BYTES = 6_291_456


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


def loopback_request(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float = 60
) -> tuple[int, bytes, str]:
    """One HTTP request to 127.0.0.1:port: status, body and content type."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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

    base_dir: Path  # the endpoint's folder for this endpoint configuration, named after it
    variant_name: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    active_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    container: ContainerRuntime | None = None  # serve in the predictor image, else as a local `serve` process
    # Endpoint configuration name -> the status its /invocations answer (LocalSageMaker.fail_invocations).
    invocation_faults: Mapping[str, int] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)  # the container's, beyond the local settings
    data_capture: CaptureSettings | None = None  # its endpoint configuration's, when it captures

    @property
    def config_name(self) -> str:
        return self.base_dir.name

    @property
    def log_path(self) -> Path:
        return self.base_dir / "serve.log"

    @property
    def container_name(self) -> str:
        return container_name("endpoint", f"{self.base_dir.parent.name}-{self.base_dir.name}")

    def start(self) -> None:
        # One worker: locally the endpoint shares two cores with training jobs.
        settings = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "PYTHONUNBUFFERED": "1"} | dict(self.environment)
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
        fault = self.invocation_faults.get(self.config_name) if path == "/invocations" else None
        if fault is not None:
            message = f"injected fault: endpoint configuration {self.config_name} answers {fault}"
            return fault, json.dumps({"error": message}).encode(), "application/json"
        return loopback_request(self.port, method, path, body, headers)

    def release(self) -> None:
        """One of its requests finished."""
        with self.lock:
            self.active_requests -= 1

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


@dataclass
class _Route:
    server: ModelServer
    share: float
    credit: float = 0.0


class TrafficRouter:
    """Picks each request's model server by smooth weighted round robin (nginx's): no randomness, and from the
    last change of shares on, each server gets its share of the requests to within one request, so a test can
    bound what a server answered by its share."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[_Route] = []

    def route(self, shares: Sequence[tuple[ModelServer, float]]) -> None:
        """From now on, these servers take these shares of the requests (a server with none takes no new one)."""
        with self._lock:
            self._routes = [_Route(server, share) for server, share in shares if share > 0]

    def acquire(self) -> ModelServer | None:
        """The next request's server, with the request counted among its active ones (``release`` it)."""
        with self._lock:
            if not self._routes:
                return None
            for route in self._routes:
                route.credit += route.share
            chosen = max(self._routes, key=lambda route: route.credit)  # the first on a tie
            chosen.credit -= sum(route.share for route in self._routes)
            with chosen.server.lock:
                chosen.server.active_requests += 1
            return chosen.server


class EndpointProxy(ThreadingHTTPServer):
    """Stable URL of an endpoint; forwards each request to the model server its router picks, and records each
    /invocations request for the endpoint's metrics."""

    daemon_threads = True

    def __init__(self) -> None:
        self.router = TrafficRouter()
        self._invocations: list[Invocation] = []
        self._captured: list[CapturedInvocation] = []
        self._invocations_lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)
        # A short poll: shutdown() waits for the next one (0.5 s by default).
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, invocation: Invocation) -> None:
        with self._invocations_lock:
            self._invocations.append(invocation)

    def take_invocations(self) -> list[Invocation]:
        """The requests recorded since the last call, for the metrics flusher."""
        with self._invocations_lock:
            taken, self._invocations = self._invocations, []
        return taken

    def capture(self, invocation: CapturedInvocation) -> None:
        with self._invocations_lock:
            self._captured.append(invocation)

    def take_captured(self) -> list[CapturedInvocation]:
        """The requests captured since the last call, for the writer of the captured data."""
        with self._invocations_lock:
            taken, self._captured = self._captured, []
        return taken


def _over_limit(what: str) -> bytes:
    return json.dumps({"error": f"{what} is over InvokeEndpoint's {MAX_INVOCATION_BYTES} bytes"}).encode()


def _microseconds(seconds: float) -> int:
    return round(seconds * 1_000_000)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: EndpointProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        received, started = datetime.now(UTC), time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (
            self.path == "/invocations" and len(body) > MAX_INVOCATION_BYTES
        ):  # refused before any model server
            self._reply(413, _over_limit(f"request body of {len(body)} bytes"), "application/json")
            return
        backend = self.server.router.acquire()
        if backend is None:  # not yet serving (SageMaker refuses such an invocation, uncounted)
            self._reply(503, b'{"error": "endpoint has no model server"}', "application/json")
            return
        model_seconds: float | None = None
        try:
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            sent = time.perf_counter()
            status, payload, content_type = backend.request(self.command, self.path, body, headers)
            model_seconds = time.perf_counter() - sent
        except OSError as error:
            status, payload, content_type = (
                502,
                f'{{"error": "model server unreachable: {error}"}}'.encode(),
                "application/json",
            )
        finally:
            backend.release()
        if self.path == "/invocations" and len(payload) > MAX_INVOCATION_BYTES:
            # What SageMaker answers then is not documented; a client must not see it succeed here.
            status, payload = 500, _over_limit(f"the model's response of {len(payload)} bytes")
            content_type = "application/json"
        # Recorded before the reply: a client that has its answer finds it counted.
        if self.path == "/invocations":
            overhead = time.perf_counter() - started - (model_seconds or 0)
            self.server.record(
                Invocation(
                    received,
                    backend.variant_name,
                    status,
                    None if model_seconds is None else _microseconds(model_seconds),
                    _microseconds(overhead),
                )
            )
            capture = backend.data_capture
            if capture is not None and status == 200 and capture.sampled():
                self.server.capture(
                    CapturedInvocation(
                        capture,
                        received,
                        body,
                        self.headers.get("Content-Type", "application/octet-stream"),
                        payload,
                        content_type,
                        self.headers.get(INFERENCE_ID_HEADER),
                    )
                )
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
class PendingDeployment:
    """An endpoint configuration being deployed, shaped like DescribeEndpoint's PendingDeploymentSummary. Its
    variant statuses and messages are those SageMaker reports (https://docs.aws.amazon.com/sagemaker/latest/dg/
    automating-sagemaker-with-eventbridge.html#eventbridge-deployment-state)."""

    config: dict[str, Any]
    instance_count: int
    variant_status: str
    status_message: str
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    status_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    instances_with_traffic: int = 0

    @classmethod
    def launching(cls, config: dict[str, Any], instance_count: int) -> PendingDeployment:
        return cls(config, instance_count, "Creating", f"Launching {instance_count} instance(s).")

    def advance(self, status: str, message: str, instances_with_traffic: int) -> None:
        self.variant_status, self.status_message = status, message
        self.status_time, self.instances_with_traffic = datetime.now(UTC), instances_with_traffic

    def summary(self) -> dict[str, Any]:
        variant = self.config["ProductionVariants"][0]
        summary: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "CurrentWeight": float(variant.get("InitialVariantWeight", 1)),
            "DesiredWeight": float(variant.get("InitialVariantWeight", 1)),
            **variant_capacity(variant, self.instances_with_traffic, self.instance_count),
            "VariantStatus": [
                {
                    "Status": self.variant_status,
                    "StatusMessage": self.status_message,
                    "StartTime": self.status_time,
                }
            ],
        }
        if "InstanceType" in variant:
            summary["InstanceType"] = variant["InstanceType"]
        return {
            "EndpointConfigName": self.config["EndpointConfigName"],
            "StartTime": self.start_time,
            "ProductionVariants": [summary],
        }


def variant_capacity(variant: dict[str, Any], current: int, desired: int) -> dict[str, Any]:
    """A variant's capacity as DescribeEndpoint reports it: its instance counts, or its serverless configuration
    (a serverless variant has no instances)."""
    if "ServerlessConfig" in variant:
        return {
            "CurrentServerlessConfig": variant["ServerlessConfig"],
            "DesiredServerlessConfig": variant["ServerlessConfig"],
        }
    return {"CurrentInstanceCount": current, "DesiredInstanceCount": desired}


@dataclass(frozen=True)
class Rollback:
    alarms: tuple[str, ...]  # the rollback alarms in ALARM; none when the deployment timed out
    reason: str


class _DeploymentAborted(Exception):
    """The endpoint was deleted (or the run ended) while a deployment was in progress."""


@dataclass
class LocalEndpoint:
    """State of one endpoint, shaped like DescribeEndpoint."""

    name: str
    arn: str
    config: dict[str, Any]  # the configuration being deployed, or deployed
    workdir: Path
    alarms_in_alarm: Callable[[Sequence[str]], list[str]]  # those of the named CloudWatch alarms in ALARM now
    status: str = "Creating"
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_modified_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    proxy: EndpointProxy = field(default_factory=EndpointProxy)
    server: ModelServer | None = None  # the model server of the deployed configuration (blue, in an update)
    deployed_config: dict[str, Any] | None = None
    starting: ModelServer | None = None  # the model server of a deployment in progress (green, in an update)
    pending: PendingDeployment | None = None
    # The DeploymentConfig of the latest CreateEndpoint or UpdateEndpoint that had one.
    last_deployment_config: dict[str, Any] | None = None
    # A new model server serves only once this is set; LocalSageMaker.hold_deployments clears it.
    ready_gate: threading.Event = field(default_factory=_open_gate)
    container: ContainerRuntime | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    listener: ProgressListener = events.ignore
    invocation_faults: Mapping[str, int] = field(default_factory=dict)  # shared with its model servers
    deployment_started: float = field(default_factory=time.monotonic)
    aborted: threading.Event = field(default_factory=threading.Event)

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
                    **variant_capacity(
                        variant,
                        variant.get("InitialInstanceCount", 1),
                        variant.get("InitialInstanceCount", 1),
                    ),
                }
                for variant in config["ProductionVariants"]
            ],
        }
        capture = config.get("DataCaptureConfig")
        if capture:  # DataCaptureConfigSummary
            enabled = capture.get("EnableCapture", True)
            description["DataCaptureConfig"] = {
                "EnableCapture": enabled,
                "CaptureStatus": "Started" if enabled else "Stopped",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"],
            } | ({"KmsKeyId": capture["KmsKeyId"]} if "KmsKeyId" in capture else {})
        if self.failure_reason:
            description["FailureReason"] = self.failure_reason
        if self.last_deployment_config is not None:
            description["LastDeploymentConfig"] = self.last_deployment_config
        if self.pending:
            description["PendingDeploymentSummary"] = self.pending.summary()
        return description

    def start_deployment(
        self, config: dict[str, Any], instance_count: int, deployment_config: dict[str, Any] | None
    ) -> None:
        """As CreateEndpoint or UpdateEndpoint returns, before ``deploy`` runs: DescribeEndpoint shows the
        deployment from the start."""
        self.config, self.deployment_started = config, time.monotonic()
        self.pending = PendingDeployment.launching(config, instance_count)
        if deployment_config is not None:
            self.last_deployment_config = deployment_config
        if self.deployed_config is not None:
            self._set_status("Updating")

    def deploy(
        self, config: dict[str, Any], model: dict[str, Any], plan: BlueGreenPlan | None = None
    ) -> None:
        """Bring up ``config`` (run in a thread). Without a plan (a new endpoint, or an update without a
        DeploymentConfig) the proxy switches to it at once and the old server stops; with one, the update is
        blue/green as the plan says."""
        try:
            server = self._start_model_server(config, model)
        except (ModelServerFailed, OSError, tarfile.TarError, KeyError) as error:
            self.starting = self.pending = None
            reason = (
                str(error) if isinstance(error, ModelServerFailed) else f"{type(error).__name__}: {error}"
            )
            if self.server is not None and self.deployed_config is not None and self.server.is_alive():
                # A failed update leaves the endpoint serving its previous configuration, InService, with the
                # update's failure as FailureReason (a new endpoint, or one whose old server died, is Failed).
                self.config = self.deployed_config
                self._set_status("InService", f"Failed to update endpoint: {reason}")
                self.listener(
                    events.EndpointRolledBack(self.name, self.config["EndpointConfigName"], (), reason)
                )
                return
            self._set_status("Failed", reason)
            return
        previous = self.server
        if plan is None or previous is None:
            self.starting = None
            self.proxy.router.route([(server, 1.0)])
            self.server, self.deployed_config, self.pending = server, config, None
            self._set_status("InService")
            if previous:
                previous.stop()
            return
        try:
            self._shift_traffic(previous, server, plan)
        except _DeploymentAborted:
            return

    def _start_model_server(self, config: dict[str, Any], model: dict[str, Any]) -> ModelServer:
        """The configuration's model server, ready and released (``ready_gate``); raises why not."""
        base_dir = self.workdir / config["EndpointConfigName"]
        download_model(
            model["PrimaryContainer"]["ModelDataUrl"], base_dir / "model", model.get("ExecutionRoleArn")
        )
        server = self.starting = ModelServer(
            base_dir,
            config["ProductionVariants"][0]["VariantName"],
            container=self.container,
            invocation_faults=self.invocation_faults,
            data_capture=CaptureSettings.of(self.name, config, model),
        )
        server.start()
        server.wait_ready()
        self.ready_gate.wait()
        if not server.is_alive():  # died while the deployment was held
            assert server.process is not None
            raise ModelServerFailed(
                f"model server exited with code {server.process.returncode} before it was ready; "
                f"see {server.log_path}"
            )
        return server

    def _shift_traffic(self, blue: ModelServer, green: ModelServer, plan: BlueGreenPlan) -> None:
        """Green takes each step's share, baking between steps and after the last one while the rollback alarms
        and the deadline are watched; then blue stops, or everything goes back to blue."""
        pending = self.pending
        assert pending is not None
        *partial_steps, last_step = plan.steps
        part = "canary" if plan.traffic_routing == "CANARY" else "partial"
        bakes = [(step, part, step.wait_seconds, "WaitIntervalInSeconds") for step in partial_steps]
        bakes.append((last_step, "full", plan.termination_wait_seconds, "TerminationWaitInSeconds"))
        deadline = (
            None
            if plan.maximum_execution_seconds is None
            else self.deployment_started + plan.maximum_execution_seconds
        )
        # An alarm already in ALARM, or a deadline passed while green started, rolls back before any shift.
        rollback = self._bake(0, plan, deadline)
        for step, capacity_part, wait_seconds, wait_setting in bakes:
            if rollback:
                break
            capacity = f"{capacity_part} capacity of {step.green_instances} instance(s)"
            self._shift(blue, green, step, f"Activating traffic on {capacity}.")
            pending.advance(
                "Baking",
                f"Baking for {wait_seconds} seconds ({wait_setting}) with traffic enabled on {capacity}.",
                step.green_instances,
            )
            rollback = self._bake(wait_seconds, plan, deadline)
        if rollback:
            self._roll_back(blue, green, rollback)
            return
        self.server, self.starting = green, None
        blue.stop()  # after its in-flight requests
        self.deployed_config, self.pending = self.config, None
        self._set_status("InService")

    def _shift(self, blue: ModelServer, green: ModelServer, step: TrafficStep, message: str) -> None:
        assert self.pending is not None
        self.pending.advance("ActivatingTraffic", message, self.pending.instances_with_traffic)
        self.proxy.router.route([(blue, 1 - step.green_share), (green, step.green_share)])
        self.listener(events.TrafficShifted(self.name, self.config["EndpointConfigName"], step.green_share))

    def _bake(self, seconds: float, plan: BlueGreenPlan, deadline: float | None) -> Rollback | None:
        """Wait ``seconds`` (looking at least once) while no rollback alarm is in ALARM and the deadline holds."""
        until = time.monotonic() + seconds
        while True:
            if tripped := self.alarms_in_alarm(plan.alarm_names):
                return Rollback(tuple(tripped), f"rollback alarm(s) in ALARM: {', '.join(tripped)}")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return Rollback(
                    (), f"MaximumExecutionTimeoutInSeconds ({plan.maximum_execution_seconds} s) exceeded"
                )
            if now >= until:
                return None
            if self.aborted.wait(min(ALARM_CHECK_SECONDS, until - now)):
                raise _DeploymentAborted

    def _roll_back(self, blue: ModelServer, green: ModelServer, rollback: Rollback) -> None:
        """All traffic back to blue, green stopped: the endpoint serves its old configuration again."""
        assert self.pending is not None and self.deployed_config is not None
        self._set_status("RollingBack")
        self.pending.advance("Deleting", f"Terminating {self.pending.instance_count} instance(s).", 0)
        self.proxy.router.route([(blue, 1.0)])
        self.listener(
            events.EndpointRolledBack(
                self.name, self.deployed_config["EndpointConfigName"], rollback.alarms, rollback.reason
            )
        )
        green.stop()  # after its in-flight requests
        self.starting, self.pending, self.config = None, None, self.deployed_config
        self._set_status("InService")

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

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """An InvokeEndpoint through the endpoint's front; ``headers``: the request's, as the runtime API sent them."""
        return loopback_request(self.proxy.server_address[1], "POST", "/invocations", body, headers)

    def shutdown(self) -> None:
        self.aborted.set()
        self.proxy.shutdown()
        self.proxy.server_close()
        for server in (self.server, self.starting):
            if server:
                server.stop(drain_seconds=0)

    def _set_status(self, status: str, failure_reason: str | None = None) -> None:
        self.status, self.failure_reason = status, failure_reason
        self.last_modified_time = datetime.now(UTC)


def download_model(model_data_url: str, model_dir: Path, role_arn: str | None) -> None:
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
