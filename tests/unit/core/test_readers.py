"""Read-only units on PostgreSQL: plain SELECTs in autocommit, a transaction for whatever needs one.

Each test looks at the unit's own psycopg connection (its autocommit flag and the server's
transaction status), so it shows what went over the wire, not just what the session believes.
"""

from __future__ import annotations

import os

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Account, Scope
from datamgmt.core.db.session import transaction
from datamgmt.core.scope import add_scope

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql"),
    reason="DATAMGMT_TEST_DB_URL is unset: autocommit readers are PostgreSQL's",
)


def _status(session: Session) -> TransactionStatus:
    return session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]


def _autocommit(session: Session) -> bool:
    return bool(session.connection().connection.dbapi_connection.autocommit)  # type: ignore[union-attr]


def test_plain_selects_open_no_transaction(db: str, root: str) -> None:
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(Account.status).where(Account.account == root)) is not None
        assert session.scalar(select(func.count()).select_from(Scope)) == 0
        assert _autocommit(session)
        assert _status(session) == TransactionStatus.IDLE


def test_a_streamed_select_runs_in_a_transaction(db: str, root: str) -> None:
    """A server-side cursor (``yield_per``) exists only inside a transaction: without one,
    PostgreSQL refuses its DECLARE."""
    with transaction(db) as session:
        for index in range(5):
            add_scope(session, f"stream{index}", root)
    with transaction(db, read_only=True) as session:
        names = list(
            session.scalars(select(Scope.scope).order_by(Scope.scope).execution_options(yield_per=2))
        )
        assert names == [f"stream{index}" for index in range(5)]
        assert _status(session) == TransactionStatus.INTRANS
        connection = session.connection().connection.dbapi_connection
    assert connection.info.transaction_status == TransactionStatus.IDLE  # type: ignore[union-attr]


def test_a_locking_select_runs_in_a_transaction(db: str, root: str) -> None:
    with transaction(db, read_only=True) as session:
        session.execute(select(Account.account).where(Account.account == root).with_for_update())
        assert _status(session) == TransactionStatus.INTRANS


def test_a_write_in_a_read_only_unit_rolls_back_whole(db: str, root: str) -> None:
    """A unit marked read-only that writes anyway is still one transaction: a failure after its
    writes leaves none of them."""
    with pytest.raises(RuntimeError), transaction(db, read_only=True) as session:
        session.scalar(select(func.count()).select_from(Scope))
        add_scope(session, "first", root)
        session.flush()
        add_scope(session, "second", root)
        session.flush()
        raise RuntimeError("the unit fails after its writes")
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Scope)) == 0


def test_a_write_unit_after_a_reader_is_a_transaction(db: str, root: str) -> None:
    """The pool takes the reader's connection back with autocommit off, and a unit that writes
    on it is one transaction from its first statement (opened with it, core/db/plans.py)."""
    with transaction(db, read_only=True) as session:
        session.scalar(select(func.count()).select_from(Scope))
        connection = session.connection().connection.dbapi_connection
    assert connection.autocommit is False  # type: ignore[union-attr]
    with pytest.raises(RuntimeError), transaction(db) as session:
        add_scope(session, "undone", root)
        session.flush()
        assert _status(session) == TransactionStatus.INTRANS
        raise RuntimeError("roll it back")
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Scope)) == 0
