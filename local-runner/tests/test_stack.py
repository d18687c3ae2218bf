"""The stack deployer: the real templates deployed into moto, and intrinsics, errors and functions on small ones."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import generate_ml_parameters
import pytest
from h2o_sagemaker_local import moto_patches
from h2o_sagemaker_local.stack import ACCOUNT_ID, REGION, Deployer, DeploymentFailed, FunctionRegistry, Stack
from h2o_sagemaker_local.stack.custom_resources import ResponseUrl
from h2o_sagemaker_local.stack.deployer import check_parameter_constraints
from h2o_sagemaker_local.stack.resources import CustomResource, Topic, handler_for
from h2o_sagemaker_local.stack.templates import Templates
from moto import mock_aws

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
SHARED_LAYER = REPO_ROOT / "layers" / "workflow-common"
BUCKET = "stack-test-data"
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:workflow-common:1"
PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


@contextlib.contextmanager
def emulated_aws(log_dir: Path) -> Iterator[FunctionRegistry]:
    """moto with its ASL interpreter and the project's patches, functions resolved by a registry."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            patch.setenv(name, value)
        # Templates written under tmp_path lie outside the project, whose .tools/sam the translator looks for
        # above the template: name it (else the translator falls back to the sam on PATH).
        sam_python = REPO_ROOT / ".tools" / "sam" / "bin" / "python"
        if sam_python.is_file() and "H2O_SAGEMAKER_LOCAL_SAM_PYTHON" not in os.environ:
            patch.setenv("H2O_SAGEMAKER_LOCAL_SAM_PYTHON", str(sam_python))
        # The registry puts code and layer folders on sys.path: keep them to these tests.
        patch.setattr(sys, "path", list(sys.path))
        functions = FunctionRegistry(log_dir=log_dir)
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            moto_patches.install(functions.resolve, sync_poll_seconds=0.05)
            try:
                yield functions
            finally:
                moto_patches.uninstall()
                functions.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[FunctionRegistry]:
    with emulated_aws(tmp_path / "logs") as functions:
        yield functions


@pytest.fixture
def deployer(registry: FunctionRegistry) -> Deployer:
    return Deployer(registry)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def write_template(folder: Path, text: str) -> Path:
    path = folder / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def write_module(folder: Path, prefix: str, source: str) -> str:
    """Write a module of a function's code or layer into ``folder``; return its name. Handler modules stay in
    sys.modules: each test's module gets a name of its own."""
    module = f"{prefix}_{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    return module


# --- ml-parameter-provider ---------------------------------------------------------------------------


def example_documents() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """ml-parameters, hyperparameters and manifest from examples/, filled as the pipeline fills them."""
    options = generate_ml_parameters.parse_arguments(
        ["--account", ACCOUNT_ID, "--region", REGION, "--bucket", BUCKET]
    )
    ml_parameters = generate_ml_parameters.generate_ml_parameters(
        json.loads((EXAMPLES / "template-ml-parameters.json").read_text()), options
    )
    hyperparameters = json.loads((EXAMPLES / "hyperparameters.json").read_text())
    manifest = generate_ml_parameters.fill_placeholders(
        json.loads((EXAMPLES / "manifest.json").read_text()),
        {"account-id": ACCOUNT_ID, "region": REGION, "s3bucket": BUCKET},
    )
    return ml_parameters, hyperparameters, manifest


def upload_parameter_files() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The example documents, with ml-parameters and hyperparameters uploaded where the provider imports them."""
    ml_parameters, hyperparameters, manifest = example_documents()
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="ml-parameters.json", Body=json.dumps(ml_parameters))
    s3.put_object(Bucket=BUCKET, Key="hyperparameters.json", Body=json.dumps(hyperparameters))
    return ml_parameters, hyperparameters, manifest


def target_state_machine() -> str:
    role = client("iam").create_role(RoleName="target-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return client("stepfunctions").create_state_machine(
        name="target", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]


def deploy_provider(deployer: Deployer, target_arn: str, **parameters: str) -> Stack:
    return deployer.deploy(
        "provider",
        REPO_ROOT / "ml-parameter-provider" / "template.yaml",
        {
            "SharedLayerArn": LAYER_ARN,
            "TargetStateMachineArn": target_arn,
            "DeploymentStateMachineArn": target_arn,
            "DataBucketName": BUCKET,
            "ParameterStorePath": "/stack-test",
            "ManifestKeyPrefix": "incoming/",
            "ManifestKeySuffix": "/manifest.json",
            **parameters,
        },
        layer_dirs=[SHARED_LAYER],
    )


def test_parameter_provider_imports_both_files_into_ssm_and_subscribes_manifest_uploads(
    deployer: Deployer,
) -> None:
    ml_parameters, hyperparameters, manifest = upload_parameter_files()
    s3, sqs = client("s3"), client("sqs")
    # A notification someone else put on the existing bucket: the stack must leave it in place.
    queue_url = sqs.create_queue(QueueName="other-consumer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    existing = {
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "exports/"}]}},
    }
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [existing]}
    )
    target_arn = target_state_machine()

    stack = deploy_provider(deployer, target_arn)

    ssm = client("ssm")
    for name, document in (("ml-parameters", ml_parameters), ("hyperparameters", hyperparameters)):
        stored = ssm.get_parameter(Name=f"/stack-test/{name}")["Parameter"]["Value"]
        assert json.loads(stored) == document
    # The custom resource's Data feeds Fn::GetAtt; its physical id is its Ref.
    assert stack.outputs["ImportedParameterNames"] == "/stack-test/ml-parameters,/stack-test/hyperparameters"
    assert stack.resources["ImportedParameters"]["Ref"] == "ssm-parameters:/stack-test"
    # No topic given: the condition creates one and the outputs and the trigger's environment use it.
    topic_arn = stack.outputs["NotificationTopicArn"]
    assert topic_arn in [topic["TopicArn"] for topic in client("sns").list_topics()["Topics"]]
    trigger = deployer.registry.functions["provider-ManifestTriggerFunction"]
    assert trigger.environment["NOTIFICATION_TOPIC_ARN"] == topic_arn
    assert trigger.environment["TARGET_STATE_MACHINE_ARN"] == target_arn
    assert trigger.environment["PARAMETER_STORE_PATH"] == "/stack-test"

    notifications = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    assert notifications["QueueConfigurations"][0]["QueueArn"] == queue_arn
    [subscription] = notifications["LambdaFunctionConfigurations"]
    assert subscription["LambdaFunctionArn"] == stack.outputs["ManifestTriggerFunctionArn"]
    assert subscription["Events"] == ["s3:ObjectCreated:*"]
    rules = {rule["Name"].lower(): rule["Value"] for rule in subscription["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "incoming/", "suffix": "/manifest.json"}

    # The subscription runs the real trigger: a manifest outside the prefix starts nothing, one inside does.
    sfn = client("stepfunctions")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/run/manifest.json", Body=json.dumps(manifest))
    assert sfn.list_executions(stateMachineArn=target_arn)["executions"] == []
    s3.put_object(Bucket=BUCKET, Key="incoming/run-1/manifest.json", Body=json.dumps(manifest))
    [execution] = sfn.list_executions(stateMachineArn=target_arn)["executions"]
    run_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run_input["tuning"]["hyperParameterTuningJobName"] == execution["name"]


def test_custom_resource_answering_failed_fails_the_deploy_with_its_reason(deployer: Deployer) -> None:
    client("s3").create_bucket(Bucket=BUCKET)  # the parameter files were never uploaded
    started = time.monotonic()
    with pytest.raises(DeploymentFailed) as failure:
        deploy_provider(deployer, target_state_machine())
    message = str(failure.value)
    assert "ImportedParameters (Custom::MlParameterImport) CREATE_FAILED" in message
    assert f"s3://{BUCKET}/ml-parameters.json does not exist: upload it before deploying" in message
    assert time.monotonic() - started < 10
    # Resources after the failed one were not created.
    assert "provider-ManifestTriggerFunction" not in deployer.registry.functions


def test_custom_resource_whose_function_crashes_fails_with_the_function_error(
    deployer: Deployer, tmp_path: Path
) -> None:
    module = write_module(
        tmp_path,
        "crashing_resource",
        "def handler(event, context):\n    raise RuntimeError('no reply from ' + event['LogicalResourceId'])\n",
    )
    template = write_template(
        tmp_path,
        f"""
        Resources:
          Provider:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.13
              CodeUri: .
              Handler: {module}.handler
          Thing:
            Type: Custom::Thing
            Properties:
              ServiceToken: !GetAtt Provider.Arn
        """,
    )
    with pytest.raises(DeploymentFailed) as failure:
        deployer.deploy("crash", template, {})
    assert str(failure.value) == (
        "Thing (Custom::Thing) CREATE_FAILED: the custom resource sent no response; "
        "its function failed: RuntimeError: no reply from Thing"
    )


def test_every_custom_type_is_a_custom_resource_and_an_unknown_type_has_no_handler() -> None:
    assert handler_for("Custom::Anything") is CustomResource
    assert handler_for("AWS::CloudFormation::CustomResource") is CustomResource
    assert handler_for("AWS::SNS::Topic") is Topic
    assert handler_for("AWS::Logs::LogGroup") is handler_for("AWS::SNS::Subscription")
    assert handler_for("AWS::DynamoDB::Table") is None


def test_the_response_url_keeps_each_body_put_to_it_and_stops_serving_after_its_block() -> None:
    with ResponseUrl("/answer?X-Amz-Signature=abc") as response_url:
        assert response_url.url.startswith("http://127.0.0.1:")
        assert response_url.url.endswith("/answer?X-Amz-Signature=abc")
        for n in (1, 2):
            request = urllib.request.Request(
                response_url.url, data=json.dumps({"n": n}).encode(), method="PUT"
            )
            with urllib.request.urlopen(request, timeout=5) as reply:
                assert reply.status == 200
    assert response_url.bodies == [{"n": 1}, {"n": 2}]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(request, timeout=5)


# --- state machines ----------------------------------------------------------------------------------


def lambda_arn_of(registry: FunctionRegistry, function_name: str) -> str:
    assert function_name in registry.functions, f"{function_name} is not registered to run in process"
    return client("lambda").get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]


def deployed_definition(stack: Stack, machine: str) -> str:
    return client("stepfunctions").describe_state_machine(stateMachineArn=stack.resources[machine]["Ref"])[
        "definition"
    ]


def substituted(asl_file: Path, substitutions: dict[str, str]) -> str:
    text = asl_file.read_text()
    for key, value in substitutions.items():
        text = text.replace(f"${{{key}}}", value)
    return text


@pytest.mark.parametrize("topic_given", [False, True], ids=["own-topic", "given-topic"])
def test_deployer_state_machine_is_its_asl_file_with_every_placeholder_substituted(
    deployer: Deployer, topic_given: bool
) -> None:
    given = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:shared-topic" if topic_given else ""
    stack = deployer.deploy(
        "deployer",
        REPO_ROOT / "sagemaker-model-deployer" / "template.yaml",
        {"SharedLayerArn": LAYER_ARN, "Environment": "staging", "NotificationTopicArn": given},
    )
    definition = deployed_definition(stack, "EndpointDeploymentStateMachine")
    assert PLACEHOLDER.findall(definition) == []
    inspector_arn = lambda_arn_of(deployer.registry, "deployer-EndpointInspectorFunction")
    topic_arn = given or stack.resources["NotificationTopic"]["Ref"]
    assert ("NotificationTopic" in stack.resources) is not topic_given
    assert definition == substituted(
        REPO_ROOT / "sagemaker-model-deployer" / "statemachine" / "endpoint-deployment.asl.json",
        {
            "EndpointInspectorFunctionArn": inspector_arn,
            "NotificationTopicArn": topic_arn,
            "Environment": "staging",
            "OwnerStackName": "deployer",  # deployed alone, the stack tags with its own name
            "Partition": "aws",
        },
    )
    states = json.loads(definition)["States"]
    assert states["InspectEndpoint"]["Resource"] == inspector_arn
    assert stack.outputs["StateMachineName"] == "deployer-EndpointDeploymentStateMachine"
    assert stack.outputs["NotificationTopicArn"] == topic_arn


def test_tuner_state_machine_is_its_asl_file_with_every_placeholder_substituted(deployer: Deployer) -> None:
    stack = deployer.deploy(
        "tuner",
        REPO_ROOT / "sagemaker-model-tuner" / "template.yaml",
        {"SharedLayerArn": LAYER_ARN, "DataBucketName": BUCKET, "Environment": "staging"},
    )
    definition = deployed_definition(stack, "ModelTuningStateMachine")
    assert PLACEHOLDER.findall(definition) == []
    selector_arn = lambda_arn_of(deployer.registry, "tuner-BestModelSelectorFunction")
    role_arn = client("iam").get_role(RoleName="tuner-SageMakerExecutionRole")["Role"]["Arn"]
    assert definition == substituted(
        REPO_ROOT / "sagemaker-model-tuner" / "statemachine" / "model-tuning.asl.json",
        {
            "BestModelSelectorFunctionArn": selector_arn,
            "SageMakerExecutionRoleArn": role_arn,
            "NotificationTopicArn": stack.resources["NotificationTopic"]["Ref"],
            "Environment": "staging",
            "OwnerStackName": "tuner",  # deployed alone, the stack tags with its own name
            "Partition": "aws",
        },
    )
    assert selector_arn in definition and role_arn in definition
    assert stack.outputs["SageMakerExecutionRoleArn"] == role_arn
    # The function carries the template's Globals and the layer it was deployed with.
    selector = deployer.registry.functions["tuner-BestModelSelectorFunction"]
    assert selector.environment["POWERTOOLS_SERVICE_NAME"] == "sagemaker-model-tuner"
    assert selector.code_dir == REPO_ROOT / "sagemaker-model-tuner" / "functions" / "best_model_selector"


def test_parent_template_deploys_its_nested_apps_and_wires_their_state_machines(deployer: Deployer) -> None:
    ml_parameters, _, _ = upload_parameter_files()

    stack = deployer.deploy(
        "parent",
        REPO_ROOT / "template.yaml",
        {"DataBucketName": BUCKET, "ParameterStorePath": "/parent-test"},
    )

    children = {
        logical_id: resource["Stack"]
        for logical_id, resource in stack.resources.items()
        if "Stack" in resource
    }
    definition = deployed_definition(stack, "TuningWithDeploymentStateMachine")
    assert definition == substituted(
        REPO_ROOT / "statemachine" / "model-tuning-with-endpoint-deployment.asl.json",
        {
            "ModelTuningStateMachineArn": children["ModelTuner"].outputs["StateMachineArn"],
            "EndpointDeploymentStateMachineArn": children["ModelDeployer"].outputs["StateMachineArn"],
            "NotificationTopicArn": stack.resources["NotificationTopic"]["Ref"],
            "Partition": "aws",
            "DataWatermarkParameterName": "/parent-test/data-watermark",
            "DeployedModelFinderFunctionArn": stack.resources["DeployedModelFinderFunction"]["Arn"],
            "QualityGateJudgeFunctionArn": stack.resources["QualityGateJudgeFunction"]["Arn"],
            "ModelRegistrarFunctionArn": stack.resources["ModelRegistrarFunction"]["Arn"],
            "SageMakerExecutionRoleArn": children["ModelTuner"].outputs["SageMakerExecutionRoleArn"],
            "Environment": "development",
            "OwnerStackName": "parent",
        },
    )
    # One topic for the whole system: the children were given the parent's, so created none.
    assert [topic["TopicArn"] for topic in client("sns").list_topics()["Topics"]] == [
        stack.resources["NotificationTopic"]["Ref"]
    ]
    # Every function of every child runs with the parent's layer.
    assert {name: function.layer_dirs for name, function in deployer.registry.functions.items()} == {
        name: [SHARED_LAYER] for name in deployer.registry.functions
    }
    # 7 in the nested apps; the gate's finder and judge, the registrar
    assert len(deployer.registry.functions) == 10
    assert json.loads(
        client("ssm").get_parameter(Name="/parent-test/ml-parameters")["Parameter"]["Value"]
    ) == (ml_parameters)


# --- intrinsic functions -----------------------------------------------------------------------------

INTRINSICS_TEMPLATE = """
Parameters:
  Stage:
    Type: String
    Default: dev
  Names:
    Type: String
    Default: alpha,beta,gamma
  ExternalTopicArn:
    Type: String
    Default: ""
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  OwnTopic: !Equals [!Ref ExternalTopicArn, ""]
Resources:
  Machine:
    # Declared first, but needs the topic created below: the deployer orders by references.
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions:
        TopicArn: !If [OwnTopic, !Ref Topic, !Ref ExternalTopicArn]
        Stage: !Ref Stage
  Topic:
    Type: AWS::SNS::Topic
    Condition: OwnTopic
  ProdOnlyTopic:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Logs:
    Type: AWS::Logs::LogGroup
    DependsOn: Machine
Outputs:
  Stage:
    Value: !Ref Stage
  Pseudo:
    Value: !Join ["|", [!Ref AWS::Region, !Ref AWS::AccountId, !Ref AWS::Partition, !Ref AWS::StackName]]
  StackId:
    Value: !Ref AWS::StackId
  SubString:
    Condition: OwnTopic
    Value: !Sub "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${Topic.TopicName}-${Stage}"
  SubList:
    Value: !Sub
      - "${Prefix}/${Second}/${Stage}/${!Literal}"
      - Prefix: !Join ["-", [!Ref Stage, x]]
        Second: !Select [1, !Split [",", !Ref Names]]
  GetAttList:
    Condition: OwnTopic
    Value: !GetAtt [Topic, TopicName]
  GetAttDotted:
    Value: !GetAtt Machine.Name
  IfProd:
    Value: !If [IsProd, production, !If [NotProd, not-production, unreachable]]
  Topic:
    Value: !If [OwnTopic, !Ref Topic, !Ref ExternalTopicArn]
  ProdOnly:
    Condition: IsProd
    Value: !Ref ProdOnlyTopic
"""


def deploy_intrinsics(deployer: Deployer, tmp_path: Path, parameters: dict[str, str]) -> Stack:
    (tmp_path / "machine.asl.json").write_text(
        json.dumps(
            {
                "Comment": "${Stage}",
                "StartAt": "Notify",
                "States": {
                    "Notify": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sns:publish",
                        "Parameters": {"TopicArn": "${TopicArn}", "Message": "hello"},
                        "End": True,
                    }
                },
            }
        )
    )
    return deployer.deploy("inline", write_template(tmp_path, INTRINSICS_TEMPLATE), parameters)


def test_intrinsic_functions_parameters_and_conditions(deployer: Deployer, tmp_path: Path) -> None:
    stack = deploy_intrinsics(deployer, tmp_path, {})
    topic_name = "inline-Topic"
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{topic_name}"
    assert stack.outputs == {
        "Stage": "dev",
        "Pseudo": f"{REGION}|{ACCOUNT_ID}|aws|inline",
        "StackId": stack.stack_id,
        "SubString": f"{topic_arn}-dev",
        "SubList": "dev-x/beta/dev/${Literal}",
        "GetAttList": topic_name,
        "GetAttDotted": "inline-Machine",
        "IfProd": "not-production",
        "Topic": topic_arn,
    }
    assert "ProdOnlyTopic" not in stack.resources
    assert [topic["TopicArn"] for topic in client("sns").list_topics()["Topics"]] == [topic_arn]
    definition = json.loads(deployed_definition(stack, "Machine"))
    assert definition["Comment"] == "dev"
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == topic_arn
    # SAM generates the machine's role (no Role given); the machine runs as it.
    assert set(stack.resources) == {"Machine", "MachineRole", "Topic", "Logs"}
    machine = client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.resources["Machine"]["Ref"]
    )
    assert machine["roleArn"] == stack.resources["MachineRole"]["Arn"]


def test_given_parameters_flip_the_conditions(deployer: Deployer, tmp_path: Path) -> None:
    external = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:external"
    stack = deploy_intrinsics(deployer, tmp_path, {"Stage": "prod", "ExternalTopicArn": external})
    assert stack.outputs["IfProd"] == "production"
    assert stack.outputs["Topic"] == external
    assert stack.outputs["ProdOnly"] == stack.resources["ProdOnlyTopic"]["Ref"]
    assert "Topic" not in stack.resources
    definition = json.loads(deployed_definition(stack, "Machine"))
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == external


def test_an_update_re_evaluates_parameters_and_conditions(deployer: Deployer, tmp_path: Path) -> None:
    stack = deploy_intrinsics(deployer, tmp_path, {})
    own_topic = stack.resources["Topic"]["Ref"]
    external = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:external"

    deployer.update(stack, {"Stage": "prod", "ExternalTopicArn": external})

    assert stack.outputs["IfProd"] == "production"
    assert stack.outputs["Topic"] == external
    assert stack.outputs["ProdOnly"] == stack.resources["ProdOnlyTopic"]["Ref"]
    assert "SubString" not in stack.outputs
    assert set(stack.resources) == {"Machine", "MachineRole", "ProdOnlyTopic", "Logs"}
    topics = [topic["TopicArn"] for topic in client("sns").list_topics()["Topics"]]
    assert own_topic not in topics and stack.resources["ProdOnlyTopic"]["Ref"] in topics
    definition = json.loads(deployed_definition(stack, "Machine"))
    assert definition["Comment"] == "prod"
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == external


RECORDING_RESOURCE = """\
import json, urllib.request
from pathlib import Path

REQUESTS = Path(__file__).with_suffix(".requests.jsonl")


def handler(event, context):
    with REQUESTS.open("a") as requests:
        requests.write(json.dumps(event) + "\\n")
    path = event["ResourceProperties"]["Path"]
    body = {
        "Status": "SUCCESS",
        "PhysicalResourceId": "thing:" + path,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Path": path},
    }
    urllib.request.urlopen(
        urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT")
    ).read()
"""


def test_a_custom_resource_gets_update_requests_only_when_its_properties_change(
    deployer: Deployer, tmp_path: Path
) -> None:
    module = write_module(tmp_path, "recording_resource", RECORDING_RESOURCE)
    template = write_template(
        tmp_path,
        f"""
        Parameters:
          Path: {{Type: String, Default: /a}}
          Revision: {{Type: String, Default: "1"}}
          Note: {{Type: String, Default: x}}
        Resources:
          Provider:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.13
              CodeUri: .
              Handler: {module}.handler
              Environment:
                Variables:
                  NOTE: !Ref Note
          Thing:
            Type: Custom::Thing
            Properties:
              ServiceToken: !GetAtt Provider.Arn
              Path: !Ref Path
              Revision: !Ref Revision
        Outputs:
          ThingPath:
            Value: !GetAtt Thing.Path
        """,
    )
    requests_file = tmp_path / f"{module}.requests.jsonl"

    def requests() -> list[tuple[str, str | None, dict[str, Any] | None, dict[str, Any]]]:
        events = [json.loads(line) for line in requests_file.read_text().splitlines()]
        return [
            (
                event["RequestType"],
                event.get("PhysicalResourceId"),
                event.get("OldResourceProperties"),
                {key: value for key, value in event["ResourceProperties"].items() if key != "ServiceToken"},
            )
            for event in events
        ]

    stack = deployer.deploy("updated", template, {})
    assert requests() == [("Create", None, None, {"Path": "/a", "Revision": "1"})]

    deployer.update(stack, {})  # nothing changed
    deployer.update(stack, {"Note": "y"})  # only the function's environment changed
    assert len(requests()) == 1
    assert deployer.registry.functions["updated-Provider"].environment["NOTE"] == "y"

    deployer.update(stack, {"Revision": "2"})
    [_, (request_type, physical_id, old, new)] = requests()
    assert (request_type, physical_id) == ("Update", "thing:/a")
    assert (old["Revision"], new) == ("1", {"Path": "/a", "Revision": "2"})

    # A new physical id is a replacement: the old resource is deleted once the update is done.
    deployer.update(stack, {"Path": "/b"})
    assert [request[:2] for request in requests()[2:]] == [("Update", "thing:/a"), ("Delete", "thing:/a")]
    assert requests()[3][3] == {"Path": "/a", "Revision": "2"}  # the deleted resource's own properties
    assert stack.resources["Thing"]["Ref"] == "thing:/b"
    assert stack.outputs["ThingPath"] == "/b"

    with pytest.raises(DeploymentFailed, match="updated: the template has no parameter Unknown"):
        deployer.update(stack, {"Unknown": "1"})


def test_the_provider_re_imports_on_a_new_revision_and_moves_the_parameters_with_their_path(
    deployer: Deployer,
) -> None:
    ml_parameters, _, _ = upload_parameter_files()
    s3, ssm = client("s3"), client("ssm")
    stack = deploy_provider(deployer, target_state_machine())
    changed = ml_parameters | {"maxNumberOfTrainingJobs": 3}
    s3.put_object(Bucket=BUCKET, Key="ml-parameters.json", Body=json.dumps(changed))

    def stored(path: str) -> dict[str, Any]:
        return json.loads(ssm.get_parameter(Name=f"{path}/ml-parameters")["Parameter"]["Value"])

    deployer.update(stack, {})  # CloudFormation sees no change: the import is not run
    assert stored("/stack-test") == ml_parameters
    deployer.update(stack, {"ParametersRevision": "2"})
    assert stored("/stack-test") == changed

    deployer.update(stack, {"ParameterStorePath": "/moved"})
    assert stored("/moved") == changed
    assert ssm.get_parameters_by_path(Path="/stack-test")["Parameters"] == []
    assert stack.outputs["ImportedParameterNames"] == "/moved/ml-parameters,/moved/hyperparameters"
    trigger = deployer.registry.functions["provider-ManifestTriggerFunction"]
    assert trigger.environment["PARAMETER_STORE_PATH"] == "/moved"


# --- errors ------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def shared_deployer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployer]:
    """For cases that do not depend on what an earlier one created: one emulated AWS keeps them fast."""
    with emulated_aws(tmp_path_factory.mktemp("logs")) as functions:
        yield Deployer(functions)


class TestBadTemplates:
    """Each fails with a DeploymentFailed naming the stack, the resource or output, and the problem."""

    @pytest.mark.parametrize(
        ("resources", "message"),
        [
            (
                "Table:\n  Type: AWS::DynamoDB::Table\n",
                "bad: resource type AWS::DynamoDB::Table (Table) is not emulated locally",
            ),
            (
                "Topic:\n  Type: AWS::SNS::Topic\n"
                "Machine:\n  Type: AWS::Serverless::StateMachine\n  Properties:\n"
                "    DefinitionUri: x.asl.json\n    DefinitionSubstitutions:\n      A: !Ref Missing\n",
                "bad: resource Machine: Ref Missing: no parameter, pseudo parameter or created resource of that name",
            ),
            (
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !Sub '${Missing}-logs'\n",
                "bad: resource Logs: Ref Missing: no parameter, pseudo parameter or created resource of that name",
            ),
            (
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !GetAtt Missing.Arn\n",
                "bad: resource Logs: Fn::GetAtt Missing.Arn: no created resource Missing",
            ),
            (
                "Topic:\n  Type: AWS::SNS::Topic\n"
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !GetAtt Topic.Nope\n",
                "bad: resource Logs: Fn::GetAtt Topic.Nope: Topic has no attribute Nope",
            ),
            (
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !If [Undefined, a, b]\n",
                "bad: resource Logs: condition Undefined is not defined in Conditions",
            ),
            (
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Condition: Undefined\n",
                "bad: resource Logs: condition Undefined is not defined in Conditions",
            ),
            (
                "Logs:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !FindInMap [Map, Key, Value]\n",
                "bad: resource Logs: Fn::FindInMap is not supported by the local deployer",
            ),
            (
                "A:\n  Type: AWS::Logs::LogGroup\n  DependsOn: B\n"
                "B:\n  Type: AWS::Logs::LogGroup\n  Properties:\n    Name: !Ref A\n",
                "bad: circular dependency between resources",
            ),
        ],
        ids=[
            "unknown-type",
            "ref-to-nothing",
            "sub-to-nothing",
            "getatt-unknown-resource",
            "getatt-unknown-attribute",
            "if-unknown-condition",
            "resource-unknown-condition",
            "unsupported-function",
            "cycle",
        ],
    )
    def test_bad_templates_fail_with_a_message_naming_the_resource_and_the_problem(
        self, shared_deployer: Deployer, tmp_path: Path, resources: str, message: str
    ) -> None:
        template = write_template(tmp_path, "Resources:\n" + textwrap.indent(resources, "  "))
        with pytest.raises(DeploymentFailed) as failure:
            shared_deployer.deploy("bad", template, {})
        assert str(failure.value).startswith(message)

    def test_a_parameter_without_value_or_default_fails(
        self, shared_deployer: Deployer, tmp_path: Path
    ) -> None:
        template = write_template(tmp_path, "Parameters:\n  Needed:\n    Type: String\nResources: {}\n")
        with pytest.raises(DeploymentFailed, match=r"^bad: parameter Needed has no value$"):
            shared_deployer.deploy("bad", template, {})

    def test_an_undefined_condition_in_an_output_or_condition_is_named(
        self, shared_deployer: Deployer, tmp_path: Path
    ) -> None:
        template = write_template(tmp_path, "Resources: {}\nOutputs:\n  Out:\n    Value: !If [Nope, a, b]\n")
        with pytest.raises(DeploymentFailed, match=r"^bad: output Out: condition Nope is not defined"):
            shared_deployer.deploy("bad", template, {})
        template = write_template(tmp_path, "Conditions:\n  A: !Not [!Condition Nope]\nResources: {}\n")
        with pytest.raises(DeploymentFailed, match=r"^bad: condition A: condition Nope is not defined"):
            shared_deployer.deploy("bad", template, {})


# --- functions ---------------------------------------------------------------------------------------


def test_function_runs_with_the_template_environment_and_its_layer_and_logs_to_its_file(
    deployer: Deployer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    helper = write_module(tmp_path / "layer", "layer_helper", "GREETING = 'from the layer'\n")
    module = write_module(
        tmp_path / "code",
        "env_reporter",
        textwrap.dedent(
            f"""
            import os
            import {helper}

            def handler(event, context):
                print("handling", event["n"], {helper}.GREETING)
                names = ("SHARED", "OVERRIDDEN", "STAGE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION")
                return {{name: os.environ.get(name) for name in names}}
            """
        ),
    )
    template = write_template(
        tmp_path,
        f"""
        Parameters:
          Stage:
            Type: String
        Globals:
          Function:
            Environment:
              Variables:
                SHARED: from-globals
                OVERRIDDEN: from-globals
        Resources:
          Layer:
            Type: AWS::Serverless::LayerVersion
            Properties:
              ContentUri: layer/
          Reporter:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.13
              CodeUri: code/
              Handler: {module}.handler
              Layers: [!Ref Layer]
              Environment:
                Variables:
                  OVERRIDDEN: !Sub "from-function-${{Stage}}"
                  STAGE: !Ref Stage
        """,
    )
    stack = deployer.deploy("fn", template, {"Stage": "test"})
    monkeypatch.setenv("SHARED", "caller-value")
    monkeypatch.delenv("STAGE", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    for n in (1, 2):
        response = client("lambda").invoke(
            FunctionName=stack.resources["Reporter"]["Arn"], Payload=json.dumps({"n": n})
        )
        assert "FunctionError" not in response
        assert json.loads(response["Payload"].read()) == {
            "SHARED": "from-globals",
            "OVERRIDDEN": "from-function-test",
            "STAGE": "test",
            "AWS_LAMBDA_FUNCTION_NAME": "fn-Reporter",
            "AWS_REGION": REGION,
        }
    # The caller's environment is back as it was.
    assert os.environ["SHARED"] == "caller-value"
    assert "STAGE" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ
    # The function's prints went to its own log file, not to the caller's console.
    log = tmp_path / "logs" / "fn-Reporter.log"
    assert log.read_text() == "handling 1 from the layer\nhandling 2 from the layer\n"
    assert "handling" not in capsys.readouterr().out
    configuration = client("lambda").get_function_configuration(FunctionName="fn-Reporter")
    assert configuration["Environment"]["Variables"] == {
        "SHARED": "from-globals",
        "OVERRIDDEN": "from-function-test",
        "STAGE": "test",
    }


def test_without_log_dir_prints_go_to_the_callers_stdout(
    tmp_path: Path, registry: FunctionRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.log_dir = None
    module = write_module(tmp_path, "printer", "def handler(event, context):\n    print('printed', event)\n")
    template = write_template(
        tmp_path,
        f"""
        Resources:
          Printer:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.13
              CodeUri: .
              Handler: {module}.handler
        """,
    )
    Deployer(registry).deploy("plain", template, {})
    client("lambda").invoke(FunctionName="plain-Printer", Payload=json.dumps("hi"))
    assert "printed hi" in capsys.readouterr().out
    assert not (tmp_path / "logs").exists()


def test_nested_application_gets_its_parameters_and_the_parents_layers(
    deployer: Deployer, tmp_path: Path
) -> None:
    (tmp_path / "layer").mkdir()
    module = write_module(
        tmp_path / "child", "nested_child", "def handler(event, context):\n    return event\n"
    )
    write_template(
        tmp_path / "child",
        f"""
        Parameters:
          Greeting:
            Type: String
        Resources:
          Echo:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.13
              CodeUri: .
              Handler: {module}.handler
              Environment:
                Variables:
                  GREETING: !Ref Greeting
        Outputs:
          EchoArn:
            Value: !GetAtt Echo.Arn
        """,
    )
    parent = write_template(
        tmp_path,
        """
        Resources:
          Layer:
            Type: AWS::Serverless::LayerVersion
            Properties:
              ContentUri: layer/
          Child:
            Type: AWS::Serverless::Application
            Properties:
              Location: child/template.yaml
              Parameters:
                Greeting: !Sub "hello from ${AWS::StackName}"
        Outputs:
          EchoArn:
            Value: !GetAtt Child.Outputs.EchoArn
        """,
    )
    stack = deployer.deploy("parent", parent, {})
    echo = deployer.registry.functions["parent-Child-Echo"]
    assert (
        stack.outputs["EchoArn"]
        == client("lambda").get_function(FunctionName="parent-Child-Echo")["Configuration"]["FunctionArn"]
    )
    assert echo.environment["GREETING"] == "hello from parent"
    assert echo.layer_dirs == [tmp_path / "layer"]
    assert stack.resources["Child"]["Ref"] == stack.resources["Child"]["Stack"].stack_id


def test_the_shared_layer_keeps_no_aws_client_across_calls() -> None:
    """The local registry imports the layer once per process, for every function: a client the layer kept
    (module-level, or behind a cache) would act for whichever function made it first."""
    import ast

    for path in (REPO_ROOT / "layers").glob("*/*/*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            calls = [item for item in ast.walk(node) if isinstance(item, ast.Call)]
            makes_client = any(
                isinstance(call.func, ast.Attribute) and call.func.attr in {"client", "resource", "Session"}
                for call in calls
            )
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                cached = any("cache" in ast.unparse(decorator) for decorator in node.decorator_list)
                assert not (cached and makes_client), f"{path.name}: {node.name} caches a client"
            elif not isinstance(node, ast.ClassDef):
                assert not makes_client, f"{path.name} line {node.lineno}: a module-level client"


def test_deleting_a_stack_deletes_its_resources_last_created_first_and_runs_its_custom_resources(
    deployer: Deployer,
) -> None:
    """The deployer alone with OnStackDelete=Delete: the teardown's Delete request runs while its function still
    exists and removes the endpoint tagged with this stack, not the other stack's; then the stack's functions and
    state machine go."""
    sagemaker = client("sagemaker")
    for name, owner in (("ours", "deployer"), ("theirs", "other-stack")):
        tags = [{"Key": "h2o-sagemaker:stack", "Value": owner}]
        sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/x", Tags=tags
        )
        variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large"}
        sagemaker.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[variant | {"InitialInstanceCount": 1}], Tags=tags
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    stack = deployer.deploy(
        "deployer",
        REPO_ROOT / "sagemaker-model-deployer" / "template.yaml",
        {"SharedLayerArn": LAYER_ARN, "OnStackDelete": "Delete"},
    )
    assert stack.resources["EndpointTeardown"]["Ref"] == "sagemaker-teardown:deployer"

    deployer.delete(stack)

    assert stack.resources == {} and stack.applied == {}
    assert [item["EndpointName"] for item in sagemaker.list_endpoints()["Endpoints"]] == ["theirs"]
    assert [item["ModelName"] for item in sagemaker.list_models()["Models"]] == ["theirs"]
    assert client("lambda").list_functions()["Functions"] == []
    assert client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert deployer.registry.functions == {}


CONSTRAINED_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Count:
    Type: Number
    Default: 2
    MinValue: 1
    MaxValue: 5
  Name:
    Type: String
    Default: abc
    AllowedPattern: "[a-z]+"
    ConstraintDescription: lowercase letters only
  Short:
    Type: String
    Default: ab
    MaxLength: 3
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Stage": "Prod"}, "Parameter 'Stage' must be one of AllowedValues"),
        ({"Count": "two"}, "Parameter 'Count' must be a number"),
        ({"Count": "6"}, "Parameter 'Count' must be a number not greater than 5"),
        ({"Name": "ab1"}, "Parameter Name failed to satisfy constraint: lowercase letters only"),
        ({"Short": "abcd"}, "Parameter 'Short' must not contain more than 3 characters"),
        ({"Other": "x"}, "the template has no parameter Other"),
    ],
)
def test_a_parameter_value_cloudformation_refuses_is_refused_before_any_resource(
    deployer: Deployer, tmp_path: Path, parameters: dict[str, str], message: str
) -> None:
    template = write_template(tmp_path, CONSTRAINED_TEMPLATE)
    with pytest.raises(DeploymentFailed, match=f"^constrained: {re.escape(message)}$"):
        deployer.deploy("constrained", template, parameters)
    assert client("sns").list_topics()["Topics"] == []

    stack = deployer.deploy("constrained", template, {"Stage": "prod", "Count": "5", "Name": "xyz"})
    with pytest.raises(DeploymentFailed, match=re.escape(message)):
        deployer.update(stack, parameters)
    assert stack.parameters == {"Stage": "prod", "Count": "5", "Name": "xyz", "Short": "ab"}


def test_the_retraining_schedule_takes_scheduler_expressions_only() -> None:
    """A five-field cron (the Unix habit) or an unknown unit would fail the schedule's creation on AWS."""
    template = Templates().read(REPO_ROOT / "template.yaml")
    values = {"DataBucketName": "my-bucket"}
    for good in ("", "rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)", "at(2026-12-24T03:00:00)"):
        check_parameter_constraints("parent", template, values | {"RetrainingSchedule": good})
    for bad in ("cron(0 3 * * *)", "rate(1 week)", "daily", "at(2026-12-24)"):
        with pytest.raises(
            DeploymentFailed, match="Parameter RetrainingSchedule failed to satisfy constraint: empty"
        ):
            check_parameter_constraints("parent", template, values | {"RetrainingSchedule": bad})


def test_the_notification_email_is_empty_or_an_address() -> None:
    template = Templates().read(REPO_ROOT / "template.yaml")
    values = {"DataBucketName": "my-bucket"}
    for good in ("", "ml-team@example.com", "first.last+alerts@sub.example.co.uk"):
        check_parameter_constraints("parent", template, values | {"NotificationEmail": good})
    for bad in ("ml-team", "ml team@example.com", "a@b", "@example.com"):
        with pytest.raises(
            DeploymentFailed, match="Parameter NotificationEmail failed to satisfy constraint"
        ):
            check_parameter_constraints("parent", template, values | {"NotificationEmail": bad})
