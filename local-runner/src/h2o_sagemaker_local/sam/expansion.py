"""SAM's expansion of a template: the IAM roles it generates for functions and state machines, from SAM's own
translator, so the local run gives each the policies ``sam deploy`` would (policy templates such as
LambdaInvokePolicy, the AWSXrayWriteOnlyAccess policy Tracing adds).

The translator runs in the SAM CLI's environment (it pins a pydantic this project's Lambdas do not use), found
as ``$H2O_SAGEMAKER_LOCAL_SAM_PYTHON``, the ``.tools/sam`` of the project holding the templates (``make run``
installs it), or the interpreter of the ``sam`` command on PATH.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TRANSLATE = Path(__file__).with_name("translate.py")
# Local paths SAM's packaging step replaces with S3 locations; the translator accepts only those.
_LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Application": "Location",
}
GENERATING_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")


class SamUnavailable(RuntimeError):
    """The SAM CLI's interpreter could not be found or the translation failed; the message says why."""


def sam_python(template_paths: Iterable[Path]) -> Path:
    """The SAM CLI's interpreter; ``.tools/sam`` is looked for above the templates, not above this package,
    which may be installed anywhere."""
    configured = os.environ.get("H2O_SAGEMAKER_LOCAL_SAM_PYTHON")
    if configured:
        return Path(configured)
    for template_path in template_paths:
        for parent in template_path.resolve().parents:
            candidate = parent / ".tools" / "sam" / "bin" / "python"
            if candidate.is_file():
                return candidate
    sam = shutil.which("sam")
    if sam:
        first_line = Path(sam).read_text(errors="replace").splitlines()[0]
        if first_line.startswith("#!") and Path(first_line[2:].strip()).is_file():
            return Path(first_line[2:].strip())
    raise SamUnavailable(
        "the SAM CLI is not installed: `make run` installs it in .tools/sam, or set H2O_SAGEMAKER_LOCAL_SAM_PYTHON "
        "to the Python interpreter of an aws-sam-cli installation"
    )


def generated_roles(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """For each template (its path -> the parsed SAM template), the roles SAM generates: logical id of the
    function or state machine -> the AWS::IAM::Role resource it gets (intrinsics left for the deployer to
    evaluate)."""
    packaged = {name: _packaged(template) for name, template in templates.items()}
    translated = _translated(packaged)
    roles: dict[str, dict[str, dict[str, Any]]] = {}
    for name, template in templates.items():
        resources = translated[name]["Resources"]
        roles[name] = {
            logical_id: resources[f"{logical_id}Role"]
            for logical_id, resource in template.get("Resources", {}).items()
            if resource.get("Type") in GENERATING_TYPES
            and "Role" not in resource.get("Properties", {})
            and f"{logical_id}Role" in resources
        }
    return roles


def _translated(packaged: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """SAM's translation, kept in the user's cache keyed by the templates and the translator (about a second saved
    per deployment: most runs deploy unchanged templates)."""
    python = sam_python(Path(name) for name in packaged)
    request = json.dumps(packaged, sort_keys=True)
    translator = sorted(python.parent.parent.glob("lib/python*/site-packages/samtranslator/__init__.py"))
    key = hashlib.sha256(
        "\0".join([request, TRANSLATE.read_text(), *(path.read_text() for path in translator)]).encode()
    ).hexdigest()
    cached = _cache_dir() / f"sam-translation-{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    result = subprocess.run(
        [str(python), str(TRANSLATE)],
        input=request,
        capture_output=True,
        text=True,
        timeout=300,
        # The translator resolves pseudo parameters; the local deployer fills them in itself.
        env=os.environ | {"AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")},
    )
    if result.returncode != 0:
        raise SamUnavailable(f"SAM's translator failed: {result.stderr.strip()[-2000:]}")
    with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(result.stdout)
        partial.replace(cached)
    return json.loads(result.stdout)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "h2o-sagemaker-local"


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local code and definition paths replaced by S3 locations."""
    template = copy.deepcopy(template)
    for logical_id, resource in template.get("Resources", {}).items():
        key = _LOCAL_URIS.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key and isinstance(properties.get(key), str) and "://" not in properties[key]:
            if key == "Location":
                properties[key] = f"https://s3.amazonaws.com/local-packaging/{logical_id}/template.yaml"
            else:
                properties[key] = f"s3://local-packaging/{logical_id}"
    return template
