"""The handlers' AWS clients: made on first use, kept for warm invocations, retrying throttling with backoff."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Throttling is retried here, so the state machines only see errors worth reporting.
AWS_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


class AwsClients:
    """One function's clients, one per service, created on first call so tests can intercept them.

    Each handler module makes its own instance: the local runner shares this layer module between all its
    functions, and a client kept here would act for whichever function (and IAM role) made it first.
    """

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, config=AWS_RETRIES)
        return self._clients[service]
