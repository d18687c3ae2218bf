"""Whether an emulated answer could be botocore's parse of the real service's response (its output shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import Shape

SAGEMAKER_API = botocore.session.get_session().get_service_model("sagemaker")


def assert_matches_api_shape(value: Any, shape: Shape, path: str = "") -> None:
    """``value`` could be botocore's parse of a real SageMaker response of this shape."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        missing = set(shape.required_members) - set(value)
        assert not missing, f"{path}: missing required {sorted(missing)}"
        for key, item in value.items():
            assert key in shape.members, f"{path}: {key} is not a member of {shape.name}"
            assert_matches_api_shape(item, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            assert_matches_api_shape(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "map":
        assert isinstance(value, dict), path
        for key, item in value.items():
            assert_matches_api_shape(key, shape.key, f"{path} key")
            assert_matches_api_shape(item, shape.value, f"{path}[{key}]")
    else:
        expected = {
            "string": str,
            "timestamp": datetime,
            "boolean": bool,
            "integer": int,
            "long": int,
            "double": (int, float),
            "float": (int, float),
        }[shape.type_name]
        assert isinstance(value, expected), f"{path}: {value!r} is not a {shape.type_name}"
        if getattr(shape, "enum", None):
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
