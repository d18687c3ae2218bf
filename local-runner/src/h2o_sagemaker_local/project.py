"""The project a local run deploys: the checkout holding the parent template, its nested apps and the examples.

Found from a folder the user names (or the current one), never from where this package is installed, so a
non-editable install runs any checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Only the parent template nests the other apps; a nested app's own template.yaml is not the project.
PARENT_TEMPLATE_MARK = "AWS::Serverless::Application"


class ProjectNotFound(Exception):
    """No parent template.yaml in the folder or above it; the message says where the search started."""


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def template(self) -> Path:
        return self.root / "template.yaml"

    @property
    def examples(self) -> Path:
        return self.root / "examples"

    @property
    def containers_conf(self) -> Path:
        """The podman settings `make images` builds with (``scripts/container-engine.sh``)."""
        return self.root / "scripts" / "containers.conf"


def is_project_root(folder: Path) -> bool:
    template = folder / "template.yaml"
    return template.is_file() and PARENT_TEMPLATE_MARK in template.read_text(errors="replace")


def find_project(start: Path | None = None) -> Project:
    """The project at ``start`` (default: the current folder) or the nearest folder above it."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_project_root(folder):
            return Project(folder)
    raise ProjectNotFound(
        f"no project found at {start} or above it (a template.yaml nesting the apps): "
        "run from the checkout or pass --project-dir"
    )
