"""Busy-waiting for PostgreSQL's answer (``core/db/busy_wait.py``): the look at the socket ends as
soon as it is readable, after the allowance, or once its condition fails; PostgreSQL's engines
connect with the busy-waiting connection, whose statements, pipelines, streams, commits and
errors behave as psycopg's own while a policy lets it wait, and which never waits without one."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select as select_rows
from sqlalchemy import text

from datamgmt.core import rse, scope
from datamgmt.core.db import busy_wait
from datamgmt.core.db.models import RSE
from datamgmt.core.db.session import get_engine, transaction
from datamgmt.exceptions import Duplicate


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, select.poll]]:
    """A connected socket pair: the one written to, and a poller of the other's input."""
    ours, theirs = socket.socketpair()
    poller = select.poll()
    poller.register(theirs, select.POLLIN)
    yield ours, poller
    ours.close()
    theirs.close()


def test_a_readable_socket_ends_the_look_at_once(pair: tuple[socket.socket, select.poll]) -> None:
    ours, poller = pair
    ours.send(b"answer")
    assert busy_wait.until_readable(poller, 5.0) < 0.5


def test_a_quiet_socket_is_looked_at_for_the_allowance(pair: tuple[socket.socket, select.poll]) -> None:
    _, poller = pair
    started = time.perf_counter()
    looked = busy_wait.until_readable(poller, 0.05)
    assert 0.05 <= looked <= time.perf_counter() - started


def test_the_look_ends_when_its_condition_fails(pair: tuple[socket.socket, select.poll]) -> None:
    _, poller = pair
    assert busy_wait.until_readable(poller, 5.0, lambda: False) < 0.5


class Recording:
    """A policy that lets every thread busy-wait ``allowance`` seconds and counts the waits."""

    def __init__(self, allowance: float) -> None:
        self.given = allowance
        self.waits: list[float] = []

    def allowance(self) -> float:
        return self.given

    def spent(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def policy() -> Iterator[Recording]:
    recording = Recording(0.002)
    busy_wait.set_policy(recording)
    yield recording
    busy_wait.set_policy(None)


def _postgresql(db: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("the busy-waiting connection is psycopg's, for PostgreSQL")


def test_postgresql_engines_connect_with_the_busy_waiting_connection(db: str) -> None:
    _postgresql(db)
    with get_engine(db).connect() as connection:
        assert isinstance(connection.connection.driver_connection, busy_wait.BusyWaitingConnection)


def test_units_of_work_behave_as_before_while_the_connection_busy_waits(
    db: str, root: str, policy: Recording
) -> None:
    """A write (its BEGIN pipelined with its first statement, then COMMIT), a refused write that
    rolls back whole, a point read and a streamed read, each with its waits looked at first."""
    _postgresql(db)
    with transaction(db) as session:
        rse.add_rse(session, "SITE-A")
        scope.add_scope(session, "data", "root")
    with pytest.raises(Duplicate), transaction(db) as session:
        rse.add_rse(session, "SITE-B")
        rse.add_rse(session, "SITE-A")
    with transaction(db, read_only=True) as session:
        assert session.scalar(select_rows(RSE.rse).where(RSE.rse == "SITE-A")) == "SITE-A"
        streamed = session.execute(
            select_rows(RSE.rse).order_by(RSE.rse).execution_options(stream_results=True, yield_per=1)
        ).scalars()
        assert list(streamed) == ["SITE-A"], "SITE-B was rolled back with the failed unit"
    assert len(policy.waits) >= 6 and all(seconds < 1.0 for seconds in policy.waits), policy.waits


def test_without_a_policy_no_wait_is_looked_at_first(
    db: str, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgresql(db)
    looks: list[float] = []
    monkeypatch.setattr(busy_wait, "until_readable", lambda *args: looks.append(1.0) or 0.0)
    busy_wait.set_policy(None)
    with transaction(db) as session:
        session.execute(text("SELECT 1"))
    assert looks == []
