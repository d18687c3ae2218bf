"""The runner finds the project it deploys from a folder, not from where the package is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from h2o_sagemaker_local.cli import main, parse_arguments
from h2o_sagemaker_local.project import Project, ProjectNotFound, find_project

CHECKOUT = Path(__file__).resolve().parents[2]
LOCAL_RUNNER = CHECKOUT / "local-runner"


def test_the_project_is_found_from_its_root_and_from_inside_a_nested_app() -> None:
    assert find_project(CHECKOUT) == Project(CHECKOUT)
    # A nested app's template.yaml is not the project: the search goes on up to the parent template.
    assert find_project(CHECKOUT / "ml-parameter-provider" / "functions") == Project(CHECKOUT)
    assert find_project(CHECKOUT).template == CHECKOUT / "template.yaml"
    assert (find_project(CHECKOUT).examples / "train.csv").is_file()


def test_the_project_defaults_to_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CHECKOUT / "sagemaker-model-tuner")
    assert find_project() == Project(CHECKOUT)


def test_no_project_above_a_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")  # a template, but not the parent one
    with pytest.raises(ProjectNotFound, match=f"no project found at {tmp_path} or above it"):
        find_project(tmp_path)


def test_the_example_files_default_to_the_projects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    options = parse_arguments(["run", "--project-dir", str(CHECKOUT / "sagemaker-model-deployer")])

    examples = CHECKOUT / "examples"
    assert options.project == Project(CHECKOUT)
    assert (options.hyperparameters, options.manifest) == (
        examples / "hyperparameters.json",
        examples / "manifest.json",
    )
    assert (options.train, options.validation) == (examples / "train.csv", examples / "validation.csv")
    (tmp_path / "mine.csv").write_text("Survived,Age\n1,30\n")
    given = parse_arguments(["run", "--project-dir", str(CHECKOUT), "--train", "mine.csv"])
    assert given.train == Path("mine.csv")  # relative to where the command runs


def test_no_project_is_a_one_line_error_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])

    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"h2o-sagemaker-local: error: no project found at {tmp_path.resolve()} or above it (a template.yaml "
        "nesting the apps): run from the checkout or pass --project-dir\n"
    )


@pytest.fixture(scope="module")
def installed_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install --no-deps --target` of the package, not editable: a copy of its files away from the checkout.
    The heavy dependencies come from this interpreter's site-packages."""
    scratch = tmp_path_factory.mktemp("installed-runner")
    source = scratch / "source"  # built from a copy: setuptools leaves build/ in the folder it builds
    shutil.copytree(
        LOCAL_RUNNER / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    shutil.copy(LOCAL_RUNNER / "pyproject.toml", source)
    target = scratch / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        timeout=120,
    )
    return target


def run_installed(target: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, with the installed package ahead of the editable one on sys.path."""
    return subprocess.run(
        [str(target / "bin" / "h2o-sagemaker-local"), *arguments],
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_non_editable_install_runs_the_checkout_it_is_pointed_at(
    installed_runner: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import h2o_sagemaker_local.cli as cli; print(cli.__file__)"],
        env=os.environ | {"PYTHONPATH": str(installed_runner)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed_runner)
    assert (installed_runner / "h2o_sagemaker_local" / "iam" / "simulator.mjs").is_file()

    top_help = run_installed(installed_runner, tmp_path, "--help")
    assert top_help.returncode == 0, top_help.stderr
    assert top_help.stdout.startswith("usage: h2o-sagemaker-local")
    run_help = run_installed(installed_runner, tmp_path, "run", "--help")
    assert run_help.returncode == 0, run_help.stderr
    assert "--project-dir" in run_help.stdout

    outside = run_installed(installed_runner, tmp_path, "run")
    assert outside.returncode == 2
    assert outside.stderr.startswith(f"h2o-sagemaker-local: error: no project found at {tmp_path.resolve()} ")
    assert len(outside.stderr.splitlines()) == 1

    # From inside the checkout, and from elsewhere with --project-dir: the project's examples are found and read
    # up to the manifest, which is missing; nothing is deployed.
    missing = tmp_path / "missing.json"
    for cwd, project in (
        (CHECKOUT / "ml-parameter-provider", []),
        (tmp_path, ["--project-dir", str(CHECKOUT)]),
    ):
        checked = run_installed(installed_runner, cwd, "run", *project, "--manifest", str(missing))
        assert checked.returncode == 2, checked.stderr
        assert checked.stderr == f"h2o-sagemaker-local: error: --manifest {missing} does not exist\n"
