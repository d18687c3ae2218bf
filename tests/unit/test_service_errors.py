"""Transient AWS errors reach the state machines under the one name their tasks retry."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from workflow_common.service_errors import AwsServiceUnavailable, transient_errors_raised_as_unavailable


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeX"
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
