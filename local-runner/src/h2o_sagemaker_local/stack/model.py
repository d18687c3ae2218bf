"""A deployed stack as the deployer records it; the account, the region and the error the stack modules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h2o_sagemaker_local.account import ACCOUNT_ID, REGION
from h2o_sagemaker_local.errors import DeploymentFailed
from h2o_sagemaker_local.stack.functions import FunctionRegistry

__all__ = ["ACCOUNT_ID", "REGION", "DeploymentFailed", "Stack"]


@dataclass
class Stack:
    name: str
    template_path: Path
    parameters: dict[str, str]
    registry: FunctionRegistry
    layer_dirs: list[Path] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> {"Ref": ..., attrs}
    outputs: dict[str, Any] = field(default_factory=dict)
    # logical id -> (type, properties, function globals) as last applied: an update compares with them
    applied: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    @property
    def stack_id(self) -> str:
        return f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.name}/local"
