"""Deploy the real SAM templates into moto, the way CloudFormation would, for the resource types they use.

Intrinsic functions are evaluated from the templates themselves (parameters, conditions, Ref, GetAtt, Sub,
If, Select, Split, Join), nested applications are deployed from their own templates, state machines are
created from their ASL files with the DefinitionSubstitutions resolved, and Lambda functions are registered
so that invoking them runs their real handler module in this process. Nothing of the wiring is copied here.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import json
import os
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import boto3
from cfnlint.decode import decode

from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.iam.requests import Authorization
from h2o_sagemaker_local.sam.expansion import GENERATING_TYPES, SamUnavailable, generated_roles

ACCOUNT_ID = "123456789012"
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
REGION = "us-east-1"
Handler = Callable[[dict[str, Any], Any], Any]
_request_numbers = itertools.count(1)


class DeploymentFailed(Exception):
    """A resource could not be created; the message says which and why, as CloudFormation would."""


class _TemplateError(Exception):
    """A reference or function the template cannot be evaluated with; ``deploy`` names where it occurred."""


@dataclass
class LocalFunction:
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    layer_dirs: list[Path]
    role_arn: str | None = None


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever sys.stdout is at the time of writing."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


CURRENT_STDOUT = _CurrentStdout()


@dataclass
class FunctionRegistry:
    """Function name -> real handler module, with the function's environment applied during each call.

    With a ``log_dir``, what a function prints (Powertools' JSON log lines) goes to ``<log_dir>/<name>.log``,
    as CloudWatch Logs keeps it apart from the caller's console on AWS.
    """

    log_dir: Path | None = None
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    log_files: dict[str, TextIO] = field(default_factory=dict)
    modules: dict[str, ModuleType] = field(default_factory=dict)  # function name -> its handler module
    caches: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # function name -> its Powertools providers

    def resolve(self, function_name: str) -> Handler:
        function = self.functions[
            function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        ]
        handler_name = function.handler.rsplit(".", 1)[1]
        for path in [function.code_dir, *function.layer_dirs]:
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

        def invoke(event: dict[str, Any], context: Any) -> Any:
            # Lambdas read their settings from the environment; one call at a time keeps them apart.
            with self.lock, contextlib.redirect_stdout(self._log_file(function.name)):
                # The runtime's environment holds the execution role's credentials (when IAM is enforced).
                environment = function.environment | enforcement.role_environment(
                    function.role_arn, "lambda.amazonaws.com", function.name
                )
                saved = {key: os.environ.get(key) for key in environment}
                os.environ.update(environment)
                try:
                    with (
                        enforcement.acting_as(function.role_arn, "lambda.amazonaws.com", function.name),
                        self._process_caches(function),
                    ):
                        # Powertools' log handler keeps the stream it found at import: give it one that follows
                        # sys.stdout, so each call's lines reach that call's log file.
                        with contextlib.redirect_stdout(CURRENT_STDOUT):
                            module = self._module(function)
                        return getattr(module, handler_name)(event, context)
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value

        return invoke

    @contextlib.contextmanager
    def _process_caches(self, function: LocalFunction) -> Iterator[None]:
        """Process-wide caches of the Lambda libraries, kept per function as each runs in its own process on AWS:
        Powertools keeps its parameter providers, with their boto3 clients, in one dict."""
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        own = self.caches.setdefault(function.name, {})
        others = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(own)
        try:
            yield
        finally:
            own.clear()
            own.update(DEFAULT_PROVIDERS)
            DEFAULT_PROVIDERS.clear()
            DEFAULT_PROVIDERS.update(others)

    def _module(self, function: LocalFunction) -> ModuleType:
        """The function's handler module, imported afresh for this registry: each deployed function starts cold, as
        in its own Lambda runtime, so no client an earlier run in this process cached at module level is reused.
        The shared layer (and the libraries) are imported once per process, so they must keep no per-function
        state such as a client."""
        if function.name not in self.modules:
            module_name = function.handler.rsplit(".", 1)[0]
            sys.modules.pop(module_name, None)
            self.modules[function.name] = importlib.import_module(module_name)
        return self.modules[function.name]

    def _log_file(self, function_name: str) -> TextIO:
        if self.log_dir is None:
            return sys.stdout
        if function_name not in self.log_files:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.log_files[function_name] = (self.log_dir / f"{function_name}.log").open("a", buffering=1)
        return self.log_files[function_name]

    def close(self) -> None:
        for log_file in self.log_files.values():
            log_file.close()
        self.log_files.clear()


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


def _references(value: Any) -> set[str]:
    """Logical ids a template fragment depends on."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else item.split(".")[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if isinstance(item, list):
                    found.update(_references(item[1]))
            else:
                found.update(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(_references(item))
    return found


class Deployer:
    """Creates the resources of a template (and its nested applications) in moto."""

    def __init__(self, registry: FunctionRegistry):
        self.registry = registry
        self.clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("lambda", "iam", "sns", "s3", "stepfunctions")
        }
        self._sam_roles: dict[Path, dict[str, dict[str, Any]]] = {}

    def _template(self, template_path: Path) -> dict[str, Any]:
        """The template as CloudFormation runs it after SAM's transform, for what the local deployer needs of the
        transform: the IAM role SAM generates for each function and state machine that names none, added as
        ``<LogicalId>Role`` (CloudFormation's name for it)."""
        template = _read_template(template_path)
        if template_path not in self._sam_roles:
            self._translate_tree(template_path)
        for owner, role in self._sam_roles[template_path.resolve()].items():
            template["Resources"][f"{owner}Role"] = role
            resource = template["Resources"][owner]
            resource["DependsOn"] = [*_as_list(resource.get("DependsOn")), f"{owner}Role"]
        return template

    def _translate_tree(self, template_path: Path) -> None:
        """Run SAM's translator once for the template and every nested application's template under it."""
        templates, pending = {}, [template_path.resolve()]
        while pending:
            path = pending.pop()
            templates[path] = _read_template(path)
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

    def deploy(
        self, name: str, template_path: Path, parameters: dict[str, str], layer_dirs: list[Path] | None = None
    ) -> Stack:
        template = self._template(template_path)
        stack = Stack(name, template_path, {}, self.registry, list(layer_dirs or []))
        for key, spec in template.get("Parameters", {}).items():
            if key in parameters:
                stack.parameters[key] = str(parameters[key])
            elif "Default" in spec:
                stack.parameters[key] = str(spec["Default"])
            else:
                raise DeploymentFailed(f"{name}: parameter {key} has no value")
        for logical_id, kind, properties, globals_ in self._resources(stack, template):
            stack.resources[logical_id] = self._create(stack, logical_id, kind, properties, globals_)
            stack.applied[logical_id] = (kind, properties, globals_)
        self._outputs(stack, template)
        return stack

    def update(self, stack: Stack, parameters: dict[str, str]) -> Stack:
        """UpdateStack with the stack's template: the given parameter values replace the previous ones, the
        others keep theirs (UsePreviousValue), and what depends on them is re-evaluated.

        As in CloudFormation, only a resource whose properties changed is updated: a custom resource gets an
        ``Update`` request with ``OldResourceProperties`` (a new physical id has the old one deleted once the
        update is done), a nested application is updated with its new parameters, a function gets its new
        settings, a state machine its new definition; other types keep nothing locally that their properties
        change. A resource the template no longer creates is deleted: a custom resource gets ``Delete``, a
        topic is deleted; of other types only the stack's record of it goes."""
        template = self._template(stack.template_path)
        unknown = sorted(set(parameters) - set(template.get("Parameters", {})))
        if unknown:
            raise DeploymentFailed(f"{stack.name}: the template has no parameter {', '.join(unknown)}")
        stack.parameters |= {key: str(value) for key, value in parameters.items()}
        replaced = []  # (logical id, type, old physical id, old properties) of replaced custom resources
        kept = set()
        for logical_id, kind, properties, globals_ in self._resources(stack, template):
            kept.add(logical_id)
            previous = stack.applied.get(logical_id)
            if previous == (kind, properties, globals_):
                continue
            if previous is None:
                stack.resources[logical_id] = self._create(stack, logical_id, kind, properties, globals_)
            else:
                old_physical_id = stack.resources[logical_id]["Ref"]
                record = self._update(stack, logical_id, kind, properties, globals_, previous[1])
                if _is_custom(kind) and record["Ref"] != old_physical_id:
                    replaced.append((logical_id, kind, old_physical_id, previous[1]))
                stack.resources[logical_id] = record
            stack.applied[logical_id] = (kind, properties, globals_)
        # Cleanup, after every resource is updated: replaced and removed resources are deleted.
        for logical_id, kind, physical_id, properties in replaced:
            self._custom_resource_request(stack, logical_id, kind, "Delete", properties, physical_id)
        for logical_id in [key for key in stack.applied if key not in kept]:
            kind, properties, _ = stack.applied.pop(logical_id)
            record = stack.resources.pop(logical_id)
            if _is_custom(kind):
                self._custom_resource_request(stack, logical_id, kind, "Delete", properties, record["Ref"])
            elif kind == "AWS::SNS::Topic":
                self.clients["sns"].delete_topic(TopicArn=record["Ref"])
        stack.outputs = {}
        self._outputs(stack, template)
        return stack

    def _resources(
        self, stack: Stack, template: dict[str, Any]
    ) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        """(logical id, type, properties, function globals) of each resource the template creates, in dependency
        order, evaluated when its turn comes (after what it references was created or updated)."""
        conditions: dict[str, bool] = {}
        for key, expression in template.get("Conditions", {}).items():
            with _located(stack.name, f"condition {key}"):
                conditions[key] = bool(self._evaluate(stack, expression, conditions))
        stack.conditions = conditions
        resources = template["Resources"]
        try:
            order = list(
                TopologicalSorter(
                    {
                        logical_id: {
                            dependency
                            for dependency in _references(resource) | set(_as_list(resource.get("DependsOn")))
                            if dependency in resources
                        }
                        for logical_id, resource in resources.items()
                    }
                ).static_order()
            )
        except CycleError as error:
            raise DeploymentFailed(
                f"{stack.name}: circular dependency between resources {error.args[1]}"
            ) from None
        for logical_id in order:
            resource = resources[logical_id]
            with _located(stack.name, f"resource {logical_id}"):
                if "Condition" in resource and not _condition(conditions, resource["Condition"]):
                    continue
                properties = self._evaluate(stack, resource.get("Properties", {}), conditions)
                globals_ = (
                    self._evaluate(stack, template.get("Globals", {}).get("Function", {}), conditions)
                    if resource["Type"] == "AWS::Serverless::Function"
                    else {}  # Globals.Function applies to functions only
                )
            yield logical_id, resource["Type"], properties, globals_

    def _outputs(self, stack: Stack, template: dict[str, Any]) -> None:
        for key, output in template.get("Outputs", {}).items():
            with _located(stack.name, f"output {key}"):
                if "Condition" in output and not _condition(stack.conditions, output["Condition"]):
                    continue
                stack.outputs[key] = self._evaluate(stack, output["Value"], stack.conditions)

    # Intrinsic functions ---------------------------------------------------------------------------------------

    def _pseudo(self, stack: Stack, name: str) -> str | None:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": stack.name,
            "AWS::StackId": stack.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _ref(self, stack: Stack, name: str) -> Any:
        if name in stack.parameters:
            return stack.parameters[name]
        pseudo = self._pseudo(stack, name)
        if pseudo is not None:
            return pseudo
        if name not in stack.resources:
            raise _TemplateError(
                f"Ref {name}: no parameter, pseudo parameter or created resource of that name"
            )
        return stack.resources[name]["Ref"]

    def _get_att(self, stack: Stack, logical_id: str, attribute: str) -> Any:
        if logical_id not in stack.resources:
            raise _TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: no created resource {logical_id}")
        resource = stack.resources[logical_id]
        values = resource.get("Outputs", {}) if attribute.startswith("Outputs.") else resource
        key = attribute.removeprefix("Outputs.")
        if key not in values:
            raise _TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute}: {logical_id} has no attribute {attribute}"
            )
        return values[key]

    def _evaluate(self, stack: Stack, value: Any, conditions: dict[str, bool]) -> Any:
        if isinstance(value, list):
            return [self._evaluate(stack, item, conditions) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref":
                return self._ref(stack, argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._get_att(stack, logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                variables = self._evaluate(stack, variables, conditions)

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
                        return "${" + name[1:] + "}"
                    if name in variables:
                        return str(variables[name])
                    if "." in name:  # ${Resource.Attribute}
                        logical_id, attribute = name.split(".", 1)
                        return str(self._get_att(stack, logical_id, attribute))
                    return str(self._ref(stack, name))

                return re.sub(r"\$\{([^}]*)\}", substitute, text)
            if key == "Fn::If":
                name, if_true, if_false = argument
                return self._evaluate(
                    stack, if_true if _condition(conditions, name) else if_false, conditions
                )
            if key == "Fn::Equals":
                left, right = self._evaluate(stack, argument, conditions)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate(stack, argument[0], conditions)
            if key == "Fn::Select":
                index, items = self._evaluate(stack, argument, conditions)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self._evaluate(stack, argument, conditions)
                return text.split(separator)
            if key == "Fn::Join":
                separator, items = self._evaluate(stack, argument, conditions)
                return separator.join(str(item) for item in items)
            if key == "Condition":
                return _condition(conditions, argument)
            if key.startswith("Fn::"):
                raise _TemplateError(f"{key} is not supported by the local deployer")
        return {key: self._evaluate(stack, item, conditions) for key, item in value.items()}

    # Resources -------------------------------------------------------------------------------------------------

    def _physical_name(self, stack: Stack, logical_id: str) -> str:
        return f"{stack.name}-{logical_id}"[:64]

    def _create(
        self, stack: Stack, logical_id: str, kind: str, properties: dict[str, Any], globals_: dict[str, Any]
    ) -> dict[str, Any]:
        base = stack.template_path.parent
        name = self._physical_name(stack, logical_id)
        if kind == "AWS::Serverless::LayerVersion":
            stack.layer_dirs.append(base / properties["ContentUri"])
            return {"Ref": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"}
        if kind == "AWS::SNS::Topic":
            arn = self.clients["sns"].create_topic(Name=name)["TopicArn"]
            return {"Ref": arn, "TopicName": name, "TopicArn": arn}
        if kind in ("AWS::SNS::Subscription", "AWS::Logs::LogGroup"):
            return {"Ref": name, "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"}
        if kind == "AWS::IAM::Role":
            arn = self._put_role(name, properties, create=True)
            return {"Ref": name, "Arn": arn, "RoleId": name}
        if kind == "AWS::Serverless::Application":
            child = self.deploy(
                name, base / properties["Location"], properties.get("Parameters", {}), stack.layer_dirs
            )
            return {"Ref": child.stack_id, "Outputs": child.outputs, "Stack": child}
        if kind == "AWS::Serverless::Function":
            return self._create_function(
                stack, name, properties, globals_, self._role_of(stack, logical_id, properties)
            )
        if kind == "AWS::Serverless::StateMachine":
            role_arn = self._role_of(stack, logical_id, properties)
            self._check_state_machine_role(name, role_arn, properties)
            try:
                arn = self.clients["stepfunctions"].create_state_machine(
                    name=name, definition=self._definition(stack, properties), roleArn=role_arn
                )["stateMachineArn"]
            except self.clients["stepfunctions"].exceptions.InvalidDefinition as error:
                raise DeploymentFailed(f"{stack.name}: {logical_id} CREATE_FAILED: {error}") from None
            return {"Ref": arn, "Name": name, "Arn": arn}
        if _is_custom(kind):
            response = self._custom_resource_request(stack, logical_id, kind, "Create", properties)
            return {"Ref": response["PhysicalResourceId"], **response.get("Data", {})}
        raise DeploymentFailed(f"{stack.name}: resource type {kind} ({logical_id}) is not emulated locally")

    def _update(
        self,
        stack: Stack,
        logical_id: str,
        kind: str,
        properties: dict[str, Any],
        globals_: dict[str, Any],
        old_properties: dict[str, Any],
    ) -> dict[str, Any]:
        record = stack.resources[logical_id]
        if kind == "AWS::Serverless::Application":
            child = self.update(record["Stack"], properties.get("Parameters", {}))
            return record | {"Outputs": child.outputs}
        if kind == "AWS::Serverless::Function":
            role_arn = self._role_of(stack, logical_id, properties)
            return self._create_function(stack, record["Ref"], properties, globals_, role_arn, update=True)
        if kind == "AWS::Serverless::StateMachine":
            role_arn = self._role_of(stack, logical_id, properties)
            self._check_state_machine_role(record["Name"], role_arn, properties)
            try:
                self.clients["stepfunctions"].update_state_machine(
                    stateMachineArn=record["Arn"],
                    definition=self._definition(stack, properties),
                    roleArn=role_arn,
                )
            except self.clients["stepfunctions"].exceptions.InvalidDefinition as error:
                raise DeploymentFailed(f"{stack.name}: {logical_id} UPDATE_FAILED: {error}") from None
            return record
        if kind == "AWS::IAM::Role":
            self._put_role(record["Ref"], properties, create=False)
            return record
        if _is_custom(kind):
            response = self._custom_resource_request(
                stack, logical_id, kind, "Update", properties, record["Ref"], old_properties
            )
            return {"Ref": response["PhysicalResourceId"], **response.get("Data", {})}
        return record  # topics, subscriptions, log groups, layers: nothing local depends on properties

    def _role_of(self, stack: Stack, logical_id: str, properties: dict[str, Any]) -> str:
        """The execution role of a function or state machine: its Role, else the one SAM generated for it."""
        if "Role" in properties:
            role = str(properties["Role"])
            return (
                role
                if role.startswith("arn:")
                else self.clients["iam"].get_role(RoleName=role)["Role"]["Arn"]
            )
        generated = f"{logical_id}Role"
        if generated not in stack.resources:
            raise DeploymentFailed(f"{stack.name}: {logical_id} has no Role and SAM generated none")
        return str(stack.resources[generated]["Arn"])

    def _put_role(self, name: str, properties: dict[str, Any], create: bool) -> str:
        """Create or update an IAM role with its trust policy, inline policies and managed policies."""
        iam = self.clients["iam"]
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
        return arn

    def _check_state_machine_role(self, name: str, role_arn: str, properties: dict[str, Any]) -> None:
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

    def _definition(self, stack: Stack, properties: dict[str, Any]) -> str:
        definition = (stack.template_path.parent / properties["DefinitionUri"]).read_text()
        for key, replacement in properties.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace(f"${{{key}}}", str(replacement))
        return definition

    def _create_function(
        self,
        stack: Stack,
        name: str,
        properties: dict[str, Any],
        globals_: dict[str, Any],
        role_arn: str,
        update: bool = False,
    ) -> dict[str, Any]:
        code_dir = stack.template_path.parent / properties["CodeUri"]
        environment = globals_.get("Environment", {}).get("Variables", {}) | properties.get(
            "Environment", {}
        ).get("Variables", {})
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("placeholder.py", "# runs in process from its real code folder\n")
        settings = {
            "FunctionName": name,
            "Runtime": properties.get("Runtime", globals_.get("Runtime", "python3.13")),
            "Role": role_arn,
            "Handler": properties["Handler"],
            "Timeout": int(properties.get("Timeout", globals_.get("Timeout", 60))),
            "Environment": {"Variables": {key: str(value) for key, value in environment.items()}},
        }
        if update:
            arn = self.clients["lambda"].update_function_configuration(**settings)["FunctionArn"]
        else:
            arn = self.clients["lambda"].create_function(**settings, Code={"ZipFile": archive.getvalue()})[
                "FunctionArn"
            ]
        self.registry.functions[name] = LocalFunction(
            name,
            code_dir,
            properties["Handler"],
            # What the Lambda runtime sets, then the template's variables.
            {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": name}
            | {key: str(value) for key, value in environment.items()},
            list(stack.layer_dirs),
            role_arn,
        )
        control = enforcement.active()
        if (
            control is not None
        ):  # CreateFunction: "The role defined for the function cannot be assumed by Lambda."
            try:
                control.assume(role_arn, "lambda.amazonaws.com", name)
            except enforcement.AccessDenied:
                raise DeploymentFailed(
                    f"{stack.name}: {name}: The role defined for the function cannot be assumed by Lambda ({role_arn})"
                ) from None
        invoke_config = properties.get("EventInvokeConfig")
        if invoke_config:  # SAM's EventInvokeConfig: AWS::Lambda::EventInvokeConfig
            on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            self.clients["lambda"].put_function_event_invoke_config(
                FunctionName=name,
                MaximumRetryAttempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
                MaximumEventAgeInSeconds=int(invoke_config.get("MaximumEventAgeInSeconds", 21600)),
                **({"DestinationConfig": {"OnFailure": {"Destination": on_failure}}} if on_failure else {}),
            )
        for event in properties.get("Events", {}).values():
            if event["Type"] == "EventBridgeRule":
                self._subscribe_s3_uploads(arn, event["Properties"]["Pattern"])
        return {"Ref": name, "Arn": arn}

    def _subscribe_s3_uploads(self, function_arn: str, pattern: dict[str, Any]) -> None:
        """Deliver the rule's S3 'Object Created' events as a bucket notification with the same key filter.

        moto does not route S3 events through EventBridge rules to Lambda; the trigger accepts both shapes.
        """
        bucket = pattern["detail"]["bucket"]["name"][0]
        [key_filter] = pattern["detail"]["object"]["key"]
        prefix, _, suffix = key_filter["wildcard"].partition("*")
        s3 = self.clients["s3"]
        configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
        configuration.pop("ResponseMetadata", None)
        configuration["LambdaFunctionConfigurations"] = [  # an update replaces the function's subscription
            item
            for item in configuration.get("LambdaFunctionConfigurations", [])
            if item["LambdaFunctionArn"] != function_arn
        ]
        configuration["LambdaFunctionConfigurations"].append(
            {
                "LambdaFunctionArn": function_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": prefix},
                            {"Name": "suffix", "Value": suffix},
                        ]
                    }
                },
            }
        )
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)

    def _custom_resource_request(
        self,
        stack: Stack,
        logical_id: str,
        kind: str,
        request_type: str,
        properties: dict[str, Any],
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send a Create, Update or Delete request to the custom resource's function; return its response."""
        responses: list[dict[str, Any]] = []

        class ResponseHandler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                responses.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), ResponseHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        event = {
            "RequestType": request_type,
            "ResponseURL": f"http://127.0.0.1:{server.server_port}/",
            "StackId": stack.stack_id,
            "RequestId": f"{logical_id}-{request_type.lower()}-{next(_request_numbers)}",
            "ResourceType": kind,
            "LogicalResourceId": logical_id,
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        try:
            result = self.clients["lambda"].invoke(
                FunctionName=properties["ServiceToken"], Payload=json.dumps(event)
            )
        finally:
            server.shutdown()
            server.server_close()
        if not responses:
            # On AWS the stack would wait an hour for the reply; say now why none came.
            reason = "the custom resource sent no response"
            if "FunctionError" in result:
                error = json.loads(result["Payload"].read())
                reason += f"; its function failed: {error.get('errorType')}: {error.get('errorMessage')}"
            raise DeploymentFailed(f"{logical_id} ({kind}) {request_type.upper()}_FAILED: {reason}")
        [response] = responses
        if response["Status"] != "SUCCESS":
            raise DeploymentFailed(
                f"{logical_id} ({kind}) {request_type.upper()}_FAILED: {response['Reason']}"
            )
        return response


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
        name, ACCOUNT_ID, "us-east-1", documents[name]
    )


def _read_template(template_path: Path) -> dict[str, Any]:
    template, matches = decode(str(template_path))
    if matches:
        raise DeploymentFailed(f"{template_path}: {matches[0]}")
    return template


def _is_custom(kind: str) -> bool:
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


def _condition(conditions: dict[str, bool], name: str) -> bool:
    if name not in conditions:
        raise _TemplateError(f"condition {name} is not defined in Conditions")
    return conditions[name]


@contextlib.contextmanager
def _located(stack_name: str, where: str) -> Iterator[None]:
    """Turn an evaluation error into a DeploymentFailed that names the stack and the resource or output."""
    try:
        yield
    except _TemplateError as error:
        raise DeploymentFailed(f"{stack_name}: {where}: {error}") from None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
