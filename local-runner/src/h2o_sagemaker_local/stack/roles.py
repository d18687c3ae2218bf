"""IAM roles of a stack: creating them in moto, and the checks AWS makes of a role a resource is given."""

from __future__ import annotations

import json
from typing import Any

from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.iam.requests import Authorization
from h2o_sagemaker_local.stack.model import ACCOUNT_ID, REGION, DeploymentFailed, Stack

# What Step Functions needs of a state machine's role to deliver its logs to CloudWatch Logs (Step Functions guide,
# "IAM policies for logging to CloudWatch Logs").
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def put_role(iam: Any, name: str, properties: dict[str, Any], create: bool) -> str:
    """Create or update an IAM role with its trust policy, inline policies and managed policies."""
    trust = json.dumps(properties["AssumeRolePolicyDocument"])
    if create:
        arn = iam.create_role(
            RoleName=name,
            Path=properties.get("Path", "/"),
            AssumeRolePolicyDocument=trust,
            Description=properties.get("Description", ""),
        )["Role"]["Arn"]
    else:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    inline = {policy["PolicyName"]: policy["PolicyDocument"] for policy in properties.get("Policies", [])}
    for old_name in set(iam.list_role_policies(RoleName=name)["PolicyNames"]) - set(inline):
        iam.delete_role_policy(RoleName=name, PolicyName=old_name)
    for policy_name, document in inline.items():
        # SAM's generated policies have no Version, which IAM takes as 2008-10-17 and moto refuses; the two
        # differ only in policy variables (${aws:...}), which no template here uses.
        versioned = {"Version": "2012-10-17", **document}
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(versioned))
    attached = {
        item["PolicyArn"] for item in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    }
    wanted = set(properties.get("ManagedPolicyArns", []))
    for policy_arn in attached - wanted:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
    for policy_arn in wanted - attached:
        _ensure_aws_managed_policy(policy_arn)
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return str(arn)


def execution_role(iam: Any, stack: Stack, logical_id: str, properties: dict[str, Any]) -> str:
    """The execution role of a function or state machine: its Role, else the one SAM generated for it."""
    if "Role" in properties:
        role = str(properties["Role"])
        return role if role.startswith("arn:") else str(iam.get_role(RoleName=role)["Role"]["Arn"])
    generated = f"{logical_id}Role"
    if generated not in stack.resources:
        raise DeploymentFailed(f"{stack.name}: {logical_id} has no Role and SAM generated none")
    return str(stack.resources[generated]["Arn"])


def check_function_role(stack_name: str, name: str, role_arn: str) -> None:
    """What CreateFunction checks of its role: "The role defined for the function cannot be assumed by Lambda"."""
    control = enforcement.active()
    if control is None:
        return
    try:
        control.assume(role_arn, "lambda.amazonaws.com", name)
    except enforcement.AccessDenied:
        raise DeploymentFailed(
            f"{stack_name}: {name}: The role defined for the function cannot be assumed by Lambda ({role_arn})"
        ) from None


def check_state_machine_role(name: str, role_arn: str, properties: dict[str, Any]) -> None:
    """What CreateStateMachine checks of its role: Step Functions may assume it, and with logging on it may
    deliver the logs (AWS: "The state machine IAM Role is not authorized to access the Log Destination")."""
    control = enforcement.active()
    if control is None:
        return
    try:
        control.assume(role_arn, "states.amazonaws.com", name)
    except enforcement.AccessDenied:
        raise DeploymentFailed(
            f"{name}: Neither the global service principal states.amazonaws.com, nor the regional one is "
            f"authorized to assume the provided role {role_arn}"
        ) from None
    if properties.get("Logging", {}).get("Destinations"):
        principal = control.principal(control.assume(role_arn, "states.amazonaws.com", name).access_key)
        try:
            control.authorize(principal, [Authorization(action, "*") for action in LOG_DELIVERY_ACTIONS])
        except enforcement.AccessDenied as denied:
            raise DeploymentFailed(
                f"{name}: The state machine IAM Role is not authorized to access the Log Destination ({denied})"
            ) from None


def _ensure_aws_managed_policy(policy_arn: str) -> None:
    """An AWS managed policy exists in every account; moto has them only when it loads all ~1,500 of them at
    start (about a second), so the one a template attaches is added from moto's own copy of AWS's documents."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    if not policy_arn.startswith("arn:aws:iam::aws:policy/"):
        return
    backend = iam_backends[ACCOUNT_ID]["aws"]
    if policy_arn in backend.managed_policies:
        return
    name = policy_arn.rsplit("/", 1)[-1]
    documents = json.loads(aws_managed_policies_data)
    if name not in documents:
        raise DeploymentFailed(f"Policy {policy_arn} does not exist or is not attachable.")
    backend.managed_policies[policy_arn] = AWSManagedPolicy.from_data(
        name, ACCOUNT_ID, REGION, documents[name]
    )
