"""The account's default EventBridge bus as AWS services send to it: the local SageMaker's model registry and the
local CloudWatch alarms put their service events here, as SageMaker and CloudWatch do on AWS."""

from __future__ import annotations

import copy
import time
from typing import Any, cast

from moto.events.models import events_backends
from moto.events.utils import EventMessageType


def send(account_id: str, region: str, event: dict[str, Any]) -> None:
    """To every enabled rule of the default bus whose pattern matches (with the ingestion time moto's targets
    expect; its Lambda delivery, ``moto_patches`` 14, leaves it out, as EventBridge does)."""
    bus = events_backends[account_id][region].describe_event_bus("default")
    for rule in list(bus.rules.values()):
        if rule.state == "ENABLED":
            rule.send_to_targets(
                cast(EventMessageType, copy.deepcopy(event) | {"ingestion-time": time.time()})
            )
