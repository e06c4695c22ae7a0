"""``transaction()`` when PostgreSQL terminates its backend: which failures may be run again at once.

Each test kills the unit's own backend with ``pg_terminate_backend`` at a chosen point (an
engine event, so the point is exact) and checks what the unit raises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, event, select, text
from sqlalchemy.engine import make_url

from datamgmt.core.db.models import Scope
from datamgmt.core.db.plans import one_write
from datamgmt.core.db.session import get_engine, transaction
from datamgmt.core.scope import add_scope
from datamgmt.exceptions import DatabaseUnavailable

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql"),
    reason="DATAMGMT_TEST_DB_URL is unset: terminating backends needs PostgreSQL",
)


@pytest.fixture
def unit_url(db: str) -> str:
    """The catalogue through an engine of its own, so killing its connections touches nothing else."""
    return (
        make_url(db)
        .update_query_dict({"application_name": "datamgmt-unit-drops"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def kill(db: str) -> Iterator[Callable[[Connection | int], None]]:
    """Terminate a connection's backend (or a backend pid) and wait until it is gone."""
    admin = create_engine(db, isolation_level="AUTOCOMMIT")

    def terminate(target: Connection | int) -> None:
        pid = target if isinstance(target, int) else backend_pid(target)
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while other.execute(
                text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).first():
                assert time.monotonic() < deadline
                time.sleep(0.02)

    yield terminate
    admin.dispose()


def backend_pid(conn: Connection) -> int:
    return conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]


def kill_at(url: str, identifier: str, kill: Callable[[Connection], None], when: Callable[..., bool]) -> None:
    """Terminate the backend once, when ``when`` first holds for an event of ``identifier``."""
    fired: list[bool] = []

    def handler(conn: Connection, *args: object) -> None:
        if not fired and when(*args):
            fired.append(True)
            kill(conn)

    event.listen(get_engine(url), identifier, handler)


def test_a_connection_killed_before_the_first_statement_is_retriable(unit_url, kill, root):
    kill_at(unit_url, "before_cursor_execute", kill, lambda *_: True)
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url) as session:
        session.scalar(select(Scope.scope))
    assert raised.value.retriable and raised.value.status == 503 and raised.value.retry_after


def test_a_read_killed_half_way_is_retriable(unit_url, kill, root):
    kill_at(unit_url, "before_cursor_execute", kill, lambda _cursor, statement, *_: "accounts" in statement)
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url, read_only=True) as session:
        session.scalar(select(Scope.scope))
        session.execute(text("SELECT count(*) FROM accounts"))
    assert raised.value.retriable


@pytest.fixture
def kill_at_the_scope_insert(kill: Callable[[Connection | int], None]) -> Iterator[None]:
    """Terminate the backend as the first ``INSERT INTO scopes`` is sent, through the session or
    on a bare cursor (core/db/point_writes.py), which no engine event sees."""
    original = psycopg.Cursor.execute
    fired: list[bool] = []

    def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and "INSERT INTO scopes" in str(query):
            fired.append(True)
            kill(cursor.connection.info.backend_pid)
        return original(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def test_a_write_killed_half_way_is_not_retriable_and_left_nothing(
    unit_url, kill_at_the_scope_insert, root, session
):
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url) as unit:
        unit.scalar(select(Scope.scope))  # half way: a statement ran (add_scope itself is one INSERT)
        add_scope(unit, "lost", "root")
    assert not raised.value.retriable and "nothing was changed" in raised.value.message
    assert session.get(Scope, "lost") is None


def test_a_write_killed_while_committing_has_an_unknown_outcome(unit_url, kill, root):
    kill_at(unit_url, "commit", kill, lambda *_: True)
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url) as unit:
        add_scope(unit, "maybe", "root")
    assert not raised.value.retriable and "may or may not" in raised.value.message


def test_a_one_write_killed_as_it_runs_has_an_unknown_outcome(unit_url, kill_at_the_scope_insert, root):
    """The one write of a unit that declared it commits as it runs: lost then, it may have."""
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url) as unit:
        one_write(unit)
        add_scope(unit, "perhaps", "root")
    assert not raised.value.retriable and "may or may not" in raised.value.message


def test_the_next_unit_after_a_drop_runs_on_a_fresh_connection(unit_url, kill, root):
    with pytest.raises(DatabaseUnavailable), transaction(unit_url) as unit:
        kill(unit.connection())
        unit.scalar(select(Scope.scope))
    with transaction(unit_url) as unit:
        add_scope(unit, "after", "root")
    with transaction(unit_url, read_only=True) as unit:
        assert unit.get(Scope, "after") is not None


def test_a_pooled_connection_killed_while_idle_is_replaced_at_checkout_without_an_error(unit_url, kill, root):
    # What pool_pre_ping did with a round trip per checkout, the checkout's poll(2) does for free.
    with transaction(unit_url) as unit:
        first = backend_pid(unit.connection())
    kill(first)
    with transaction(unit_url) as unit:
        add_scope(unit, "fresh", "root")
        second = backend_pid(unit.connection())
    assert second != first


def test_a_replacement_connection_killed_as_it_opens_is_unavailable_not_an_internal_error(
    unit_url, kill, root
):
    # SQLAlchemy gives up on a checkout after two failed checks with a bare InvalidRequestError,
    # which the API answered as a 500 when the database dropped both the idle connection and
    # the one opened to replace it (CI's database-drop fault run met exactly that).
    with transaction(unit_url) as unit:
        kill(backend_pid(unit.connection()))
    opened: list[int] = []

    def kill_once_opened(dbapi_connection: object, _record: object) -> None:
        if not opened:
            opened.append(dbapi_connection.info.backend_pid)  # type: ignore[attr-defined]
            kill(opened[0])

    event.listen(get_engine(unit_url), "connect", kill_once_opened)
    with pytest.raises(DatabaseUnavailable) as raised, transaction(unit_url) as unit:
        add_scope(unit, "twice", "root")
    assert raised.value.status == 503 and raised.value.retriable
    with transaction(unit_url) as unit:
        add_scope(unit, "twice", "root")
