"""The AppCDS start-up archive made on first use, with real jobs: two first jobs at once leave one whole archive,
the next job starts from it, and every job leaves no JVM and no scratch file behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.h2o

SETTINGS = {"target": "Survived", "classification": "true", "ignored_columns": "PassengerId,Name,Ticket,Cabin",
            "ntrees": "5", "seed": "1"}  # fmt: skip


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def test_two_first_jobs_at_once_leave_one_archive_the_next_job_starts_from(jobs, tmp_path: Path) -> None:
    cache, scratch = tmp_path / "cache", tmp_path / "tmp"
    scratch.mkdir()
    environment = {"H2O_GBM_TRAINER_CACHE_DIR": str(cache), "TMPDIR": str(scratch)}
    base_dirs = [
        jobs.make(tmp_path / f"job{index}", SETTINGS, {"training": jobs.train_csv}) for index in range(3)
    ]

    first = [(jobs.start(base_dir, environment), base_dir) for base_dir in base_dirs[:2]]
    first_runs = [jobs.finish(process, base_dir) for process, base_dir in first]

    for run in first_runs:
        assert run.returncode == 0, run.stderr
        assert "start-up archive: creating" in run.stdout
        assert "start-up archive written in" in run.stdout
    archives = sorted(cache.iterdir())
    assert len(archives) == 1 and re.fullmatch(
        r"h2o-3\.46\.0\.11-java-.+-coops-[0-9a-f]{16}\.jsa", archives[0].name
    )

    next_run = jobs.run(base_dirs[2], environment)
    assert next_run.returncode == 0, next_run.stderr
    assert f"start-up archive: used {archives[0]}" in next_run.stdout
    assert sorted(cache.iterdir()) == archives  # no temporary file left

    # Every JVM went down with its job, and its scratch folder (ice root, logs, class list) with it.
    assert list(scratch.iterdir()) == []
    assert _processes_mentioning(str(scratch)) == []


def test_java_tool_options_can_switch_the_archive_off(jobs, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base_dir = jobs.make(tmp_path / "job", SETTINGS, {"training": jobs.train_csv})

    run = jobs.run(base_dir, {"H2O_GBM_TRAINER_CACHE_DIR": str(cache), "JAVA_TOOL_OPTIONS": "-Xshare:off"})

    assert run.returncode == 0, run.stderr
    assert "start-up archive: as set in JAVA_TOOL_OPTIONS" in run.stdout
    assert not cache.exists()
