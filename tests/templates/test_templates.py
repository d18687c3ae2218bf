"""Every template and ASL file passes the same checks CI runs: cfn-lint, sam validate --lint, asl-validator,
the project's ASL rules (so the same files run on AWS and under moto's interpreter), and a full sam build."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [
    REPO_ROOT / "template.yaml",
    *(
        REPO_ROOT / app / "template.yaml"
        for app in (
            "ml-parameter-provider",
            "sagemaker-model-tuner",
            "sagemaker-model-deployer",
            "data-bucket",
        )
    ),
]
ASL_FILES = sorted(
    path for path in REPO_ROOT.glob("**/statemachine/*.asl.json") if ".aws-sam" not in path.parts
)
SAM = REPO_ROOT / ".tools" / "sam" / "bin" / "sam"
ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
SAM_ENV = os.environ | {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, **options)


def load_template(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches, matches
    return template


def state_machines() -> list[tuple[Path, dict[str, Any]]]:
    """(ASL file, DefinitionSubstitutions) for every state machine declared in a template."""
    found = []
    for template_path in TEMPLATES:
        for resource in load_template(template_path)["Resources"].values():
            if resource["Type"] == "AWS::Serverless::StateMachine":
                properties = resource["Properties"]
                found.append(
                    (
                        template_path.parent / properties["DefinitionUri"],
                        properties.get("DefinitionSubstitutions", {}),
                    )
                )
    return found


def walk_states(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """All states, including those inside Parallel branches and Map iterators."""
    found = []
    for name, state in states.items():
        found.append((name, state))
        for branch in state.get("Branches", []):
            found.extend(walk_states(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.extend(walk_states(processor["States"]))
    return found


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_anywhere(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_anywhere(item)}
    return set()


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_cfn_lint(template: Path) -> None:
    result = run([str(CFN_LINT), str(template)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_sam_validate_lint(template: Path) -> None:
    result = run([str(SAM), "validate", "--lint", "--template", str(template)], env=SAM_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_every_asl_file_belongs_to_a_template() -> None:
    declared = {path.resolve() for path, _ in state_machines()}
    assert declared == {path.resolve() for path in ASL_FILES}
    assert len(ASL_FILES) == 3


@pytest.mark.parametrize("asl_file", ASL_FILES, ids=relative)
def test_asl_validator(asl_file: Path, tmp_path: Path) -> None:
    # Validated as deployed in the aws partition: the validator takes ARNs, or placeholders as whole values.
    deployed = tmp_path / asl_file.name
    deployed.write_text(asl_file.read_text().replace("${Partition}", "aws"))
    result = run([str(ASL_VALIDATOR), "--json-path", str(deployed)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("asl_file", "substitutions"),
    state_machines(),
    ids=lambda value: relative(value) if isinstance(value, Path) else "",
)
def test_asl_follows_the_portability_rules(asl_file: Path, substitutions: dict[str, Any]) -> None:
    text = asl_file.read_text()
    definition = json.loads(text)
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(substitutions), (
        "placeholders and DefinitionSubstitutions differ"
    )
    assert "QueryLanguage" not in keys_anywhere(definition), "JSONPath only: moto's interpreter stubs JSONata"
    for name, state in walk_states(definition["States"]):
        assert "Assign" not in state, f"{name}: Assign is not evaluated by moto's interpreter"
        assert "RoleArn.$" not in keys_anywhere(state), f"{name}: RoleArn.$ is never evaluated locally"
        for catcher in state.get("Catch", []):
            assert all(error.startswith("States.") for error in catcher["ErrorEquals"]), (
                f"{name}: catch States.*"
            )
        resource = state.get("Resource", "")
        if resource.startswith("arn:${Partition}:states:::states:startExecution"):
            assert "Name.$" in state["Parameters"] or "Name" in state["Parameters"], (
                f"{name}: child run needs a Name"
            )
        if state["Type"] == "Wait":
            assert "SecondsPath" in state, f"{name}: waits take their length from the input"


def test_sam_build_of_the_parent_includes_every_nested_app(tmp_path: Path) -> None:
    lambda_python = run(["bash", "scripts/lambda-python-bin.sh"])
    assert lambda_python.returncode == 0, lambda_python.stderr
    build_dir = tmp_path / "build"
    result = run(
        [
            str(SAM),
            "build",
            "--template",
            "template.yaml",
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        env=SAM_ENV | {"PATH": f"{lambda_python.stdout.strip()}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = build_dir / "WorkflowCommonLayer" / "python"
    for package in ("aws_lambda_powertools", "pydantic", "workflow_common"):
        assert (layer / package).is_dir(), f"{package} missing from the built layer"
    for app in ("ModelTuner", "ModelDeployer", "ParameterProvider"):
        assert (build_dir / app / "template.yaml").is_file(), f"nested app {app} was not built"
    assert (build_dir / "ParameterProvider" / "ManifestTriggerFunction" / "manifest_trigger.py").is_file()
