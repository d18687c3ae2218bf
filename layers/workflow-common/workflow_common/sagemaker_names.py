"""SageMaker's rules for the names the workflow gives its jobs, models, endpoints and endpoint configs."""

from __future__ import annotations

from typing import Final

NAME_PATTERN: Final = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
TUNING_JOB_NAME_MAX_LENGTH: Final = 32
# Models, endpoints, endpoint configs and production variants.
RESOURCE_NAME_MAX_LENGTH: Final = 63
