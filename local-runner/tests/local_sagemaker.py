"""A LocalSageMaker behind moto for the tests that run real model servers: test credentials, moto's SageMaker
routed to it, and, at the end, no process of its work folder left."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from h2o_sagemaker_local import moto_patches
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from moto import mock_aws
from process_watch import no_process_left, processes_using


@contextmanager
def local_sagemaker_behind_moto(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, account_id: str, region: str
) -> Iterator[LocalSageMaker]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        local = LocalSageMaker(workdir, account_id=account_id, region=region)
        local.install()
        try:
            yield local
        finally:
            local.shutdown()
            local.uninstall()
            moto_patches.uninstall()
            no_process_left(workdir)
            leftovers = processes_using(workdir)
            for pid in leftovers:  # only the servers this test started: their environment names its workdir
                os.kill(pid, signal.SIGKILL)
    assert leftovers == [], "a model server outlived shutdown()"
