"""Fixtures shared by the unit and reliability tests: fake AWS credentials (moto, never a real account), a Lambda
context, and a loopback stand-in for CloudFormation's response URL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The deployer's stand-in for CloudFormation's pre-signed response URL; ``bodies`` are the answers received.
from h2o_sagemaker_local.stack.custom_resources import ResponseUrl as CloudFormationResponses

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"


# Fake credentials and one region, so nothing can reach a real account.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


@pytest.fixture(scope="session")
def fake_aws_environment() -> dict[str, str]:
    """For fixtures wider than one test, which run before ``aws_credentials``."""
    return FAKE_AWS_ENVIRONMENT


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every boto3 client at fake credentials and one region, so nothing can reach a real account."""
    for name, value in FAKE_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "2026/11/22/[$LATEST]test"
    remaining_millis: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@pytest.fixture(scope="session")
def new_lambda_context() -> Callable[[], FakeLambdaContext]:
    """For fixtures wider than one test, which cannot use ``lambda_context``."""
    return FakeLambdaContext


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def cloudformation_endpoint() -> Iterator[CloudFormationResponses]:
    """One loopback server for the session (stopping one takes up to its 0.5 s poll interval)."""
    with CloudFormationResponses("/response") as endpoint:
        yield endpoint


@pytest.fixture
def responses(cloudformation_endpoint: CloudFormationResponses) -> CloudFormationResponses:
    """The endpoint with no answers yet."""
    cloudformation_endpoint.bodies.clear()
    return cloudformation_endpoint
