"""Patches that let moto 5.2.5 run this project's state machines and Lambda functions on one machine.

Callers start moto with its ASL interpreter on, then install the patches::

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        moto_patches.install(registry.resolve)  # function name -> handler(event, context)
        ...

``install`` is idempotent: a second call only replaces the resolver and the poll interval. ``uninstall``
restores moto. Every patch reaches into private moto internals, so moto is pinned exactly and each patch is
covered by ``tests/test_moto_patches.py``:

1. Lambda in process. ``LambdaFunction.invoke`` calls the handler returned by the resolver with the decoded
   event and a LambdaContext-like object, instead of Docker (moto fails) or an echo (moto without Docker).
   That single hook serves the interpreter (``lambda:invoke`` and direct ARNs), boto3 ``invoke`` and S3
   notifications. A raised exception becomes AWS's error payload with ``FunctionError: Unhandled``, so Step
   Functions sees the exception's type name (Retry/Catch work); return values are JSON-encoded as Lambda does.
2. Parameter and response normalisation. moto leaves ``StateTaskService._normalise_parameters`` and
   ``_normalise_response`` as no-ops; AWS maps the PascalCase names of a state to the API's own names
   (``StateMachineArn`` -> ``stateMachineArn``) and back. Without it ``states:startExecution`` and every
   camelCase API fail, and ``.sync``/``.sync:2`` cannot find ``ExecutionArn``.
3. Datetimes in task results. SDK responses hold ``datetime`` objects that the execution output cannot be
   JSON-encoded with (``describe_execution`` then fails). They become epoch milliseconds for optimised
   integrations (``sagemaker:``, ``states:``) and ISO-8601 strings for ``aws-sdk:`` tasks.
4. ``arn:aws:states:::sagemaker:<action>``. moto lists SageMaker as unsupported; a SageMaker service goes
   through the normal boto3 client (so an emulation replacing moto's SageMaker handlers is used) and, for
   ``.sync``, polls the matching Describe call until Completed (the Describe output is the result) or
   Failed/Stopped (``States.TaskFailed`` with the Describe output as cause, as for AWS's other ``.sync`` jobs).
5. ``.sync`` poll interval. The interpreter sleeps a fixed 0.5 s between polls; ``install`` sets it.
6. aws-sdk service names. Step Functions drops the dashes of boto3's names (``applicationautoscaling`` for
   ``application-autoscaling``); the override map learns every such name.
7. ``start_execution`` without a name gives an ARN ending in ``:None`` (so the second one collides); AWS uses
   a UUID.
8. S3 event notifications lack ``s3.object.sequencer`` (and ``versionId`` on a versioned bucket), which AWS
   always sends and the manifest trigger uses to tell a re-upload from a duplicate delivery.
9. Error names. An API error a Task meets is named as AWS names it for the Task's kind of integration
   (``aws_errors``: ``SageMaker.ResourceLimitExceededException`` through the optimised integration,
   ``SageMaker.SageMakerException`` for an unmodelled error through aws-sdk, ``Lambda.ServiceException`` for a
   function ARN), where moto used one name per service or ``Exception``. ``States.ALL`` no longer catches
   ``States.Runtime`` or ``States.DataLimitExceeded``, which AWS lets no Retry or Catch handle.
10. Integration fields. moto silently drops the fields an integration does not take; AWS refuses them
    (``integration_fields``): a field written in the definition fails CreateStateMachine/UpdateStateMachine
    with ``InvalidDefinition``, one arriving from a path fails the state with ``States.Runtime``.
11. Task credentials. moto's interpreter calls AWS with fixed test keys; a task now acts as its state machine's
    role (when IAM is enforced, ``iam.enforcement``), and what an optimised integration does with that role
    beyond its API call is authorized before the call: SageMaker's ListTags, and for ``.sync`` the stop action
    and the managed EventBridge rule (a missing events permission fails the task as on AWS: ``'<role>' is not
    authorized to create managed-rule.``).
12. Asynchronous invocation. moto runs an S3 notification's function once and drops its error; Lambda retries
    an asynchronous event (``MaximumRetryAttempts`` of the function's event invoke config, 2 by default) and
    then sends the failure record to the ``OnFailure`` destination, with the function's role.
13. SNS delivery to Lambda. moto invokes a subscribed function once, synchronously, with a fixed sample
    event (``Test`` attributes, ``EXAMPLE`` URLs and ARNs); SNS invokes it asynchronously (retried as 12.) with
    the published message's attributes, its topic, subscription and message id, and real URLs.
14. EventBridge delivery to Lambda. moto's rules deliver to log groups, queues, buses and archives only, and
    raise NotImplementedError for a function target; EventBridge invokes the function asynchronously (in a
    thread here, retried as 12.) with the event, or the target's Input, InputPath or InputTransformer result.
15. Application Auto Scaling's scalable targets. moto keeps a deregistered target's scaling policies and
    scheduled actions, which AWS deletes with it, takes a scaling policy for a target never registered, and
    answers ValidationException for a target that does not exist, where AWS answers ObjectNotFoundException
    (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html).

Other modules patch moto too (the SageMaker emulation routes moto's SageMaker actions); they go through
``replace``, so ``uninstall`` gives all of moto back.

Checked and left alone: ``states:startExecution.sync``/``.sync:2`` work once (2) is in; ``sns:publish`` with a
JSON object ``Message`` already publishes its JSON text.
"""

from __future__ import annotations

import base64
import copy
import datetime
import itertools
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import botocore.session
import botocore.utils
import moto
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError
from moto.events.models import Rule
from moto.events.utils import EventMessageType, EventTemplateParser
from moto.s3 import notifications as s3_notifications
from moto.sns.models import Subscription
from moto.stepfunctions.parser.api import HistoryEventType, InvalidDefinition, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns import (
    StateTaskServiceSns,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import camel_to_snake_case

from h2o_sagemaker_local import aws_errors, integration_fields
from h2o_sagemaker_local.iam import enforcement, requests

MOTO_VERSION: Final = "5.2.5"

Handler = Callable[[Any, Any], Any]
LambdaResolver = Callable[[str], Handler]


@dataclass(frozen=True)
class _SyncJob:
    describe_action: str
    name_parameter: str
    status_key: str


# createX.sync -> how to follow job X to its end.
_SAGEMAKER_SYNC_JOBS: Final = {
    "createtrainingjob": _SyncJob("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "createhyperparametertuningjob": _SyncJob(
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
    "createtransformjob": _SyncJob("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "createprocessingjob": _SyncJob("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
}
_SAGEMAKER_FAILED_STATUSES: Final = frozenset({"Failed", "Stopped"})


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these patches were written and tested against."""


@dataclass(frozen=True)
class LocalLambdaContext:
    """The attributes of AWS's LambdaContext that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    started_at: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


_ABSENT: Final = object()


@dataclass
class _State:
    resolver: LambdaResolver | None = None
    # (owner, name, original or _ABSENT) of every replace, this module's and others'
    originals: list[tuple[object, str, Any]] = field(default_factory=list)
    added_service_names: list[str] = field(default_factory=list)
    installed: bool = False


_state = _State()


def install(lambda_resolver: LambdaResolver, *, sync_poll_seconds: float = 0.2) -> None:
    """Patch moto (once) so state machines and Lambda functions run locally; see the module docstring.

    ``lambda_resolver(function_name)`` returns the Python handler of a deployed function. ``sync_poll_seconds``
    is the pause between two Describe calls of a ``.sync`` task.
    """
    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"moto {moto.__version__} is installed; these patches rely on moto {MOTO_VERSION} internals"
        )
    _state.resolver = lambda_resolver
    if not _state.installed:
        _patch_moto()
        _state.installed = True
    # Every install sets the pause (moto's constant is Final to its own code only); uninstall restores moto's,
    # recorded by the first.
    replace(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", sync_poll_seconds)


def _patch_moto() -> None:
    replace(LambdaFunction, "invoke", _invoke_in_process)
    replace(StateTaskService, "_normalise_parameters", _normalise_parameters)
    replace(StateTaskService, "_normalise_response", _normalise_response)
    replace(state_task_factory, "state_task_service_for", _state_task_service_for)
    for task_class in (
        StateTaskServiceAwsSdk,
        StateTaskServiceSns,
        StateTaskServiceSfn,
        StateTaskServiceLambda,
    ):
        replace(task_class, "_from_error", _named_as_aws_names(vars(task_class)["_from_error"]))
    replace(StateTaskLambda, "_from_error", _named_as_aws_names(vars(StateTaskLambda)["_from_error"]))
    replace(ErrorEqualsDecl, "_eval_body", _matching_catchable_errors_only)
    replace(StepFunctionsParserBackend, "_validate_definition", staticmethod(_validate_definition_as_aws))
    replace(StateTask, "_eval_parameters", _eval_parameters_as_aws)
    for module in _modules_using_boto_client_for():
        replace(module, "boto_client_for", _client_as_state_machine_role)
    replace(StateTaskService, "_before_eval_execution", _authorize_what_the_integration_does)
    replace(StepFunctionsParserBackend, "start_execution", _start_execution_named)
    replace(s3_notifications, "_get_s3_event", _s3_event_with_sequencer)
    replace(s3_notifications, "_invoke_awslambda", _invoke_asynchronously)
    replace(Subscription, "publish", _publish_to_lambda_as_sns)
    replace(Rule, "send_to_targets", _send_to_targets_and_functions)
    replace(ApplicationAutoscalingBackend, "deregister_scalable_target", _deregister_with_what_depends_on_it)
    replace(ApplicationAutoscalingBackend, "put_scaling_policy", _put_scaling_policy_on_a_registered_target)
    overrides = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    for sfn_name, boto_name in _dashless_service_names().items():
        if sfn_name not in overrides:
            overrides[sfn_name] = boto_name
            _state.added_service_names.append(sfn_name)


def uninstall() -> None:
    """Give moto its own behaviour back: every ``replace`` of this module and of the modules that use it."""
    for owner, name, original in reversed(_state.originals):
        if original is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    for sfn_name in _state.added_service_names:
        StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.pop(sfn_name)
    _state.originals.clear()
    _state.added_service_names.clear()
    _state.installed = False
    _state.resolver = None


def replace(owner: object, name: str, replacement: Any) -> None:
    """Set ``owner.name`` until ``uninstall``, which restores the original (or removes an added attribute)."""
    # Read from __dict__ so a method is restored as the plain function it was, not a bound one.
    _state.originals.append((owner, name, vars(owner).get(name, _ABSENT)))
    setattr(owner, name, replacement)


# --- 1. Lambda in process -----------------------------------------------------------------------------


def _invoke_in_process(
    function: LambdaFunction, body: str | bytes | None, request_headers: Any, response_headers: Any
) -> bytes:
    """Replaces ``LambdaFunction.invoke``: run the real handler and answer like the Lambda service."""
    event = json.loads(body) if body else {}
    request_id = str(uuid.uuid4())
    context = LocalLambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),  # "$LATEST" or a number: a string on AWS
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=request_id,
        log_group_name=function.logs_group_name,
        log_stream_name=f"{datetime.date.today():%Y/%m/%d}/[{function.version}]{request_id}",
        timeout_seconds=float(function.timeout),
    )
    try:
        if _state.resolver is None:
            raise RuntimeError("moto_patches.install() was not called")
        handler = _state.resolver(function.function_name)
    except Exception as error:
        payload = _error_payload("Runtime.ImportModuleError", f"Unable to load the handler: {error}", error)
        return _function_error(function, payload, request_headers, response_headers)
    try:
        result = handler(event, context)
    except Exception as error:
        payload = _error_payload(type(error).__name__, str(error), error)
        return _function_error(function, payload, request_headers, response_headers)
    try:
        encoded = json.dumps(result)
    except (TypeError, ValueError) as error:
        payload = _error_payload("Runtime.MarshalError", f"Unable to marshal response: {error}", error)
        return _function_error(function, payload, request_headers, response_headers)
    _log_tail(function, "", request_headers, response_headers)
    return encoded.encode()


def _error_payload(error_type: str, message: str, error: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": "",
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _function_error(
    function: LambdaFunction, payload: dict[str, Any], request_headers: Any, response_headers: Any
) -> bytes:
    """An uncaught error, as Lambda reports it: an error document and ``FunctionError: Unhandled``."""
    response_headers["x-amz-function-error"] = "Unhandled"
    log = f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\n{''.join(payload['stackTrace'])}"
    # Kept in moto's CloudWatch Logs too, where a user would look for it on AWS.
    function.logs_backend.ensure_log_group(function.logs_group_name)
    function.save_logs(log)
    _log_tail(function, log, request_headers, response_headers)
    return json.dumps(payload).encode()


def _log_tail(function: LambdaFunction, log: str, request_headers: Any, response_headers: Any) -> None:
    # moto's response handler drops the header unless the caller asked for LogType=Tail.
    if request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse":
        response_headers["x-amz-log-result"] = base64.b64encode(log[-4096:].encode()).decode()


# --- 2. and 3. Normalisation and datetimes --------------------------------------------------------------


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _service_model(boto_service_name: str) -> ServiceModel:
    return _botocore_session().get_service_model(boto_service_name)


@cache
def _operation_model(boto_service_name: str, snake_action: str) -> OperationModel | None:
    model = _service_model(boto_service_name)
    for operation_name in model.operation_names:
        if camel_to_snake_case(operation_name) == snake_action:
            return model.operation_model(operation_name)
    return None


@cache
def _dashless_service_names() -> dict[str, str]:
    names = _botocore_session().get_available_services()
    return {name.replace("-", ""): name for name in names if "-" in name}


def _operation_of(
    task: StateTaskService, boto_service_name: str | None, service_action_name: str | None
) -> OperationModel | None:
    return _operation_model(
        task._get_boto_service_name(boto_service_name), task._get_boto_service_action(service_action_name)
    )


def _normalise_parameters(
    self: StateTaskService,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _operation_of(self, boto_service_name, service_action_name)
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: StateTaskService,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _operation_of(self, boto_service_name, service_action_name)
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    render = _iso_8601 if isinstance(self, StateTaskServiceAwsSdk) else _epoch_millis
    _replace_datetimes(response, render)


def _iso_8601(moment: datetime.datetime) -> str:
    return moment.isoformat()


def _epoch_millis(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _replace_datetimes(value: Any, render: Callable[[datetime.datetime], Any]) -> None:
    """In place: the interpreter keeps a reference to the response it passed in."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = render(item)
        else:
            _replace_datetimes(item, render)


# --- 4. SageMaker optimised integration ----------------------------------------------------------------


def _task_failed(task: StateTaskService, env: Environment, error: str, cause: str) -> FailureEvent:
    """A TaskFailed event of ``task``; a reserved States.* error keeps its reserved meaning."""
    reserved = {
        name.to_name(): name
        for name in (StatesErrorNameType.StatesTaskFailed, StatesErrorNameType.StatesRuntime)
    }
    return FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=reserved[error]) if error in reserved else CustomErrorName(error),
        event_type=HistoryEventType.TaskFailed,
        # moto declares EventDetails total, yet every event carries one of its keys (moto's own events too).
        event_details=EventDetails(  # type: ignore[typeddict-item]
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error,
                cause=cause,
                resource=task._get_sfn_resource(),
                resourceType=task._get_sfn_resource_type(),
            )
        ),
    )


def _state_task_service_for(service_name: str) -> StateTaskService:
    if service_name == "sagemaker":
        return _SageMakerTaskService()
    return original(state_task_factory, "state_task_service_for")(service_name)


class _SageMakerTaskService(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync|.waitForTaskToken]`` through the boto3 SageMaker client."""

    def __init__(self) -> None:
        # moto's ResourceCondition constants are plain strings; its annotation asks for ResourceConditions.
        patterns = {
            ResourceCondition(ResourceCondition.Sync),
            ResourceCondition(ResourceCondition.WaitForTaskToken),
        }
        super().__init__(supported_integration_patterns=patterns)

    def _get_supported_parameters(self) -> set[str] | None:
        operation = _operation_of(self, None, None)
        if operation is None or operation.input_shape is None:
            return None
        return set(operation.input_shape.members)

    def _validate_service_integration_is_supported(self) -> None:
        super()._validate_service_integration_is_supported()
        if self.resource.condition == ResourceCondition.Sync and self._sync_job() is None:
            raise ValueError(f"The resource provided {self.resource.resource_arn} has no .sync pattern.")

    def _sync_job(self) -> _SyncJob | None:
        return _SAGEMAKER_SYNC_JOBS.get(self.resource.api_action.lower())

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if not isinstance(ex, ClientError):
            return super()._from_error(env=env, ex=ex)
        metadata = ex.response["ResponseMetadata"]
        cause = (
            f"{ex.response['Error']['Message']} (Service: AmazonSageMaker; "
            f"Status Code: {metadata['HTTPStatusCode']}; Error Code: {ex.response['Error']['Code']}; "
            f"Request ID: {metadata.get('RequestId', '')}; Proxy: null)"
        )
        error = aws_errors.error_name_for(self.resource.resource_arn, ex.response["Error"]["Code"])
        return _task_failed(self, env, error, cause)

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        client = _client_as_state_machine_role(resource_runtime_part.region, "sagemaker", state_credentials)
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> Callable[[], Any]:
        job = self._sync_job()
        assert job is not None, "checked when the state machine was created"
        env.stack.pop()  # the Create response: the Describe output replaces it
        client = _client_as_state_machine_role(resource_runtime_part.region, "sagemaker", state_credentials)
        job_name = normalised_parameters[job.name_parameter]

        def describe_until_done() -> dict[str, Any] | None:
            description = getattr(client, job.describe_action)(**{job.name_parameter: job_name})
            description.pop("ResponseMetadata", None)
            status = description[job.status_key]
            if status not in _SAGEMAKER_FAILED_STATUSES and status != "Completed":
                return None
            self._normalise_response(description, service_action_name=job.describe_action)
            if status == "Completed":
                return description
            failure = _task_failed(
                self, env, StatesErrorNameType.StatesTaskFailed.to_name(), to_json_str(description)
            )
            raise FailureEventException(failure_event=failure)

        return describe_until_done


# --- 7. Execution names ---------------------------------------------------------------------------------


def _start_execution_named(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    trace_header: str | None = None,
) -> Any:
    start_execution = original(StepFunctionsParserBackend, "start_execution")
    return start_execution(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)


# --- 8. S3 event sequencer ------------------------------------------------------------------------------

_sequencer = itertools.count(int(time.time() * 1000) << 16)


def _s3_event_with_sequencer(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    event = original(s3_notifications, "_get_s3_event")(event_name, bucket, key, notification_id)
    s3_object = event["Records"][0]["s3"]["object"]
    s3_object["sequencer"] = f"{next(_sequencer):016X}"  # AWS: hex, growing with each event on a key
    if bucket.is_versioned:
        s3_object["versionId"] = key.version_id
    return event


# --- 9. Error names -------------------------------------------------------------------------------------


def _named_as_aws_names(from_error: Callable[..., FailureEvent]) -> Callable[..., FailureEvent]:
    """Wrap a task class's ``_from_error``: an API error gets the name AWS gives it for this integration."""

    def named(self: Any, env: Environment, ex: Exception) -> FailureEvent:
        failure = from_error(self, env, ex)
        if isinstance(ex, ClientError):
            name = aws_errors.error_name_for(self.resource.resource_arn, ex.response["Error"]["Code"])
            failure.error_name = CustomErrorName(name)  # type: ignore[misc]  # moto marks it Final
            for details in (failure.event_details or {}).values():
                if isinstance(details, dict):  # the one event detail set; the others are absent
                    details["error"] = name
        return failure

    return named


def _matching_catchable_errors_only(self: ErrorEqualsDecl, env: Environment) -> None:
    """``ErrorEqualsDecl._eval_body`` that never matches the errors AWS lets no Retry or Catch handle."""
    if env.stack[-1].error_name in aws_errors.UNCATCHABLE_ERRORS:
        env.stack.pop()
        env.stack.append(False)
        return
    original(ErrorEqualsDecl, "_eval_body")(self, env)


# --- 10. Integration fields ----------------------------------------------------------------------------


def _validate_definition_as_aws(definition: str) -> None:
    """``StepFunctionsParserBackend._validate_definition``, then the fields Step Functions refuses; the error has
    AWS's code, which moto's own InvalidDefinition leaves empty."""
    try:
        original(StepFunctionsParserBackend, "_validate_definition").__func__(definition)
    except InvalidDefinition as error:
        raise JsonRESTError("InvalidDefinition", error.message) from None
    problems = []
    for pointer, state in _task_states(json.loads(definition).get("States", {}), "/States"):
        try:
            fields = integration_fields.unsupported_fields(state["Resource"], state.get("Parameters", {}))
        except integration_fields.UnsupportedIntegration as error:
            raise JsonRESTError("InvalidDefinition", f"Invalid State Machine Definition: '{error}'") from None
        problems += [
            f'SCHEMA_VALIDATION_FAILED: The field "{field}" is not supported by Step Functions at {pointer}/Parameters'
            for field in fields
        ]
    if problems:
        raise JsonRESTError("InvalidDefinition", f"Invalid State Machine Definition: '{', '.join(problems)}'")


def _task_states(states: dict[str, Any], pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        here = f"{pointer}/{name}"
        if state.get("Type") == "Task" and isinstance(state.get("Resource"), str):
            yield here, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _task_states(branch.get("States", {}), f"{here}/Branches/{index}/States")
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _task_states(state[key].get("States", {}), f"{here}/{key}/States")


def _eval_parameters_as_aws(self: StateTask, env: Environment) -> dict[str, Any]:
    """``StateTask._eval_parameters`` refusing, instead of dropping, what the integration does not take."""
    parameters: dict[str, Any] = {}
    if self.parargs is not None:
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
    if not isinstance(self, StateTaskService):
        return parameters  # a function or activity ARN: the input is the payload
    fields = integration_fields.unsupported_fields(self.resource.resource_arn, parameters)
    if fields:
        cause = (
            f"An error occurred while executing the state '{env.next_state_name}' (entered at the event id "
            f"#{env.event_history_context.source_event_id}). "
            + " ".join(f'The field "{field}" is not supported by Step Functions' for field in fields)
        )
        runtime = StatesErrorNameType.StatesRuntime.to_name()
        raise FailureEventException(failure_event=_task_failed(self, env, runtime, cause))
    return parameters


# --- 11. Task credentials ------------------------------------------------------------------------------


def _modules_using_boto_client_for() -> list[Any]:
    """Every interpreter module that imported ``boto_client_for`` (the service modules import it by name)."""
    import sys

    return sorted(
        (
            module
            for name, module in list(sys.modules.items())
            if name.startswith("moto.stepfunctions.parser")
            and vars(module).get("boto_client_for") is boto_client_for
        ),
        key=lambda module: module.__name__,
    )


def _client_as_state_machine_role(region: str, service: str, state_credentials: Any = None) -> Any:
    """``boto_client_for`` acting as the task's state machine role (moto's own when IAM is not enforced)."""
    control = enforcement.active()
    if control is None or state_credentials is None:
        return boto_client_for(region, service, state_credentials)
    return control.client(
        service,
        state_credentials.role_arn,
        "states.amazonaws.com",
        _session_name(state_credentials.role_arn),
        config=enforcement.interpreter_client_config(),
    )


def _session_name(role_arn: str) -> str:
    return f"states-{role_arn.rsplit('/', 1)[-1]}"[:64]


def _authorize_what_the_integration_does(
    self: StateTaskService,
    env: Environment,
    resource_runtime_part: ResourceRuntimePart,
    raw_parameters: dict[str, Any],
    state_credentials: StateCredentials,
) -> None:
    original(StateTaskService, "_before_eval_execution")(
        self, env, resource_runtime_part, raw_parameters, state_credentials
    )
    control = enforcement.active()
    if control is None:
        return
    needed = requests.integration_authorizations(
        self.resource.resource_arn,
        raw_parameters,
        resource_runtime_part.region,
        resource_runtime_part.account,
        control.partition,
    )
    if not needed:
        return
    role_arn = state_credentials.role_arn
    principal = control.principal(
        control.assume(role_arn, "states.amazonaws.com", _session_name(role_arn)).access_key
    )
    try:
        control.authorize(principal, needed)
    except enforcement.AccessDenied as denied:
        if denied.authorization.action in requests.MANAGED_RULE_ACTIONS:
            error, cause = "States.TaskFailed", f"'{role_arn}' is not authorized to create managed-rule."
        else:
            error = aws_errors.error_name_for(self.resource.resource_arn, "AccessDeniedException")
            cause = f"{denied} (Error Code: AccessDeniedException)"
        raise FailureEventException(failure_event=_task_failed(self, env, error, cause)) from None


# --- 12. Asynchronous invocation -----------------------------------------------------------------------------


def _invoke_asynchronously(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """An S3 event delivered as Lambda delivers asynchronous events: retried, then sent to the destination."""
    from moto.awslambda.utils import get_backend

    try:
        function = get_backend(account_id, region_name).get_function(fn_arn)
    except Exception:  # a missing function: S3 drops the event, as moto did
        return
    config = function.event_invoke_config[0].config if function.event_invoke_config else {}
    attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
    payload = json.dumps(event_body)
    response: dict[str, Any] = {}
    for _ in range(attempts):
        headers: dict[str, Any] = {}
        result = function.invoke(payload, {"x-amz-invocation-type": "Event"}, headers)
        if "x-amz-function-error" not in headers:
            return
        response = json.loads(result)
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if destination:
        record = {
            "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{function.function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event_body,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": response,
        }
        sns = enforcement.role_client("sns", function.role, "lambda.amazonaws.com", function.function_name)
        sns.publish(TopicArn=destination, Message=json.dumps(record))


def original(owner: object, name: str) -> Any:
    """What ``replace`` replaced."""
    return next(saved for patched, attr, saved in _state.originals if patched is owner and attr == name)


# --- 13. SNS delivery to Lambda -------------------------------------------------------------------------------


def _publish_to_lambda_as_sns(
    subscription: Subscription,
    message: str,
    message_id: str,
    subject: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    **others: Any,
) -> None:
    """A lambda subscription gets SNS's event for this message, delivered asynchronously; other protocols and the
    filter policy are moto's."""
    if subscription.protocol != "lambda":
        original(Subscription, "publish")(
            subscription, message, message_id, subject, message_attributes, **others
        )
        return
    matcher = subscription._filter_policy_matcher
    if matcher is not None and not matcher.matches(message_attributes, message):
        return
    posted = subscription.get_post_data(message, message_id, subject)
    region = subscription.topic.sns_backend.region_name
    record = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription.arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": subscription.topic.arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": posted["Timestamp"],
            "SignatureVersion": posted["SignatureVersion"],
            "Signature": posted["Signature"],
            "SigningCertUrl": posted["SigningCertURL"],
            "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
            "MessageAttributes": message_attributes or {},  # moto keeps them as SNS sends them: Type, Value
        },
    }
    _invoke_asynchronously(subscription.account_id, {"Records": [record]}, subscription.endpoint, region)


# --- 14. EventBridge delivery to Lambda -------------------------------------------------------------------------


def _send_to_targets_and_functions(
    rule: Rule, original_event: EventMessageType, transform_input: bool = True
) -> None:
    """A function target is invoked asynchronously with what EventBridge sends it; moto delivers the others."""
    if not rule.event_pattern.matches_event(original_event):
        return
    functions = [target for target in rule.targets if target["Arn"].split(":")[2] == "lambda"]
    for target in functions:
        payload = _target_input(target, original_event)
        threading.Thread(
            target=_invoke_asynchronously,
            args=(rule.account_id, payload, target["Arn"], rule.region_name),
            daemon=True,
        ).start()
    others = [target for target in rule.targets if target not in functions]
    if others:
        rest = copy.copy(rule)
        rest.targets = others
        # moto's own targets render the time as a number (its put_events keeps epoch seconds).
        moment = original_event.get("time")
        as_moto_keeps_it = (
            original_event | {"time": botocore.utils.parse_timestamp(moment).timestamp()}
            if isinstance(moment, str)
            else original_event
        )
        original(Rule, "send_to_targets")(rest, as_moto_keeps_it, transform_input)


def _target_input(target: dict[str, Any], event: EventMessageType) -> Any:
    """What a target receives: its constant Input, the part of the event its InputPath selects, the result of
    its InputTransformer, or the whole event (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html)."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        selected: Any = dict(event)
        for key in target["InputPath"].removeprefix("$").strip(".").split("."):
            selected = selected.get(key) if key and isinstance(selected, dict) else selected
        return selected
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    return {key: value for key, value in event.items() if key != "ingestion-time"}  # moto's bookkeeping


# --- 15. Application Auto Scaling's scalable targets ------------------------------------------------------------


def _check_target_registered(
    backend: ApplicationAutoscalingBackend, namespace: str, resource_id: str, dimension: str
) -> None:
    if not backend._scalable_target_exists(resource_id, dimension):
        raise JsonRESTError(
            "ObjectNotFoundException",
            f"No scalable target registered for service namespace: {namespace}, resource ID: {resource_id}, "
            f"scalable dimension: {dimension}",
        )


def _deregister_with_what_depends_on_it(
    backend: ApplicationAutoscalingBackend, namespace: str, resource_id: str, dimension: str
) -> None:
    """DeregisterScalableTarget deletes the target's scaling policies and scheduled actions too."""
    _check_target_registered(backend, namespace, resource_id, dimension)
    original(ApplicationAutoscalingBackend, "deregister_scalable_target")(
        backend, namespace, resource_id, dimension
    )
    target = (namespace, resource_id, dimension)
    for key, policy in list(backend.policies.items()):
        if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == target:
            policy.delete_alarms(backend.account_id, backend.region_name)
            del backend.policies[key]
    backend.scheduled_actions = [
        action
        for action in backend.scheduled_actions
        if (action.service_namespace, action.resource_id, action.scalable_dimension) != target
    ]


def _put_scaling_policy_on_a_registered_target(
    backend: ApplicationAutoscalingBackend,
    policy_name: str,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
    policy_body: dict[str, Any],
    policy_type: str | None,
) -> Any:
    _check_target_registered(backend, service_namespace, resource_id, scalable_dimension)
    return original(ApplicationAutoscalingBackend, "put_scaling_policy")(
        backend, policy_name, service_namespace, resource_id, scalable_dimension, policy_body, policy_type
    )
