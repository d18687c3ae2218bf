"""Custom resources as CloudFormation drives them: a request event sent to the resource's function, and the
pre-signed ResponseURL the function PUTs its answer to, served on loopback."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any

from h2o_sagemaker_local.stack.model import DeploymentFailed

_request_numbers = itertools.count(1)


class ResponseUrl:
    """A loopback stand-in for CloudFormation's pre-signed response URL, served from creation until ``close``
    (or the end of its ``with`` block); ``bodies`` are the JSON answers PUT to it, in order of arrival.

    ``path`` is the URL's path and query, e.g. a signature that must not appear in the function's logs."""

    def __init__(self, path: str = "/") -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Answers(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Answers)
        self.url = f"http://127.0.0.1:{self._server.server_port}{path}"
        # A short poll: shutdown() waits for the next one (0.5 s by default, twice per stack deployment).
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        """Stop serving (this waits for the server's next poll, up to 50 ms)."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ResponseUrl:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def send_request(
    lambda_client: Any,
    *,
    stack_id: str,
    logical_id: str,
    kind: str,
    request_type: str,
    properties: dict[str, Any],
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send a Create, Update or Delete request to the custom resource's function (its ServiceToken); return the
    answer, or fail the deployment as CloudFormation would when the answer is FAILED or none comes."""
    with ResponseUrl() as response_url:
        event = {
            "RequestType": request_type,
            "ResponseURL": response_url.url,
            "StackId": stack_id,
            "RequestId": f"{logical_id}-{request_type.lower()}-{next(_request_numbers)}",
            "ResourceType": kind,
            "LogicalResourceId": logical_id,
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        result = lambda_client.invoke(FunctionName=properties["ServiceToken"], Payload=json.dumps(event))
    if not response_url.bodies:
        # On AWS the stack would wait an hour for the reply; say now why none came.
        reason = "the custom resource sent no response"
        if "FunctionError" in result:
            error = json.loads(result["Payload"].read())
            reason += f"; its function failed: {error.get('errorType')}: {error.get('errorMessage')}"
        raise DeploymentFailed(f"{logical_id} ({kind}) {request_type.upper()}_FAILED: {reason}")
    [response] = response_url.bodies
    if response["Status"] != "SUCCESS":
        raise DeploymentFailed(f"{logical_id} ({kind}) {request_type.upper()}_FAILED: {response['Reason']}")
    return response
