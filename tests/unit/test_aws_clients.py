"""The handlers' client factory: one client per service and function, retrying throttling."""

from __future__ import annotations

import pytest
from workflow_common.aws_clients import AwsClients


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def test_a_client_is_made_once_per_service_with_backoff_retries() -> None:
    aws_client = AwsClients()

    sagemaker = aws_client("sagemaker")

    assert aws_client("sagemaker") is sagemaker
    assert aws_client("application-autoscaling") is not sagemaker
    assert sagemaker.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}  # 8 retries


def test_two_functions_never_share_a_client() -> None:
    assert AwsClients()("sagemaker") is not AwsClients()("sagemaker")
