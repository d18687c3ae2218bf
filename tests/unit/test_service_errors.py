"""Transient AWS errors reach the state machines under the one name their tasks retry."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from workflow_common.service_errors import (
    AwsServiceUnavailable,
    is_not_found,
    transient_errors_raised_as_unavailable,
)


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DescribeX",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("InternalServiceException", 400),  # Application Auto Scaling's internal error is a 400
        ("ConcurrentUpdateException", 400),
        ("InternalFailure", 500),
        ("SomethingNew", 503),
    ],
)
def test_transient_errors_become_aws_service_unavailable(code: str, status: int) -> None:
    with (
        pytest.raises(AwsServiceUnavailable, match=f"DescribeX: {code}: m"),
        transient_errors_raised_as_unavailable(),
    ):
        raise client_error(code, status)


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "ResourceNotFound"])
def test_other_errors_pass_unchanged(code: str) -> None:
    with pytest.raises(ClientError) as raised, transient_errors_raised_as_unavailable():
        raise client_error(code, 400)
    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(
    ("code", "message", "not_found"),
    [
        ("ResourceNotFound", "Amazon SageMaker can't find a tuning job with name t", True),
        ("ValidationException", "Could not find endpoint 'arn:aws:sagemaker:eu-west-1:1:endpoint/e'.", True),
        ("ValidationException", "Could not find endpoint configuration 'c'.", True),
        ("ValidationException", "Requested resource not found.", True),
        ("ValidationException", "1 validation error detected: Value at 'endpointName' failed", False),
        ("AccessDeniedException", "not authorized; resource not found in policy", False),
        ("ThrottlingException", "Rate exceeded", False),
    ],
)
def test_only_a_not_found_answer_counts_as_not_found(code: str, message: str, not_found: bool) -> None:
    assert is_not_found(client_error(code, 400, message)) is not_found
