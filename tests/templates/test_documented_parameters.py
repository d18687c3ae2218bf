"""The README documents every parameter a user deploys with: the parent stack's table lists exactly the parent
template's parameters, and the data bucket's are named where its stack is deployed."""

from __future__ import annotations

import re

from templates.asl import REPO_ROOT, load_template

README = (REPO_ROOT / "README.md").read_text()


def _first_column(heading: str) -> set[str]:
    section = README.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([^`]+)`", line.split(" | ", 1)[0])
    }


def test_the_stack_parameters_table_lists_the_parent_templates_parameters() -> None:
    parameters = set(load_template(REPO_ROOT / "template.yaml")["Parameters"])

    assert _first_column("### Stack parameters") == parameters


def test_the_readme_names_every_data_bucket_parameter() -> None:
    parameters = set(load_template(REPO_ROOT / "data-bucket" / "template.yaml")["Parameters"])
    deploy_section = README.split("\n## Deploy to AWS\n", 1)[1].split("\n### ", 1)[0]

    assert {name for name in parameters if f"`{name}`" not in deploy_section} == set()
