"""AWS API errors a later retry can fix, raised to the state machine under one name it retries.

The SDK retries throttling and 5xx errors itself (standard mode); what still fails after its attempts, and the
transient errors it does not retry (Application Auto Scaling's InternalServiceException and
ConcurrentUpdateException are HTTP 400), would otherwise reach Step Functions as a botocore class name that no
Retry list names. They become ``AwsServiceUnavailable``, which the calling task retries with backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore.exceptions import ClientError

TRANSIENT_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "Throttled",
        "SlowDown",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceException",
        "ServiceUnavailable",
        "ConcurrentUpdateException",
    }
)


class AwsServiceUnavailable(RuntimeError):
    """An AWS API stayed throttled or failing through the SDK's retries: worth retrying later."""


def is_not_found(error: ClientError) -> bool:
    """Only a not-found answer counts: throttling or access denied must surface as they are.

    SageMaker reports a missing tuning job as ResourceNotFound, and a missing training job, algorithm,
    endpoint or endpoint config as a ValidationException saying it could not find the resource.
    """
    details = error.response.get("Error", {})
    code, message = details.get("Code"), details.get("Message", "").lower()
    return code == "ResourceNotFound" or (
        code == "ValidationException" and ("could not find" in message or "not found" in message)
    )


def is_transient(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES or status >= 500


@contextmanager
def transient_errors_raised_as_unavailable() -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if not is_transient(error):
            raise
        details = error.response.get("Error", {})
        raise AwsServiceUnavailable(
            f"{error.operation_name}: {details.get('Code')}: {details.get('Message')} (retried by the SDK)"
        ) from error
