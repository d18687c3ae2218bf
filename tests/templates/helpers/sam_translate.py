"""Expand SAM templates into the CloudFormation that SAM would deploy, offline, printed as JSON.

Run with the SAM CLI's own interpreter (.tools/sam/bin/python): the SAM translator lives in that environment.
Local CodeUri/DefinitionUri/ContentUri are replaced by placeholder S3 locations, exactly as `sam validate` does;
parameters without a default get a placeholder value. Usage: sam_translate.py TEMPLATE...
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse


class NoManagedPolicyNames:
    """The templates name no managed policy, so the translator never needs IAM to look one up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(path: str) -> dict[str, Any]:
    with open(path) as source:
        template = yaml_parse(source.read())
    placeholders = {
        name: "placeholder"
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" not in parameter
    }
    validator = SamTemplateValidator(
        template, NoManagedPolicyNames(), region="us-east-1", parameter_overrides=placeholders
    )
    return yaml.safe_load(validator.get_translated_template_if_valid())


if __name__ == "__main__":
    json.dump({path: translate(path) for path in sys.argv[1:]}, sys.stdout)
