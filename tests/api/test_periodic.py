"""Periodic background tasks: they run on schedule, survive failures and stop."""

from __future__ import annotations

import threading

import pytest

from limelight.api.periodic import Periodic


def test_runs_repeatedly_survives_failures_and_stops() -> None:
    calls: list[int] = []
    three = threading.Event()

    def task() -> None:
        calls.append(1)
        if len(calls) >= 3:
            three.set()
        if len(calls) == 1:
            raise RuntimeError("first call fails")

    beat = Periodic("test-beat", 0.01, task)
    beat.start()
    beat.start()  # idempotent: still one thread
    assert three.wait(5), "the task stopped after its failure"
    beat.stop()
    assert not beat.running
    done = len(calls)
    threading.Event().wait(0.05)
    assert len(calls) == done  # nothing runs after stop
    beat.start()  # restartable
    assert beat.running
    beat.stop()


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Periodic("bad", 0, lambda: None)
