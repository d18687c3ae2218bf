"""API faults on demand: a fraction of the AWS calls the state machines and Lambda functions make fail with the
errors AWS really returns for them (throttling, a resource limit, an internal error, with their real codes).

A fault replaces one HTTP attempt's response before moto sees the request (botocore's ``before-send``), so what
the caller does about it is what it would do on AWS: a Lambda's SDK retries throttling and 5xx by its retry mode,
a state machine's task (moto's interpreter does not retry) fails with the name Step Functions gives the error
(``aws_errors``) and its Retry list decides. A fault never has a side effect: the request is refused before
it is served. Who is faulted is the caller as IAM knows it: sessions Lambda or Step Functions assumed. The
``.sync`` integrations' own polling (a state machine's Describe calls) is Step Functions' internal work, which a
user cannot retry, and is left alone; so are the runner's and SageMaker's own calls (training data, artifacts).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import botocore.handlers
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.model import OperationModel
from moto.core.botocore_stubber import MockRawResponse

from h2o_sagemaker_local.iam import enforcement

OPERATION_HEADER: Final = "X-Local-Api-Operation"
UNSERVED_URL: Final = "https://api-fault.local.invalid/"
FAULTED_CALLERS: Final = frozenset({"lambda.amazonaws.com", "states.amazonaws.com"})


@dataclass(frozen=True)
class ApiError:
    code: str
    status: int
    message: str


_THROTTLED: Final = ApiError("ThrottlingException", 400, "Rate exceeded")
_INTERNAL: Final = ApiError("InternalFailure", 500, "We encountered an internal error. Please try again.")
# What each service answers when it throttles or fails internally (the codes its SDKs retry on).
_SERVICE_ERRORS: Final = {
    "sagemaker": (_THROTTLED, _INTERNAL),
    "stepfunctions": (_THROTTLED, ApiError("ServiceUnavailable", 503, "Service Unavailable")),
    "ssm": (_THROTTLED, ApiError("InternalServerError", 500, "An internal error occurred.")),
    "application-autoscaling": (
        _THROTTLED,
        ApiError("InternalServiceException", 400, "Application Auto Scaling encountered an internal error."),
    ),
    "sns": (ApiError("Throttled", 400, "Rate exceeded"), ApiError("InternalError", 500, "Internal Error")),
    "s3": (
        ApiError("SlowDown", 503, "Please reduce your request rate."),
        ApiError("InternalError", 500, "We encountered an internal error. Please try again."),
    ),
    "lambda": (
        ApiError("TooManyRequestsException", 429, "Rate Exceeded."),
        ApiError("ServiceException", 500, "Lambda was unable to process the request."),
    ),
}
# Quota errors of the calls that create what a quota counts (SageMaker's per-account limits, Step Functions'
# open executions).
_LIMITS: Final = {
    ("sagemaker", "CreateHyperParameterTuningJob"): ApiError(
        "ResourceLimitExceeded",
        400,
        "The account-level service limit 'Number of concurrent hyperparameter tuning jobs' is 100 Jobs, with current utilization of 100 Jobs.",
    ),
    ("sagemaker", "UpdateEndpoint"): ApiError(
        "ResourceLimitExceeded",
        400,
        "The account-level service limit 'ml.c5.large for endpoint usage' is 2 Instances, with current utilization "
        "of 2 Instances and a request delta of 1 Instances.",
    ),
    ("sagemaker", "CreateEndpoint"): ApiError(
        "ResourceLimitExceeded",
        400,
        "The account-level service limit 'Number of endpoints' is 100, with current utilization of 100.",
    ),
    ("stepfunctions", "StartExecution"): ApiError(
        "ExecutionLimitExceeded", 400, "Maximum number of running executions reached."
    ),
    ("application-autoscaling", "RegisterScalableTarget"): ApiError(
        "ConcurrentUpdateException", 400, "You already have a pending update to an Auto Scaling resource."
    ),
}


@dataclass
class ApiFaults:
    """Fails ``rate`` of the eligible HTTP attempts, chosen by a seeded generator (reproducible per seed), and
    the attempts ``fail_next`` scripts."""

    rate: float
    seed: int | None = None
    # (caller role, call, error code) -> faults injected
    injected: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    attempts: int = 0
    scripted: list[tuple[str, str, ApiError]] = field(default_factory=list)  # (service, operation, error)

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ValueError(f"the API fault rate must be at least 0 and below 1, not {self.rate}")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def summary(self) -> str:
        by_code: Counter[str] = Counter()
        for (_, _, code), count in self.injected.items():
            by_code[code] += count
        codes = ", ".join(f"{code} x{count}" for code, count in sorted(by_code.items()))
        return f"{sum(by_code.values())} of {self.attempts} calls failed" + (f" ({codes})" if codes else "")

    def fail_next(self, service: str, operation: str, code: str) -> None:
        """The next eligible attempt of this call fails with ``code``, one of the errors it can meet here."""
        known = _errors_of(service, operation)
        error = next((item for item in known if item.code == code), None)
        if error is None:
            raise ValueError(
                f"{service} {operation} fails here with {[item.code for item in known]}, not {code}"
            )
        with self._lock:
            self.scripted.append((service, operation, error))

    def fault_for(self, service: str, operation: str, caller: enforcement.Principal) -> ApiError | None:
        if caller.service not in FAULTED_CALLERS or service not in _SERVICE_ERRORS:
            return None
        if caller.service == "states.amazonaws.com" and operation.startswith("Describe"):
            return None  # .sync polling: Step Functions' own
        with self._lock:
            self.attempts += 1
            script = next((item for item in self.scripted if item[:2] == (service, operation)), None)
            if script is not None:
                self.scripted.remove(script)
                error = script[2]
            elif self._random.random() < self.rate:
                error = self._random.choice(_errors_of(service, operation))
            else:
                return None
            self.injected[caller.role_name, f"{service}:{operation}", error.code] += 1
            return error


def _errors_of(service: str, operation: str) -> list[ApiError]:
    return [
        *_SERVICE_ERRORS.get(service, ()),
        *([_LIMITS[service, operation]] if (service, operation) in _LIMITS else []),
    ]


@dataclass
class _Active:
    faults: ApiFaults | None = None


_active = _Active()


def _tag_operation(model: OperationModel, params: dict[str, Any], **_: Any) -> None:
    """Name the call on its request, so each HTTP attempt (retries too) knows what it is."""
    if _active.faults is not None:
        params.setdefault("headers", {})[OPERATION_HEADER] = (
            f"{model.service_model.service_name}/{model.name}"
        )


def _fail_attempt(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    faults, control = _active.faults, enforcement.active()
    operation = request.headers.get(OPERATION_HEADER)
    if faults is None or control is None or operation is None:
        return None
    service, name = (operation.decode() if isinstance(operation, bytes) else operation).split("/", 1)
    caller = control.principal(_access_key(request))
    error = faults.fault_for(service, name, caller) if caller else None
    if error is None:
        return None
    # botocore calls every before-send handler and takes the first response: moto's stubber would still serve
    # the request. It serves no request for a host outside AWS's, so the refused attempt goes there.
    request.url = UNSERVED_URL
    return _response(request, service, error)


def _access_key(request: AWSPreparedRequest) -> str:
    authorization = request.headers.get("Authorization", b"")
    text = authorization.decode() if isinstance(authorization, bytes) else authorization
    credential = text.partition("Credential=")[2]
    return credential.split("/", 1)[0]


def _response(request: AWSPreparedRequest, service: str, error: ApiError) -> AWSResponse:
    """The error as the service's protocol writes it, for botocore's parser and retry handler."""
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    protocol = _protocol(service)
    if protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.1"
        body = json.dumps({"__type": error.code, "message": error.message})
    elif protocol == "rest-json":
        headers["x-amzn-ErrorType"] = error.code
        body = json.dumps({"message": error.message, "Message": error.message})
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{error.code}</Code><Message>{error.message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:  # rest-xml (S3)
        headers["x-amz-request-id"] = request_id
        body = f"<Error><Code>{error.code}</Code><Message>{error.message}</Message><RequestId>{request_id}</RequestId></Error>"
    return AWSResponse(request.url, error.status, headers, MockRawResponse(body))


_PROTOCOLS: dict[str, str] = {}


def _protocol(service: str) -> str:
    if service not in _PROTOCOLS:
        _PROTOCOLS[service] = botocore.session.get_session().get_service_model(service).metadata["protocol"]
    return _PROTOCOLS[service]


_HANDLERS: Final = (
    ("before-call", _tag_operation, botocore.handlers.REGISTER_LAST),
    ("before-send", _fail_attempt, botocore.handlers.REGISTER_FIRST),  # before moto's stubber answers
)


def install(faults: ApiFaults) -> None:
    """Inject ``faults`` into the calls of every client created from now on (IAM enforcement must be on)."""
    _active.faults = faults
    for handler in _HANDLERS:
        if handler not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(handler)
    if boto3.DEFAULT_SESSION is not None:  # the interpreter's clients come from it
        events = boto3.DEFAULT_SESSION.events
        events.register_last("before-call", _tag_operation, unique_id="h2o-local-faults-tag")
        events.register_first("before-send", _fail_attempt, unique_id="h2o-local-faults-send")


def uninstall() -> None:
    _active.faults = None
    for handler in _HANDLERS:
        while handler in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(handler)
    if boto3.DEFAULT_SESSION is not None:
        events = boto3.DEFAULT_SESSION.events
        events.unregister("before-call", unique_id="h2o-local-faults-tag")
        events.unregister("before-send", unique_id="h2o-local-faults-send")
