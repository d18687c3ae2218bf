"""How each resource type the templates use is created, updated and deleted in moto.

One handler class per type, registered with ``@handles(type)``: emulating a new type is one more handler. A
handler's ``create`` and ``update`` return the resource's record, what Ref (``"Ref"``) and Fn::GetAtt (the other
keys) answer for it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from h2o_sagemaker_local.stack import custom_resources, roles
from h2o_sagemaker_local.stack.functions import LocalFunction
from h2o_sagemaker_local.stack.model import ACCOUNT_ID, REGION, DeploymentFailed, Stack

if TYPE_CHECKING:
    from h2o_sagemaker_local.stack.deployer import Deployer

Record = dict[str, Any]
CUSTOM_RESOURCE = "AWS::CloudFormation::CustomResource"


@dataclass(frozen=True)
class Resource:
    """A resource of a stack as its template declares it, with its properties evaluated."""

    stack: Stack
    logical_id: str
    kind: str
    properties: dict[str, Any]
    globals_: dict[str, Any]  # the template's Globals.Function for a function, else empty

    @property
    def physical_name(self) -> str:
        return f"{self.stack.name}-{self.logical_id}"[:64]

    @property
    def record(self) -> Record:
        """The record its last create or update returned."""
        return self.stack.resources[self.logical_id]


class ResourceHandler:
    """What CloudFormation does for one resource type; ``deployer`` deploys nested stacks and holds the clients
    and the function registry."""

    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.clients = deployer.clients

    def create(self, resource: Resource) -> Record:
        raise NotImplementedError(f"{type(self).__name__} does not create")

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        """Called only when the properties changed. By default nothing kept locally depends on them."""
        return resource.record

    def delete(self, resource: Resource, physical_id: str) -> None:
        """A resource the template no longer creates, or replaced on update (its physical id changed). By
        default only the stack's record of it goes."""


HANDLERS: dict[str, type[ResourceHandler]] = {}
_Handler = TypeVar("_Handler", bound=type[ResourceHandler])


def handles(*kinds: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


def handler_for(kind: str) -> type[ResourceHandler] | None:
    return HANDLERS.get(CUSTOM_RESOURCE if kind.startswith("Custom::") else kind)


@handles("AWS::Serverless::LayerVersion")
class LayerVersion(ResourceHandler):
    """Its folder goes on the path of the stack's functions (those created after it)."""

    def create(self, resource: Resource) -> Record:
        resource.stack.layer_dirs.append(
            resource.stack.template_path.parent / resource.properties["ContentUri"]
        )
        return {"Ref": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{resource.physical_name}:1"}


@handles("AWS::SNS::Topic")
class Topic(ResourceHandler):
    def create(self, resource: Resource) -> Record:
        arn = self.clients["sns"].create_topic(Name=resource.physical_name)["TopicArn"]
        return {"Ref": arn, "TopicName": resource.physical_name, "TopicArn": arn}

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["sns"].delete_topic(TopicArn=physical_id)


@handles("AWS::SNS::Subscription", "AWS::Logs::LogGroup")
class RecordOnly(ResourceHandler):
    """Nothing of them is emulated: the record is all that references to them need."""

    def create(self, resource: Resource) -> Record:
        name = resource.physical_name
        return {"Ref": name, "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"}


@handles("AWS::IAM::Role")
class Role(ResourceHandler):
    def create(self, resource: Resource) -> Record:
        name = resource.physical_name
        arn = roles.put_role(self.clients["iam"], name, resource.properties, create=True)
        return {"Ref": name, "Arn": arn, "RoleId": name}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        roles.put_role(self.clients["iam"], resource.record["Ref"], resource.properties, create=False)
        return resource.record


@handles("AWS::Serverless::Application")
class Application(ResourceHandler):
    """A nested stack, deployed from its own template with the parent's layers."""

    def create(self, resource: Resource) -> Record:
        stack, properties = resource.stack, resource.properties
        child = self.deployer.deploy(
            resource.physical_name,
            stack.template_path.parent / properties["Location"],
            properties.get("Parameters", {}),
            stack.layer_dirs,
        )
        return {"Ref": child.stack_id, "Outputs": child.outputs, "Stack": child}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        child = self.deployer.update(resource.record["Stack"], resource.properties.get("Parameters", {}))
        return resource.record | {"Outputs": child.outputs}

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.deployer.delete(resource.record["Stack"])


@handles("AWS::Serverless::Function")
class Function(ResourceHandler):
    """A Lambda function in moto whose invocations the registry runs in this process from its code folder."""

    def create(self, resource: Resource) -> Record:
        role_arn = roles.execution_role(
            self.clients["iam"], resource.stack, resource.logical_id, resource.properties
        )
        return self._put(resource, resource.physical_name, role_arn, update=False)

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        role_arn = roles.execution_role(
            self.clients["iam"], resource.stack, resource.logical_id, resource.properties
        )
        return self._put(resource, resource.record["Ref"], role_arn, update=True)

    def delete(self, resource: Resource, physical_id: str) -> None:
        for rule_name in resource.record.get("Rules", []):
            self.clients["events"].remove_targets(Rule=rule_name, Ids=["Function"])
            self.clients["events"].delete_rule(Name=rule_name)
        self.clients["lambda"].delete_function(FunctionName=physical_id)
        self.deployer.registry.functions.pop(physical_id, None)

    def _put(self, resource: Resource, name: str, role_arn: str, update: bool) -> Record:
        stack, properties, globals_ = resource.stack, resource.properties, resource.globals_
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
        lambda_client = self.clients["lambda"]
        if update:
            arn = lambda_client.update_function_configuration(**settings)["FunctionArn"]
        else:
            arn = lambda_client.create_function(**settings, Code={"ZipFile": archive.getvalue()})[
                "FunctionArn"
            ]
        self.deployer.registry.functions[name] = LocalFunction(
            name,
            code_dir,
            properties["Handler"],
            # What the Lambda runtime sets, then the template's variables.
            {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": name}
            | {key: str(value) for key, value in environment.items()},
            list(stack.layer_dirs),
            role_arn,
        )
        roles.check_function_role(stack.name, name, role_arn)
        invoke_config = properties.get("EventInvokeConfig")
        if invoke_config:  # SAM's EventInvokeConfig: AWS::Lambda::EventInvokeConfig
            on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            lambda_client.put_function_event_invoke_config(
                FunctionName=name,
                MaximumRetryAttempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
                MaximumEventAgeInSeconds=int(invoke_config.get("MaximumEventAgeInSeconds", 21600)),
                **({"DestinationConfig": {"OnFailure": {"Destination": on_failure}}} if on_failure else {}),
            )
        rules = []
        for key, event in properties.get("Events", {}).items():
            if event["Type"] == "EventBridgeRule" and event["Properties"]["Pattern"].get("source") == [
                "aws.s3"
            ]:
                self._subscribe_s3_uploads(arn, event["Properties"]["Pattern"])
            elif event["Type"] == "EventBridgeRule":
                rules.append(self._put_rule(f"{name}-{key}"[:64], arn, event["Properties"]["Pattern"]))
            elif event["Type"] == "SNS":
                self._subscribe_to_topic(arn, event["Properties"])
        return {"Ref": name, "Arn": arn, "Rules": rules}

    def _put_rule(self, rule_name: str, function_arn: str, pattern: dict[str, Any]) -> str:
        """SAM's EventBridgeRule event: a rule on the default bus with the function as its target (moto delivers
        to it through moto_patches 14). Putting it again replaces its pattern, as an update does."""
        events = self.clients["events"]
        events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule_name, Targets=[{"Id": "Function", "Arn": function_arn}])
        return rule_name

    def _subscribe_to_topic(self, function_arn: str, properties: dict[str, Any]) -> None:
        """SAM's SNS event: a lambda subscription (subscribing again is a no-op, as on AWS), which moto delivers
        by invoking the function in process on each publish."""
        filter_policy = properties.get("FilterPolicy")
        self.clients["sns"].subscribe(
            TopicArn=properties["Topic"],
            Protocol="lambda",
            Endpoint=function_arn,
            Attributes={"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {},
        )

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


@handles("AWS::Serverless::StateMachine")
class StateMachine(ResourceHandler):
    """A Step Functions state machine from its ASL file, with the DefinitionSubstitutions resolved."""

    def create(self, resource: Resource) -> Record:
        name = resource.physical_name
        role_arn = self._checked_role(resource, name)
        sfn = self.clients["stepfunctions"]
        try:
            arn = sfn.create_state_machine(
                name=name, definition=self._definition(resource), roleArn=role_arn
            )["stateMachineArn"]
        except sfn.exceptions.InvalidDefinition as error:
            raise DeploymentFailed(
                f"{resource.stack.name}: {resource.logical_id} CREATE_FAILED: {error}"
            ) from None
        return {"Ref": arn, "Name": name, "Arn": arn}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        record = resource.record
        role_arn = self._checked_role(resource, record["Name"])
        sfn = self.clients["stepfunctions"]
        try:
            sfn.update_state_machine(
                stateMachineArn=record["Arn"], definition=self._definition(resource), roleArn=role_arn
            )
        except sfn.exceptions.InvalidDefinition as error:
            raise DeploymentFailed(
                f"{resource.stack.name}: {resource.logical_id} UPDATE_FAILED: {error}"
            ) from None
        return record

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["stepfunctions"].delete_state_machine(stateMachineArn=physical_id)

    def _checked_role(self, resource: Resource, name: str) -> str:
        role_arn = roles.execution_role(
            self.clients["iam"], resource.stack, resource.logical_id, resource.properties
        )
        roles.check_state_machine_role(name, role_arn, resource.properties)
        return role_arn

    @staticmethod
    def _definition(resource: Resource) -> str:
        definition = (resource.stack.template_path.parent / resource.properties["DefinitionUri"]).read_text()
        for key, replacement in resource.properties.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace(f"${{{key}}}", str(replacement))
        return definition


@handles("AWS::SageMaker::ModelPackageGroup")
class ModelPackageGroup(ResourceHandler):
    """A model registry group (the local SageMaker's registry). Every property change replaces it."""

    def create(self, resource: Resource) -> Record:
        properties = resource.properties
        request = {
            key: properties[key]
            for key in ("ModelPackageGroupName", "ModelPackageGroupDescription", "Tags")
            if key in properties
        }
        arn = self.clients["sagemaker"].create_model_package_group(**request)["ModelPackageGroupArn"]
        return {"Ref": arn, "ModelPackageGroupArn": arn, "ModelPackageGroupStatus": "Completed"}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        return self.create(resource)

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["sagemaker"].delete_model_package_group(ModelPackageGroupName=physical_id)


@handles("AWS::CloudWatch::Alarm")
class Alarm(ResourceHandler):
    """A CloudWatch metric alarm in moto (the local SageMaker evaluates those on its endpoints' metrics)."""

    FIELDS = (
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "ExtendedStatistic",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "Unit",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
    )
    # CloudFormation takes numbers as strings too (a custom resource's attributes are strings).
    NUMBERS: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "Period": int,
        "EvaluationPeriods": int,
        "DatapointsToAlarm": int,
        "Threshold": float,
    }

    def create(self, resource: Resource) -> Record:
        name = resource.properties.get("AlarmName") or resource.physical_name
        settings = {
            key: self.NUMBERS.get(key, lambda value: value)(resource.properties[key])
            for key in self.FIELDS
            if key in resource.properties
        }
        self.clients["cloudwatch"].put_metric_alarm(AlarmName=name, **settings)
        return {"Ref": name, "Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}"}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        return self.create(resource)  # a new AlarmName replaces it: the old one is deleted after the update

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["cloudwatch"].delete_alarms(AlarmNames=[physical_id])


@handles("AWS::CloudWatch::Dashboard")
class Dashboard(ResourceHandler):
    """A CloudWatch dashboard in moto, whose PutDashboard refuses a body that is not JSON, as CloudWatch does."""

    def create(self, resource: Resource) -> Record:
        return self._put(resource, "CREATE_FAILED")

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        # A new DashboardName replaces it: the old one is deleted after the update.
        return self._put(resource, "UPDATE_FAILED")

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["cloudwatch"].delete_dashboards(DashboardNames=[physical_id])

    def _put(self, resource: Resource, failure: str) -> Record:
        name = resource.properties.get("DashboardName") or resource.physical_name
        cloudwatch = self.clients["cloudwatch"]
        try:
            cloudwatch.put_dashboard(DashboardName=name, DashboardBody=resource.properties["DashboardBody"])
        except cloudwatch.exceptions.DashboardInvalidInputError as error:
            raise DeploymentFailed(
                f"{resource.stack.name}: {resource.logical_id} {failure}: {error}"
            ) from None
        return {"Ref": name}


@handles("AWS::Scheduler::Schedule")
class Schedule(ResourceHandler):
    """An EventBridge Scheduler schedule in moto. Nothing ticks locally: ``LocalPipeline.fire_schedule`` delivers
    a tick at a given time to its target, as Scheduler would."""

    FIELDS = ("Description", "ScheduleExpression", "ScheduleExpressionTimezone", "State", "Target")

    def create(self, resource: Resource) -> Record:
        name = resource.physical_name
        arn = self.clients["scheduler"].create_schedule(Name=name, **self._settings(resource))["ScheduleArn"]
        return {"Ref": name, "Arn": arn}

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        self.clients["scheduler"].update_schedule(Name=resource.record["Ref"], **self._settings(resource))
        return resource.record

    def delete(self, resource: Resource, physical_id: str) -> None:
        self.clients["scheduler"].delete_schedule(Name=physical_id)

    def _settings(self, resource: Resource) -> dict[str, Any]:
        properties = resource.properties
        return {
            "FlexibleTimeWindow": properties["FlexibleTimeWindow"],
            **{field: properties[field] for field in self.FIELDS if field in properties},
        }


@handles(CUSTOM_RESOURCE)  # and every Custom::<Name>
class CustomResource(ResourceHandler):
    """Create, Update and Delete requests to the resource's function; its physical id is its answer's."""

    def create(self, resource: Resource) -> Record:
        return self._record(self._request(resource, "Create"))

    def update(self, resource: Resource, old_properties: dict[str, Any]) -> Record:
        return self._record(self._request(resource, "Update", resource.record["Ref"], old_properties))

    def delete(self, resource: Resource, physical_id: str) -> None:
        self._request(resource, "Delete", physical_id)

    def _request(
        self,
        resource: Resource,
        request_type: str,
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return custom_resources.send_request(
            self.clients["lambda"],
            stack_id=resource.stack.stack_id,
            logical_id=resource.logical_id,
            kind=resource.kind,
            request_type=request_type,
            properties=resource.properties,
            physical_id=physical_id,
            old_properties=old_properties,
        )

    @staticmethod
    def _record(response: dict[str, Any]) -> Record:
        return {"Ref": response["PhysicalResourceId"], **response.get("Data", {})}
