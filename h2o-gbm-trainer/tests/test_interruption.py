"""SIGTERM stops training even when the signal lands in a finalizer, which drops the handler's exception."""

from __future__ import annotations

import gc
import os
import signal
import weakref

import pytest
from h2o_gbm_trainer import interruption


@pytest.fixture
def sigterm_handler():
    previous = signal.signal(signal.SIGTERM, interruption.on_sigterm)
    yield
    signal.signal(signal.SIGTERM, previous)
    interruption._requested.clear()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped exception itself
def test_a_sigterm_whose_exception_a_finalizer_swallowed_still_stops_the_next_step(sigterm_handler) -> None:
    class Pool:
        pass

    def close_connections() -> None:  # as urllib3 closes a pool when it is collected
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, here, and its exception is dropped
            pass

    pool = Pool()
    weakref.finalize(pool, close_connections)
    del pool
    gc.collect()  # "Exception ignored in: <finalize object ...>": training would go on

    with pytest.raises(interruption.Interrupted, match="stopped by SIGTERM"):
        interruption.check()


def test_without_a_sigterm_training_goes_on(sigterm_handler) -> None:
    interruption.check()
