"""The one write of a unit that declares it, on a bare cursor (``core/db/point_writes.py``): sent
without the session's connection, committed as it runs, its column defaults filled in, and every
failure still the session's failure."""

from __future__ import annotations

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import select

from datamgmt.core import rse, scope
from datamgmt.core.db.models import Scope
from datamgmt.core.db.plans import one_write
from datamgmt.core.db.session import get_engine, transaction
from datamgmt.exceptions import InputValidationError
from tests.statements import captured, sent_to_postgresql


@pytest.fixture
def postgresql(db: str) -> str:
    if not db.startswith("postgresql"):
        pytest.skip("only PostgreSQL commits a unit's one write as it runs")
    return db


def _attributes(db: str, name: str) -> dict[str, object]:
    with transaction(db, read_only=True) as session:
        return rse.list_rse_attributes(session, name)


def _write(_cursor: object, statement: str, _parameters: object) -> str | None:
    return None if statement.startswith("SELECT") else statement


def test_the_one_write_skips_the_session_and_commits_as_it_runs(postgresql: str, root: str) -> None:
    db = postgresql
    with transaction(db) as session:
        rse.add_rse(session, "BARE-A")
    seen_inside: list[dict[str, object]] = []
    with (
        captured(get_engine(db), _write) as through_sqlalchemy,
        sent_to_postgresql(
            lambda cursor, statement, _: (statement, cursor.connection.info.transaction_status)
        ) as sent,
        transaction(db) as session,
    ):
        one_write(session)
        rse.add_rse_attribute(session, "BARE-A", "tier", 1)
        assert not session.in_transaction(), "the write used the session's connection"
        seen_inside.append(_attributes(db, "BARE-A"))  # committed before the unit ends
    assert through_sqlalchemy == [], through_sqlalchemy
    writes = [(statement, status) for statement, status in sent if not statement.startswith("SELECT")]
    assert len(writes) == 1 and writes[0][0].startswith("INSERT INTO rse_attr_map"), writes
    assert writes[0][1] == TransactionStatus.IDLE
    assert seen_inside == [{"BARE-A": True, "tier": "1"}]


def test_a_column_the_write_leaves_out_takes_its_default(postgresql: str, root: str) -> None:
    """``scopes.is_default`` is not in the statement's values: SQLAlchemy's execution context
    used to fill it in, the point write does it itself."""
    with transaction(postgresql) as session:
        one_write(session)
        scope.add_scope(session, "bare", "root")
    with transaction(postgresql, read_only=True) as session:
        row = session.execute(select(Scope.is_default, Scope.account).where(Scope.scope == "bare")).one()
    assert tuple(row) == (False, "root")


def test_a_value_refused_on_the_bare_cursor_is_bad_input_and_writes_nothing(
    postgresql: str, root: str
) -> None:
    with transaction(postgresql) as session:
        rse.add_rse(session, "BARE-B")
    with pytest.raises(InputValidationError), transaction(postgresql) as session:
        one_write(session)
        rse.add_rse_attribute(session, "BARE-B", "tier", "a\x00b")  # PostgreSQL's text takes no NUL
    assert _attributes(postgresql, "BARE-B") == {"BARE-B": True}
    with transaction(postgresql) as session:  # the connection went back to the pool usable
        one_write(session)
        rse.add_rse_attribute(session, "BARE-B", "tier", "ok")
    assert _attributes(postgresql, "BARE-B") == {"BARE-B": True, "tier": "ok"}
