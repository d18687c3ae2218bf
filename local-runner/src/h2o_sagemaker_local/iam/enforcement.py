"""IAM enforced on the local run's AWS calls, with the policies the deployed templates give each principal.

Every boto3 call made in this process is authorized before moto sees it (botocore's ``before-call`` event):
the access key says who calls, ``requests.authorizations`` what the call needs, and the policy simulator
decides with the caller's role policies as they are in (moto's) IAM at that moment. Who calls is who would on
AWS:

- a Lambda function: its execution role, whose credentials the runtime puts in the function's environment;
- a state machine's task: the state machine's role, including what an integration does behind the task (the
  managed EventBridge rule and the describe and stop calls of ``.sync``, SageMaker's ListTags);
- a training job reading its channels and writing its model, an endpoint reading ``model.tar.gz``: the
  SageMaker execution role, which SageMaker may assume only if its trust policy lets it, and which the
  creator of the job or model may only pass with ``iam:PassRole``;
- the user (deploying stacks, uploading data, reading results): the local administrator, not checked.

A call the policies do not allow fails as AWS fails it: ``AccessDeniedException`` (``AccessDenied`` for S3,
``AuthorizationError`` for SNS) naming the principal, the action and the resource.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final, NoReturn
from urllib.parse import unquote

import boto3
import boto3.session
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.model import OperationModel

from h2o_sagemaker_local.botocore_hooks import register_everywhere, unregister_everywhere
from h2o_sagemaker_local.iam.requests import (
    AUTOSCALING_ROLE_PATH,
    AUTOSCALING_SERVICE,
    RESOURCE_TAG_ACTIONS,
    ApiCall,
    Authorization,
    UnmappedCall,
    authorizations,
)
from h2o_sagemaker_local.iam.simulator import PolicySimulator, Verdict

PARAMS_KEY: Final = "h2o_sagemaker_local.api_params"
_ACCESS_DENIED: Final = {  # protocol -> (error code, HTTP status) of an authorization failure
    "json": ("AccessDeniedException", 400),
    "rest-json": ("AccessDeniedException", 403),
    "rest-xml": ("AccessDenied", 403),
    "query": ("AccessDenied", 403),
    "ec2": ("UnauthorizedOperation", 403),
}
_ACCESS_DENIED_BY_SERVICE: Final = {"sns": ("AuthorizationError", 403)}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str


@dataclass(frozen=True)
class Principal:
    """An assumed-role session."""

    role_arn: str
    session_name: str
    service: str  # the service principal that assumed the role

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def arn(self) -> str:
        partition, account = self.role_arn.split(":")[1], self.role_arn.split(":")[4]
        return f"arn:{partition}:sts::{account}:assumed-role/{self.role_name}/{self.session_name}"


class AccessDenied(Exception):
    """The principal's policies do not allow the authorization; the message is AWS's."""

    def __init__(
        self,
        principal: Principal | None,
        authorization: Authorization,
        verdict: Verdict | None,
        message: str | None = None,
    ):
        self.principal, self.authorization, self.verdict = principal, authorization, verdict
        if message is not None:
            super().__init__(message)
            return
        who = principal.arn if principal else "an unknown principal"
        action, resource = authorization.action, authorization.resource
        if verdict is None:
            reason = "its credentials are not those of any principal of this account"
        elif verdict.decision == "ExplicitlyDenied":
            reason = "with an explicit deny in an identity-based policy"
        elif verdict.decision == "Error":
            reason = f"the policy simulator refused the request as AWS would not make it: {verdict.errors}"
        else:
            reason = f"because no identity-based policy allows the {action} action"
        super().__init__(
            f"User: {who} is not authorized to perform: {action} on resource: {resource} {reason}"
        )


@dataclass(frozen=True)
class UsedStatement:
    role_name: str
    policy: str
    index: int | None  # 1-based position in the policy


class AccessControl:
    """Principals, their credentials and every decision; ``install`` puts it in front of moto."""

    def __init__(self, simulator: PolicySimulator, account: str, region: str, partition: str = "aws"):
        self.simulator, self.account, self.region, self.partition = simulator, account, region, partition
        self._principals: dict[str, Principal] = {}
        self._credentials: dict[tuple[str, str], Credentials] = {}
        self._admin_keys: set[str] = set()
        self._sessions: dict[tuple[str, str], boto3.session.Session] = {}
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}
        self._parsed: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.used: Counter[UsedStatement] = Counter()
        # statement -> requests it allowed (a few of each): what a test removing it replays
        self.allowed: dict[UsedStatement, list[tuple[Principal, Authorization]]] = {}
        self.denials: list[AccessDenied] = []
        self.service_linked_roles: set[str] = set()
        # service -> the tags of one of its resources by ARN, for RESOURCE_TAG_ACTIONS (the emulators register it)
        self.resource_tags: dict[str, Callable[[str], dict[str, str]]] = {}

    # Principals ---------------------------------------------------------------------------------------------

    def admit_administrator(self, access_key: str) -> None:
        """Calls signed with this key are the user's: allowed, as for an administrator."""
        self._admin_keys.add(access_key)

    def assume(self, role_arn: str, service: str, session_name: str) -> Credentials:
        """The service principal assumes the role (its trust policy decides), as Lambda, Step Functions or SageMaker
        do before they act for it; the same session is returned while it lasts."""
        key = (role_arn, session_name)
        with self._lock:
            if key in self._credentials:
                return self._credentials[key]
        trust = self._role(role_arn).assume_role_policy_document
        authorization = Authorization("sts:AssumeRole", role_arn, {"aws:SourceAccount": self.account})
        verdict = self.simulator.evaluate(
            self._simulation(service, authorization, [], resource_policy=_document(trust))
        )
        if not verdict.allowed:
            self._deny(
                AccessDenied(
                    Principal(role_arn, session_name, service),
                    authorization,
                    verdict,
                    f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}: the role's "
                    "trust policy does not allow it",
                )
            )
        credentials = Credentials(
            access_key="ASIA"
            + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            secret_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(60),
        )
        with self._lock:
            self._credentials.setdefault(key, credentials)
            self._principals[self._credentials[key].access_key] = Principal(role_arn, session_name, service)
            return self._credentials[key]

    def principal(self, access_key: str) -> Principal | None:
        return self._principals.get(access_key)

    def is_administrator(self, access_key: str) -> bool:
        return access_key in self._admin_keys

    # Decisions ----------------------------------------------------------------------------------------------

    def authorize(self, principal: Principal | None, needed: list[Authorization]) -> None:
        """Raise AccessDenied for the first authorization the principal's policies do not allow."""
        for authorization in needed:
            if principal is None:
                self._deny(AccessDenied(None, authorization, None))
            documents, policies = self._identity_policies(principal.role_arn)
            # IAM's decision depends only on the request and the policies: a request asked again of unchanged
            # policies (.sync polls every fraction of a second) gets the same verdict without the evaluator.
            key = (
                principal.arn,
                documents,
                authorization.action,
                authorization.resource,
                _canonical(authorization.context),
            )
            verdict = self._verdicts.get(key)
            if verdict is None:
                verdict = self.simulator.evaluate(self._simulation(principal.arn, authorization, policies))
                with self._lock:
                    self._verdicts[key] = verdict
            if not verdict.allowed:
                self._deny(AccessDenied(principal, authorization, verdict))
            with self._lock:
                for statement in verdict.allowed_by:
                    used = UsedStatement(principal.role_name, statement.policy, statement.index)
                    self.used[used] += 1
                    requests = self.allowed.setdefault(used, [])
                    if len(requests) < 5 and (principal, authorization) not in requests:
                        requests.append((principal, authorization))

    def authorize_call(self, access_key: str, call: ApiCall) -> None:
        if self.is_administrator(access_key):
            return
        principal = self.principal(access_key)
        try:
            needed = authorizations(call)
        except UnmappedCall as unmapped:
            self._deny(
                AccessDenied(
                    principal,
                    Authorization(f"{call.service}:{call.operation}", "*"),
                    None,
                    f"local IAM: no authorization is known for {unmapped}; add it to "
                    f"h2o_sagemaker_local.iam.requests (called as {principal.arn if principal else 'an unknown principal'})",
                )
            )
        if (
            call.service == "application-autoscaling"
            and call.operation == "RegisterScalableTarget"
            and call.params.get("ServiceNamespace") == "sagemaker"
            and AUTOSCALING_SERVICE not in self.service_linked_roles
        ):
            # The account's first SageMaker registration creates Application Auto Scaling's service-linked role.
            role = f"arn:{self.partition}:iam::{self.account}:{AUTOSCALING_ROLE_PATH}"
            needed.append(
                Authorization(
                    "iam:CreateServiceLinkedRole", role, {"iam:AWSServiceName": AUTOSCALING_SERVICE}
                )
            )
        self.authorize(principal, [self._with_resource_tags(authorization) for authorization in needed])
        if call.service == "application-autoscaling" and call.operation == "RegisterScalableTarget":
            self.service_linked_roles.add(AUTOSCALING_SERVICE)

    def _with_resource_tags(self, authorization: Authorization) -> Authorization:
        """The resource's tags as aws:ResourceTag/<key>, as IAM evaluates an action conditioned on them."""
        lookup = self.resource_tags.get(authorization.action.split(":")[0])
        if authorization.action not in RESOURCE_TAG_ACTIONS or lookup is None:
            return authorization
        tags = {f"aws:ResourceTag/{key}": value for key, value in lookup(authorization.resource).items()}
        return replace(authorization, context=authorization.context | tags)

    def _deny(self, denied: AccessDenied) -> NoReturn:
        with self._lock:
            self.denials.append(denied)
        raise denied

    def _simulation(
        self,
        principal: str,
        authorization: Authorization,
        policies: list[dict[str, Any]],
        resource_policy: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        simulation: dict[str, Any] = {
            "request": {
                "principal": principal,
                "action": authorization.action,
                "resource": {"resource": authorization.resource, "accountId": self.account},
                "contextVariables": authorization.context,
            },
            "identityPolicies": policies,
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy
        return simulation

    def _role(self, role_arn: str) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account][self.partition].get_role(role_arn.rsplit("/", 1)[-1])

    def _identity_policies(self, role_arn: str) -> tuple[tuple[tuple[str, str], ...], list[dict[str, Any]]]:
        """The role's inline and attached managed policies as IAM holds them now: their documents as stored (a
        key that changes with them) and as the evaluator takes them."""
        role = self._role(role_arn)
        documents = tuple(sorted(role.policies.items()))
        for arn, managed in sorted(role.managed_policies.items()):
            (default,) = (version for version in managed.versions if version.is_default)
            documents += ((arn, default.document),)
        with self._lock:
            if documents not in self._parsed:
                self._parsed[documents] = [
                    {"name": name, "policy": _document(document)} for name, document in documents
                ]
            return documents, self._parsed[documents]

    # Clients ------------------------------------------------------------------------------------------------

    def session(self, role_arn: str, assumed_by: str, session_name: str) -> boto3.session.Session:
        """A boto3 session acting as the role (one per role session, reused)."""
        key = (role_arn, session_name)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
        credentials = self.assume(role_arn, assumed_by, session_name)
        # The default session's loader: its parsed service models are reused, not read again per role.
        core = botocore.session.get_session()
        core.register_component(
            "data_loader", _ORIGINAL_DEFAULT_SESSION()._session.get_component("data_loader")
        )
        session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.session_token,
            region_name=self.region,
        )
        with self._lock:
            return self._sessions.setdefault(key, session)

    def client(self, service: str, role_arn: str, assumed_by: str, session_name: str, **config: Any) -> Any:
        """A boto3 client acting as the role, assumed by the service principal."""
        credentials = self.assume(role_arn, assumed_by, session_name)
        return boto3.client(
            service,
            region_name=self.region,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.session_token,
            **config,
        )


def _canonical(context: dict[str, Any]) -> str:
    return json.dumps(context, sort_keys=True)


def _document(document: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        return json.loads(unquote(document))  # IAM returns documents URL-encoded


# --- the active access control and the botocore hooks ---------------------------------------------------------


@dataclass
class _Active:
    control: AccessControl | None = None


_active = _Active()


def active() -> AccessControl | None:
    return _active.control


_calling_thread = threading.local()


def _default_session() -> boto3.session.Session:
    """boto3's default session, or the one of the role the calling thread acts as (``acting_as``)."""
    session = getattr(_calling_thread, "session", None)
    return session if session is not None else _ORIGINAL_DEFAULT_SESSION()


_ORIGINAL_DEFAULT_SESSION: Final = boto3._get_default_session


@contextmanager
def acting_as(role_arn: str | None, assumed_by: str, session_name: str) -> Iterator[None]:
    """While the block runs, clients the calling thread creates with ``boto3.client(...)`` act as the role:
    Lambda's runtime gives a function its execution role's credentials the same way, for its process alone."""
    control = _active.control
    if control is None or role_arn is None:
        yield
        return
    previous = getattr(_calling_thread, "session", None)
    _calling_thread.session = control.session(role_arn, assumed_by, session_name)
    try:
        yield
    finally:
        _calling_thread.session = previous


ROLE_CREDENTIAL_VARIABLES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def role_environment(role_arn: str | None, assumed_by: str, session_name: str) -> dict[str, str]:
    """The role's session as environment variables, as the Lambda runtime sets them (none if not enforced):
    code that makes its own ``boto3.Session()`` (Powertools' parameter providers) reads them."""
    control = _active.control
    if control is None or role_arn is None:
        return {}
    credentials = control.assume(role_arn, assumed_by, session_name)
    values = (credentials.access_key, credentials.secret_key, credentials.session_token)
    return dict(zip(ROLE_CREDENTIAL_VARIABLES, values, strict=True))


def role_client(service: str, role_arn: str | None, assumed_by: str, session_name: str, **config: Any) -> Any:
    """A client acting as ``role_arn`` when IAM is enforced, else a plain one (region of the local run)."""
    control = _active.control
    if control is None or role_arn is None:
        return boto3.client(service, **({"region_name": control.region} if control else {}), **config)
    return control.client(service, role_arn, assumed_by, session_name, **config)


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[PARAMS_KEY] = dict(params)


def _authorize_before_call(
    model: OperationModel, params: dict[str, Any], request_signer: Any, context: dict[str, Any], **_: Any
) -> tuple[AWSResponse, dict[str, Any]] | None:
    control = _active.control
    if control is None:
        return None
    credentials = request_signer._credentials  # the client's own, as it would sign the request
    access_key = credentials.get_frozen_credentials().access_key if credentials else ""
    call = ApiCall(
        service=model.service_model.service_name,
        operation=model.name,
        params=context.get(PARAMS_KEY, {}),
        region=request_signer._region_name or control.region,
        account=control.account,
        partition=control.partition,
    )
    try:
        control.authorize_call(access_key, call)
    except AccessDenied as denied:
        return error_response(model, "", str(denied), access_denied=True)
    return None


def error_response(
    model: OperationModel, code: str, message: str, status: int = 400, *, access_denied: bool = False
) -> tuple[AWSResponse, dict[str, Any]]:
    """A parsed error response of the operation's service, as botocore turns it into a ClientError."""
    if access_denied:
        protocol = model.service_model.metadata["protocol"]
        code, status = _ACCESS_DENIED_BY_SERVICE.get(
            model.service_model.service_name, _ACCESS_DENIED[protocol]
        )
    request_id = str(uuid.uuid4())
    http = AWSResponse(url="", status_code=status, headers={"x-amzn-RequestId": request_id}, raw=None)
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return http, parsed


_HANDLERS: Final = (("before-parameter-build", _remember_params), ("before-call", _authorize_before_call))


def install(control: AccessControl) -> None:
    """Enforce ``control`` on every boto3 client created from now on (and the default session's). The user's
    credentials, those the environment and boto3's default session hold now, are the administrator's."""
    control.admit_administrator(os.environ.get("AWS_ACCESS_KEY_ID", ""))
    credentials = boto3._get_default_session().get_credentials()
    if credentials is not None:
        control.admit_administrator(credentials.get_frozen_credentials().access_key)
    _active.control = control
    boto3._get_default_session = _default_session
    register_everywhere(_HANDLERS, "h2o-local-iam")


def uninstall() -> None:
    _active.control = None
    boto3._get_default_session = _ORIGINAL_DEFAULT_SESSION
    unregister_everywhere(_HANDLERS, "h2o-local-iam")


@contextmanager
def enforced(control: AccessControl) -> Iterator[AccessControl]:
    install(control)
    try:
        yield control
    finally:
        uninstall()


def interpreter_client_config() -> Config:
    """The client configuration of moto's ASL interpreter: no SDK retries (Retry in the ASL decides)."""
    return Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1})
