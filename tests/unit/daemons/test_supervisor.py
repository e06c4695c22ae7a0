"""The embedded supervisor restarts a dying daemon child with a doubling, capped back-off."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from datamgmt.embedded import DaemonSupervisor


def test_a_child_that_keeps_dying_is_restarted_with_capped_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datamgmt.embedded")
    supervisor = DaemonSupervisor(
        [sys.executable, "-c", "raise SystemExit(3)"], first_delay=0.05, max_delay=0.2, healthy_after=60
    )
    supervisor.start()
    deadline = time.monotonic() + 60
    while supervisor.restarts < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    supervisor.stop()
    deaths = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert supervisor.restarts >= 5
    assert [r.args[2] for r in deaths[:5]] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert all(r.args[1] == "exit status 3" for r in deaths)
    assert sum(r.levelno == logging.WARNING and "restarted" in r.getMessage() for r in caplog.records) >= 5


def test_stop_is_not_a_death(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = DaemonSupervisor([sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.start()
    first = supervisor.process
    supervisor.stop()
    assert first is not None and first.returncode is not None
    assert supervisor.restarts == 0 and supervisor.process is first
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
