"""``datamgmt-server --embedded``'s supervisor against a real daemon child: SIGKILL it, and a
new child takes over, every embedded daemon beats again from it, and ``/health`` says 200."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from datamgmt.api.app import create_app
from datamgmt.config import reset_config
from datamgmt.core.db.models import Heartbeat
from datamgmt.core.db.session import transaction
from datamgmt.embedded import EMBEDDED_DAEMONS, DaemonSupervisor

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def daemons_beating_from(db: str, pid: int) -> set[str]:
    with transaction(db, read_only=True) as session:
        return set(session.scalars(select(Heartbeat.daemon).where(Heartbeat.pid == pid)))


def test_sigkilled_child_is_restarted_and_health_recovers(
    db: str, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMGMT_DAEMONS_SLEEP_MAX", "1")
    monkeypatch.setenv("DATAMGMT_API_HEALTH_DAEMONS", ",".join(EMBEDDED_DAEMONS))
    reset_config()
    client = create_app(database_url=db).test_client()
    supervisor = DaemonSupervisor(first_delay=0.5)
    supervisor.start()
    try:
        assert supervisor.process is not None
        first = supervisor.process.pid
        wait_until(
            lambda: daemons_beating_from(db, first) == set(EMBEDDED_DAEMONS), 180, "the first child's beats"
        )
        assert client.get("/health").status_code == 200
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervisor.restarts == 1, 30, "a restart")
        second = supervisor.process.pid
        assert second != first
        wait_until(
            lambda: daemons_beating_from(db, second) == set(EMBEDDED_DAEMONS), 180, "the new child's beats"
        )
        health = client.get("/health")
        assert health.status_code == 200, health.get_json()
        assert all(d["alive"] for d in health.get_json()["daemons"].values())
    finally:
        supervisor.stop()
        reset_config()
    assert supervisor.process.returncode == 0, "SIGTERM stops the child gracefully"
