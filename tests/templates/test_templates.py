"""Every template and ASL file passes the same checks CI runs: cfn-lint, sam validate --lint, asl-validator and
a full sam build. The project's own ASL rules are in test_asl_rules.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from templates.asl import ASL_FILES, REPO_ROOT, TEMPLATES, relative

SAM = REPO_ROOT / ".tools" / "sam" / "bin" / "sam"
ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
SAM_ENV = os.environ | {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, **options)


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_cfn_lint(template: Path) -> None:
    result = run([str(CFN_LINT), str(template)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=relative)
def test_sam_validate_lint(template: Path) -> None:
    result = run([str(SAM), "validate", "--lint", "--template", str(template)], env=SAM_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.parametrize("asl_file", ASL_FILES, ids=relative)
def test_asl_validator(asl_file: Path, tmp_path: Path) -> None:
    # Validated as deployed in the aws partition: the validator takes ARNs, or placeholders as whole values.
    deployed = tmp_path / asl_file.name
    deployed.write_text(asl_file.read_text().replace("${Partition}", "aws"))
    result = run([str(ASL_VALIDATOR), "--json-path", str(deployed)])
    assert result.returncode == 0, result.stdout + result.stderr


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
