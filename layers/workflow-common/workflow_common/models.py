"""Base models for the workflow's JSON documents: the user files, the run contract and the Lambda payloads.

The field names are snake_case in Python and camelCase (the workflow's own keys) or PascalCase (keys passed on
to SageMaker and Application Auto Scaling as they are) in JSON. Both spellings validate, so code can build a
model with Python names; a model dumps its JSON names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel, to_pascal


class StrictModel(BaseModel):
    """A document with no keys beyond those declared: a misspelt key is an error, not a silent default."""

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class CamelCaseModel(StrictModel):
    model_config = ConfigDict(alias_generator=to_camel)


class PascalCaseModel(StrictModel):
    model_config = ConfigDict(alias_generator=to_pascal)
