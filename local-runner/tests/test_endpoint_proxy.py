"""The endpoint's front (EndpointProxy) holds InvokeEndpoint's body limit, which botocore does not check: a larger
request is refused before any model server sees it, and a larger response is not handed to the client. It also
queues the requests its model server's configuration captures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import botocore.session
import pytest
from h2o_sagemaker_local.data_capture import CaptureSettings
from h2o_sagemaker_local.hosting import MAX_INVOCATION_BYTES, EndpointProxy, loopback_request


@dataclass
class FakeModelServer:
    """Answers every request with ``answer`` bytes and records the sizes of the bodies it was sent."""

    answer: bytes = b'{"predictions": []}'
    variant_name: str = "AllTraffic"
    lock: threading.Lock = field(default_factory=threading.Lock)
    active_requests: int = 0
    received: list[int] = field(default_factory=list)
    data_capture: CaptureSettings | None = None

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        self.received.append(len(body))
        return 200, self.answer, "application/json"

    def release(self) -> None:
        with self.lock:
            self.active_requests -= 1


@pytest.fixture
def proxy() -> Iterator[EndpointProxy]:
    proxy = EndpointProxy()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def invoke(proxy: EndpointProxy, body: bytes) -> tuple[int, dict]:
    status, payload, _ = loopback_request(
        proxy.server_address[1], "POST", "/invocations", body, {"Content-Type": "text/csv"}
    )
    return status, json.loads(payload)


def test_the_limit_is_the_one_in_botocores_model_for_the_request_and_the_response() -> None:
    operation = (
        botocore.session.get_session()
        .get_service_model("sagemaker-runtime")
        .operation_model("InvokeEndpoint")
    )
    assert operation.input_shape.members["Body"].metadata["max"] == MAX_INVOCATION_BYTES
    assert operation.output_shape.members["Body"].metadata["max"] == MAX_INVOCATION_BYTES


def test_a_request_over_the_limit_is_refused_before_any_model_server(proxy: EndpointProxy) -> None:
    server = FakeModelServer()
    proxy.router.route([(server, 1.0)])

    assert invoke(proxy, b"x" * MAX_INVOCATION_BYTES)[0] == 200
    status, answer = invoke(proxy, b"x" * (MAX_INVOCATION_BYTES + 1))

    assert status == 413
    assert (
        answer["error"]
        == f"request body of {MAX_INVOCATION_BYTES + 1} bytes is over InvokeEndpoint's 6291456 bytes"
    )
    assert server.received == [MAX_INVOCATION_BYTES]
    assert [invocation.status for invocation in proxy.take_invocations()] == [200]


def test_a_response_over_the_limit_is_a_server_error(proxy: EndpointProxy) -> None:
    server = FakeModelServer(answer=b"x" * (MAX_INVOCATION_BYTES + 1))
    proxy.router.route([(server, 1.0)])

    status, answer = invoke(proxy, b"a,b\n1,2\n")

    assert status == 500
    assert answer["error"] == "the model's response of 6291457 bytes is over InvokeEndpoint's 6291456 bytes"
    assert [invocation.status for invocation in proxy.take_invocations()] == [500]


def capturing(percentage: int) -> CaptureSettings:
    config = {
        "ProductionVariants": [{"VariantName": "AllTraffic"}],
        "DataCaptureConfig": {
            "InitialSamplingPercentage": percentage,
            "DestinationS3Uri": "s3://bucket/capture/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    }
    settings = CaptureSettings.of(
        "endpoint", config, {"ExecutionRoleArn": "arn:aws:iam::123456789012:role/m"}
    )
    assert settings is not None
    return settings


def test_answered_requests_are_queued_for_capture_as_sampled(proxy: EndpointProxy) -> None:
    server = FakeModelServer(data_capture=capturing(100))
    proxy.router.route([(server, 1.0)])

    assert invoke(proxy, b"a,b\n1,2\n")[0] == 200
    assert invoke(proxy, b"x" * (MAX_INVOCATION_BYTES + 1))[0] == 413  # never reached the model: not captured

    [captured] = proxy.take_captured()
    assert (captured.request, captured.request_content_type) == (b"a,b\n1,2\n", "text/csv")
    assert (captured.response, captured.response_content_type) == (server.answer, "application/json")
    assert captured.settings is server.data_capture
    assert proxy.take_captured() == []

    server.data_capture = capturing(0)
    assert invoke(proxy, b"a,b\n1,2\n")[0] == 200
    assert proxy.take_captured() == []


def test_a_failed_invocation_is_not_captured(proxy: EndpointProxy) -> None:
    server = FakeModelServer(answer=b"x" * (MAX_INVOCATION_BYTES + 1), data_capture=capturing(100))
    proxy.router.route([(server, 1.0)])
    assert invoke(proxy, b"a,b\n1,2\n")[0] == 500
    assert proxy.take_captured() == []
