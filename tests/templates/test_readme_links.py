"""Every relative link in the project's READMEs leads somewhere: the file exists, and a `#section` names one of
its headings (as GitHub makes their anchors), so an edit that renames or drops a heading breaks no link."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from templates.asl import REPO_ROOT

READMES = [
    REPO_ROOT / name
    for name in subprocess.run(
        ["git", "ls-files", "*README.md"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```", "", markdown.read_text(), flags=re.S | re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    }


@pytest.mark.parametrize("readme", READMES, ids=[str(path.relative_to(REPO_ROOT)) for path in READMES])
def test_relative_links_lead_to_a_file_and_heading(readme: Path) -> None:
    broken = []
    for target in LINK.findall(readme.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        linked = (readme.parent / path).resolve() if path else readme
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []
