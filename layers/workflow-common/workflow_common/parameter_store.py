"""Where the workflow's parameter files live in SSM Parameter Store, and who owns them.

Layout under the stack's path (e.g. ``/ml-project``): ``<path>/ml-parameters`` and ``<path>/hyperparameters``,
each the whole JSON document, so types survive the round trip. Parameters are tagged with the stack that
imported them; a stack only overwrites or deletes parameters carrying its own tag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OWNER_TAG_KEY = "ml-parameter-provider:stack-id"
DOCUMENT_NAMES = ("ml-parameters", "hyperparameters")
# Documents above the 4 KB standard-tier limit move to the advanced tier on their own.
PARAMETER_TIER = "Intelligent-Tiering"
# The advanced tier's limit: a larger value fails put_parameter, so sizes are checked before any write.
MAX_VALUE_BYTES = 8192


class ParameterOwnershipError(RuntimeError):
    """A parameter at the target path exists and was not created by this stack."""


class DocumentTooLargeError(ValueError):
    """A document does not fit in one SSM parameter."""


def normalise_path(path: str) -> str:
    if not path.startswith("/") or path.endswith("/") or "//" in path:
        raise ValueError(f"parameter store path must look like /my-project, got {path!r}")
    return path


def parameter_name(path: str, document: str) -> str:
    return f"{normalise_path(path)}/{document}"


def _owner(ssm: Any, name: str) -> str | None:
    """The owning stack of an existing parameter, '' for an unowned one, None when it does not exist."""
    try:
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    except ssm.exceptions.InvalidResourceId:
        return None
    return next((tag["Value"] for tag in tags if tag["Key"] == OWNER_TAG_KEY), "")


def write_documents(ssm: Any, path: str, documents: Mapping[str, Any], owner: str) -> list[str]:
    """Create or overwrite the documents; refuse to touch parameters that another owner created.

    Everything that can be checked is checked before the first write, so a refusal leaves the previous
    documents in place together (never a new ml-parameters next to an old hyperparameters)."""
    names = {document: parameter_name(path, document) for document in documents}
    values = {document: json.dumps(documents[document], separators=(",", ":")) for document in documents}
    for document, value in values.items():
        size = len(value.encode())
        if size > MAX_VALUE_BYTES:
            raise DocumentTooLargeError(
                f"{document} is {size} bytes as stored (compact JSON); an SSM parameter holds at most "
                f"{MAX_VALUE_BYTES}: shorten it (fewer or shorter ranges and static hyperparameters)"
            )
    foreign = [name for name in names.values() if _owner(ssm, name) not in (None, owner)]
    if foreign:
        raise ParameterOwnershipError(
            f"{', '.join(foreign)} already exist(s) and were not created by this stack; "
            "choose another ParameterStorePath or delete them"
        )
    for document, name in names.items():
        ssm.put_parameter(
            Name=name,
            Value=values[document],
            Type="String",
            Tier=PARAMETER_TIER,
            Overwrite=True,
        )
        ssm.add_tags_to_resource(
            ResourceType="Parameter", ResourceId=name, Tags=[{"Key": OWNER_TAG_KEY, "Value": owner}]
        )
    return list(names.values())


def delete_documents(ssm: Any, path: str, owner: str) -> list[str]:
    """Delete only the documents this owner created; anything else at the path is left alone."""
    deleted = []
    for document in DOCUMENT_NAMES:
        name = parameter_name(path, document)
        if _owner(ssm, name) == owner:
            ssm.delete_parameter(Name=name)
            deleted.append(name)
    return deleted
