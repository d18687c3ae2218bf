"""botocore event handlers on every boto3 client of this process: the clients created from now on (each new
session registers botocore's built-in handlers) and those of boto3's default session, which may exist already."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import boto3
import botocore.handlers

Handler = tuple[str, Callable[..., Any]]  # (event, function), as in botocore.handlers.BUILTIN_HANDLERS


def register_everywhere(handlers: Sequence[Handler], name: str) -> None:
    """Idempotent; ``name`` tells these handlers apart on the default session."""
    for handler in handlers:
        if handler not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(handler)
    if boto3.DEFAULT_SESSION is not None:
        for event, function in handlers:
            boto3.DEFAULT_SESSION.events.register(event, function, unique_id=f"{name}-{event}")


def unregister_everywhere(handlers: Sequence[Handler], name: str) -> None:
    for handler in handlers:
        while handler in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(handler)
    if boto3.DEFAULT_SESSION is not None:
        for event, _ in handlers:
            boto3.DEFAULT_SESSION.events.unregister(event, unique_id=f"{name}-{event}")
