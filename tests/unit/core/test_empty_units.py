"""A unit of work that ran nothing ends without a transaction (``core/db/session.transaction``):
a request answered from caches and point reads costs no empty BEGIN and COMMIT in SQLAlchemy."""

from __future__ import annotations

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.after_commit import on_next_commit
from datamgmt.core.db.models import Scope
from datamgmt.core.db.session import transaction


def _transactions_begun(db: str, work: object) -> int:
    begun: list[object] = []

    def count(_session: Session, transaction_: object) -> None:
        begun.append(transaction_)

    event.listen(Session, "after_transaction_create", count)
    try:
        with transaction(db, read_only=True) as session:
            work(session)  # type: ignore[operator]
    finally:
        event.remove(Session, "after_transaction_create", count)
    return len(begun)


def test_a_unit_that_ran_nothing_begins_no_transaction(db: str) -> None:
    assert _transactions_begun(db, lambda session: None) == 0


def test_a_unit_that_read_still_commits(db: str) -> None:
    assert (
        _transactions_begun(db, lambda session: session.scalar(select(func.count()).select_from(Scope))) >= 1
    )


def test_work_waiting_for_the_commit_runs_even_without_a_statement(db: str) -> None:
    ran: list[str] = []
    with transaction(db) as session:
        on_next_commit(session, "probe", lambda: ran.append("after commit"))
    assert ran == ["after commit"]


def test_an_object_added_is_flushed_and_committed(db: str, root: str) -> None:
    with transaction(db) as session:
        session.add(Scope(scope="kept", account=root))
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(Scope.scope).where(Scope.scope == "kept")) == "kept"


def test_work_waiting_for_the_commit_begins_no_empty_transaction(db: str) -> None:
    """An admin call's one write commits on a bare cursor and leaves only its cache renewal for
    the unit's end: that runs without SQLAlchemy beginning and committing an empty transaction."""
    ran: list[str] = []

    def wait_for_the_commit(session: Session) -> None:
        on_next_commit(session, "probe", lambda: ran.append("after commit"))

    assert _transactions_begun(db, wait_for_the_commit) == 0
    assert ran == ["after commit"]
