"""Run by the SAM CLI's own interpreter: SAM templates (JSON on stdin, ``{name: template}``) -> their
CloudFormation, as ``sam deploy`` submits it (``{name: template}`` on stdout). Only samtranslator is imported."""

import json
import sys

from samtranslator.translator.transform import transform


class NoManagedPolicyNames:
    """Templates name managed policies by ARN; the translator never needs IAM to look a name up."""

    def load(self) -> dict:
        return {}


def main() -> None:
    templates = json.load(sys.stdin)
    json.dump(
        {name: transform(template, {}, NoManagedPolicyNames()) for name, template in templates.items()},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
