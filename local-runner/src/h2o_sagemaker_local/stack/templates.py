"""Templates read as CloudFormation runs them, with what the local deployer needs of SAM's transform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from h2o_sagemaker_local.sam.expansion import GENERATING_TYPES, SamUnavailable, generated_roles
from h2o_sagemaker_local.stack.model import DeploymentFailed


class Templates:
    """Reads templates; SAM's translator runs once per template tree (it takes seconds), its roles are kept."""

    def __init__(self) -> None:
        self._sam_roles: dict[Path, dict[str, dict[str, Any]]] = {}

    def read(self, template_path: Path) -> dict[str, Any]:
        """The template after SAM's transform, for what the local deployer needs of the transform: the IAM role
        SAM generates for each function and state machine that names none, added as ``<LogicalId>Role``
        (CloudFormation's name for it)."""
        template = read_template(template_path)
        if template_path not in self._sam_roles:
            self._translate_tree(template_path)
        for owner, role in self._sam_roles[template_path.resolve()].items():
            template["Resources"][f"{owner}Role"] = role
            resource = template["Resources"][owner]
            resource["DependsOn"] = [*as_list(resource.get("DependsOn")), f"{owner}Role"]
        return template

    def _translate_tree(self, template_path: Path) -> None:
        """Run SAM's translator once for the template and every nested application's template under it."""
        templates, pending = {}, [template_path.resolve()]
        while pending:
            path = pending.pop()
            templates[path] = read_template(path)
            for resource in templates[path].get("Resources", {}).values():
                location = resource.get("Properties", {}).get("Location")
                if resource.get("Type") == "AWS::Serverless::Application" and isinstance(location, str):
                    nested = (path.parent / location).resolve()
                    if nested.is_file() and nested not in templates:
                        pending.append(nested)
        needing = {
            str(path): template
            for path, template in templates.items()
            if any(
                resource.get("Type") in GENERATING_TYPES and "Role" not in resource.get("Properties", {})
                for resource in template.get("Resources", {}).values()
            )
        }
        try:
            roles = generated_roles(needing) if needing else {}
        except SamUnavailable as error:
            raise DeploymentFailed(
                f"{template_path}: Transform AWS::Serverless-2016-10-31 failed: {error}"
            ) from None
        for path in templates:
            self._sam_roles[path] = roles.get(str(path), {})
        self._sam_roles[template_path] = self._sam_roles[template_path.resolve()]


def read_template(template_path: Path) -> dict[str, Any]:
    template, matches = decode(str(template_path))
    if matches:
        raise DeploymentFailed(f"{template_path}: {matches[0]}")
    return template


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
