"""SageMaker's model registry, locally: model package groups and their versioned model packages, behind the
same boto3 calls, with SageMaker's "Model Package State Change" events on the default EventBridge bus.

moto stores model packages but answers with shapes botocore does not model (and overwrites a package's metadata
and approval description with nothing on every update), and sends no events. Here the shapes are
DescribeModelPackage's, an update changes only what it names, ``ClientToken`` makes a creation idempotent, and
every creation and update sends the event SageMaker sends, its detail the package's description plus
``UpdatedModelPackageFields`` (what an update changed), to every rule of the default bus
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from moto.sagemaker.exceptions import ConflictException, ValidationError

from h2o_sagemaker_local import default_bus

APPROVAL_STATUSES: Final = ("Approved", "Rejected", "PendingManualApproval")
GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# CreateModelPackage's limits on CustomerMetadataProperties (API reference).
METADATA_MAX_ENTRIES: Final = 50
METADATA_KEY = re.compile(r"^[\w\s.:/=+\-@]{1,128}$")
METADATA_VALUE = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")
EVENT_DETAIL_TYPE: Final = "SageMaker Model Package State Change"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ModelPackageGroup:
    name: str
    arn: str
    description: str | None
    tags: list[dict[str, str]]
    creation_time: datetime = field(default_factory=_now)

    def describe(self, created_by: dict[str, Any]) -> dict[str, Any]:
        described: dict[str, Any] = {
            "ModelPackageGroupName": self.name,
            "ModelPackageGroupArn": self.arn,
            "CreationTime": self.creation_time,
            "CreatedBy": created_by,
            "ModelPackageGroupStatus": "Completed",
        }
        if self.description:
            described["ModelPackageGroupDescription"] = self.description
        return described


@dataclass
class ModelPackage:
    """One version, described as DescribeModelPackage answers."""

    description: dict[str, Any]
    client_token: str | None

    @property
    def arn(self) -> str:
        return str(self.description["ModelPackageArn"])

    def summary(self) -> dict[str, Any]:
        keys = (
            "ModelPackageName",
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "ModelPackageDescription",
            "CreationTime",
            "ModelPackageStatus",
            "ModelApprovalStatus",
        )
        return {key: self.description[key] for key in keys if key in self.description}


class LocalModelRegistry:
    """The registry's state and its API actions (``ROUTED_ACTIONS`` of the local SageMaker)."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id, self.region = account_id, region
        self.groups: dict[str, ModelPackageGroup] = {}
        self.packages: dict[str, ModelPackage] = {}  # by ARN, in order of creation
        self._lock = threading.Lock()
        # Delivery of the state-change events; replaced by tests that watch them.
        self.send_event: Callable[[dict[str, Any]], None] = functools.partial(
            default_bus.send, account_id, region
        )

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"

    def _caller(self) -> dict[str, Any]:
        return {
            "IamIdentity": {"Arn": f"arn:aws:iam::{self.account_id}:root", "PrincipalId": self.account_id}
        }

    # Groups ------------------------------------------------------------------------------------------------

    def _group(self, name_or_arn: str) -> ModelPackageGroup:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        for group in self.groups.values():
            if group.name.lower() == name.lower():
                return group
        raise ValidationError(f"ModelPackageGroup {self._arn('model-package-group', name)} does not exist.")

    def create_model_package_group(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelPackageGroupName"]
        if not GROUP_NAME.match(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'modelPackageGroupName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        with self._lock:
            if any(group.name.lower() == name.lower() for group in self.groups.values()):
                raise ValidationError(
                    f"Model Package Group already exists: {self._arn('model-package-group', name)}"
                )
            group = ModelPackageGroup(
                name,
                self._arn("model-package-group", name),
                request.get("ModelPackageGroupDescription"),
                list(request.get("Tags", [])),
            )
            self.groups[name] = group
        return {"ModelPackageGroupArn": group.arn}

    def describe_model_package_group(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._group(request["ModelPackageGroupName"]).describe(self._caller())

    def list_model_package_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        contains = request.get("NameContains", "")
        summaries = [
            {
                "ModelPackageGroupName": group.name,
                "ModelPackageGroupArn": group.arn,
                "CreationTime": group.creation_time,
                "ModelPackageGroupStatus": "Completed",
            }
            | ({"ModelPackageGroupDescription": group.description} if group.description else {})
            for group in self.groups.values()
            if contains in group.name
        ]
        return {"ModelPackageGroupSummaryList": summaries}

    def delete_model_package_group(self, request: dict[str, Any]) -> dict[str, Any]:
        group = self._group(request["ModelPackageGroupName"])
        if any(
            package.description["ModelPackageGroupName"] == group.name for package in self.packages.values()
        ):
            # Undocumented on AWS; refused rather than leaving versions without their group.
            raise ConflictException(
                f"Model package group {group.arn} has model packages: delete them first (DeleteModelPackage)."
            )
        del self.groups[group.name]
        return {}

    def group_tags(self, arn: str) -> list[dict[str, str]] | None:
        for group in self.groups.values():
            if group.arn == arn.lower() or group.arn == arn:
                return list(group.tags)
        return None

    # Versions ----------------------------------------------------------------------------------------------

    def _package(self, name_or_arn: str) -> ModelPackage:
        package = self.packages.get(name_or_arn) or self.packages.get(name_or_arn.lower())
        if package is None:
            raise ValidationError(f"ModelPackage {name_or_arn} does not exist.")
        return package

    def create_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        if "ModelPackageGroupName" not in request:
            raise ValidationError(
                "local SageMaker registers versioned model packages only: give ModelPackageGroupName"
            )
        group = self._group(request["ModelPackageGroupName"])
        status = request.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in APPROVAL_STATUSES:
            raise ValidationError(
                f"1 validation error detected: Value '{status}' at 'modelApprovalStatus' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(APPROVAL_STATUSES)}]"
            )
        if not request.get("InferenceSpecification", {}).get("Containers"):
            raise ValidationError("InferenceSpecification with at least one container is required.")
        _check_metadata(request.get("CustomerMetadataProperties", {}))
        token = request.get("ClientToken")
        with self._lock:
            for package in self.packages.values():
                if token and package.client_token == token:
                    return {"ModelPackageArn": package.arn}  # the same request again: the version it made
            version = 1 + sum(
                package.description["ModelPackageGroupName"] == group.name
                for package in self.packages.values()
            )
            now = _now()
            description: dict[str, Any] = {
                "ModelPackageName": group.name,
                "ModelPackageGroupName": group.name,
                "ModelPackageVersion": version,
                "ModelPackageArn": self._arn("model-package", f"{group.name}/{version}"),
                "CreationTime": now,
                "InferenceSpecification": request["InferenceSpecification"],
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                "CertifyForMarketplace": bool(request.get("CertifyForMarketplace", False)),
                "ModelApprovalStatus": status,
                "CreatedBy": self._caller(),
                "LastModifiedTime": now,
                "LastModifiedBy": self._caller(),
            }
            for key in (
                "ModelPackageDescription",
                "ModelMetrics",
                "MetadataProperties",
                "CustomerMetadataProperties",
            ):
                if key in request:
                    description[key] = copy.deepcopy(request[key])
            package = ModelPackage(description, token)
            self.packages[package.arn] = package
        self.send_event(self._event(package, updated_fields=None))
        return {"ModelPackageArn": package.arn}

    def describe_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._package(request["ModelPackageName"]).description)

    def list_model_packages(self, request: dict[str, Any]) -> dict[str, Any]:
        group_name = request.get("ModelPackageGroupName")
        group = self._group(group_name) if group_name else None
        status = request.get("ModelApprovalStatus")
        found = [
            package
            for package in self.packages.values()
            if (group is None or package.description["ModelPackageGroupName"] == group.name)
            and status in (None, package.description["ModelApprovalStatus"])
        ]
        descending = request.get("SortOrder", "Ascending") == "Descending"
        found.sort(key=lambda package: package.description["CreationTime"], reverse=descending)
        return {"ModelPackageSummaryList": [package.summary() for package in found]}

    def update_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        package = self._package(request["ModelPackageArn"])
        updated: list[str] = []
        with self._lock:
            description = package.description
            status = request.get("ModelApprovalStatus")
            if status is not None:
                if status not in APPROVAL_STATUSES:
                    raise ValidationError(
                        f"1 validation error detected: Value '{status}' at 'modelApprovalStatus' failed to "
                        f"satisfy constraint: Member must satisfy enum value set: [{', '.join(APPROVAL_STATUSES)}]"
                    )
                if status != description["ModelApprovalStatus"]:
                    description["ModelApprovalStatus"] = status
                    updated.append("ModelApprovalStatus")
            if "ApprovalDescription" in request:
                description["ApprovalDescription"] = request["ApprovalDescription"]
                updated.append("ApprovalDescription")
            additions = request.get("CustomerMetadataProperties", {})
            removals = request.get("CustomerMetadataPropertiesToRemove", [])
            if additions or removals:
                metadata = {
                    key: value
                    for key, value in {
                        **description.get("CustomerMetadataProperties", {}),
                        **additions,
                    }.items()
                    if key not in removals
                }
                _check_metadata(metadata)
                description["CustomerMetadataProperties"] = metadata
                updated.append("CustomerMetadataProperties")
            description["LastModifiedTime"] = _now()
            description["LastModifiedBy"] = self._caller()
        if updated:
            self.send_event(self._event(package, updated_fields=updated))
        return {"ModelPackageArn": package.arn}

    def delete_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        package = self._package(request["ModelPackageName"])
        del self.packages[package.arn]
        return {}

    # Events ------------------------------------------------------------------------------------------------

    def _event(self, package: ModelPackage, updated_fields: list[str] | None) -> dict[str, Any]:
        detail = json.loads(json.dumps(package.description, default=_iso))
        if updated_fields:
            detail["UpdatedModelPackageFields"] = updated_fields
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": EVENT_DETAIL_TYPE,
            "source": "aws.sagemaker",
            "account": self.account_id,
            "time": _iso(_now()),
            "region": self.region,
            "resources": [package.arn],
            "detail": detail,
        }


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"not JSON: {type(value).__name__}")


def _check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > METADATA_MAX_ENTRIES:
        raise ValidationError(
            f"1 validation error detected: Value at 'customerMetadataProperties' failed to satisfy constraint: "
            f"Member must have length less than or equal to {METADATA_MAX_ENTRIES}"
        )
    for key, value in metadata.items():
        if not METADATA_KEY.match(key) or not METADATA_VALUE.match(value):
            raise ValidationError(
                f"1 validation error detected: Value '{key}={value}' at 'customerMetadataProperties' failed to "
                "satisfy constraint: keys 1-128 and values 1-256 characters of ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
            )
