"""How statements reach PostgreSQL (``core/db/plans.py``): statements with array parameters are
planned per call, never prepared (a generic plan of a 500-key attach joined every key to every
DID row on a catalogue not analyzed yet: 190 ms a call instead of 8 ms from the sixth call on),
a unit sends the ``BEGIN`` that opens its transaction with the statement that needs it, and a
unit declared to make one write commits it as it runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import pq
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from datamgmt.core import did, rse, scope
from datamgmt.core.db.models import RSE, Account, DataIdentifier, RSEAttribute, Scope
from datamgmt.core.db.plans import SecondWrite, one_write
from datamgmt.core.db.session import get_engine, is_postgresql, transaction
from datamgmt.exceptions import Duplicate, RSENotFound


def test_array_statements_are_never_prepared_and_the_others_still_are(session: Session, root: str) -> None:
    if not is_postgresql(session):
        pytest.skip("prepared statements and generic plans are PostgreSQL's")
    scope.add_scope(session, "data", "root")
    did.add_collection(session, "data", "ds", "DATASET", "root")
    keys = [("data", "ds")] + [("data", f"absent{i}") for i in range(499)]
    for _ in range(8):  # psycopg prepares a statement on its fifth run
        assert list(did.existing_dids(session, keys)) == [("data", "ds")]
        assert session.scalar(select(DataIdentifier.name).where(DataIdentifier.name == "ds")) == "ds"
    prepared = session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert not [s for s in prepared if "unnest" in s], prepared
    assert [s for s in prepared if "dids.name = $1" in s], "plain statements are still prepared"


def _traced(
    db: str, tmp_path: Path, read_only: bool, work: Callable[[Session], object], declared: bool = False
) -> list[str]:
    """The libpq trace of a unit of work that runs ``work``, through its ``COMMIT`` (``F``: a
    message sent, ``B``: one received); the unit is in a transaction once ``work`` has run, but
    where it ``declared`` it makes one write.  Statements are not prepared meanwhile, so that
    each is sent with its text: the pooled connection may have prepared them (``BEGIN`` too)
    in earlier tests."""
    trace = tmp_path / "libpq.trace"
    traced: list[tuple[Any, Any]] = []  # the connection and its own prepare threshold
    try:
        with trace.open("w") as out, transaction(db, read_only=read_only) as session:
            if declared:
                one_write(session)
            raw = session.connection().connection.dbapi_connection
            traced.append((raw, raw.prepare_threshold))
            raw.prepare_threshold = None
            raw.pgconn.trace(out.fileno())
            raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            work(session)
            expected = pq.TransactionStatus.IDLE if declared else pq.TransactionStatus.INTRANS
            assert raw.info.transaction_status == expected
    finally:  # after the unit's COMMIT; the pooled connection serves later tests as before
        for raw, threshold in traced:
            raw.pgconn.untrace()
            raw.prepare_threshold = threshold
    return trace.read_text().splitlines()


def _sent_before_the_first_answer(lines: list[str]) -> str:
    return " ".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("B"))])


def test_a_unit_that_writes_sends_its_begin_with_its_first_statement(
    db: str, root: str, tmp_path: Path
) -> None:
    """``BEGIN`` and the first statement go out before any answer comes back (one round trip);
    psycopg on its own waited for ``BEGIN``'s answer first.  The unit is still one transaction."""
    if not db.startswith("postgresql"):
        pytest.skip("PostgreSQL's wire protocol")
    lines = _traced(db, tmp_path, False, lambda session: rse.add_rse(session, "SITE-A"))
    sent_before = _sent_before_the_first_answer(lines)
    assert '"BEGIN"' in sent_before and "INSERT INTO rses" in sent_before, lines
    assert any('"COMMIT"' in line for line in lines), lines
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(RSE.rse).where(RSE.rse == "SITE-A")) == "SITE-A"


def test_a_reader_sends_the_begin_of_a_locking_select_with_it(db: str, root: str, tmp_path: Path) -> None:
    """A read-only unit runs plain SELECTs without a transaction; the first statement that needs
    one (here ``FOR UPDATE``) opens it, in the same round trip as a writer's first statement."""
    if not db.startswith("postgresql"):
        pytest.skip("PostgreSQL's wire protocol")

    def lock_root(session: Session) -> None:
        assert session.scalar(select(Scope.scope)) is None  # plain: no transaction yet
        session.execute(select(Account.account).where(Account.account == root).with_for_update())

    lines = _traced(db, tmp_path, True, lock_root)
    plain_answered = next(i for i, line in enumerate(lines) if "ReadyForQuery" in line)
    after_plain = lines[plain_answered + 1 :]
    assert '"BEGIN"' not in " ".join(lines[:plain_answered]), lines
    sent_before = _sent_before_the_first_answer(after_plain)
    assert '"BEGIN"' in sent_before and "FOR UPDATE" in sent_before, lines
    assert any('"COMMIT"' in line for line in lines), lines


def test_a_unit_whose_first_statement_fails_rolls_back_and_leaves_a_usable_connection(
    db: str, root: str
) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("PostgreSQL's wire protocol")
    with pytest.raises(Duplicate), transaction(db) as session:
        session.execute(text("INSERT INTO accounts SELECT * FROM accounts WHERE account = 'root'"))
    with transaction(db) as session:
        scope.add_scope(session, "data", "root")
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(Scope.scope).where(Scope.scope == "data")) == "data"


def _attributes(db: str, name: str) -> dict[str, str]:
    """The RSE's attributes as another unit of work sees them."""
    with transaction(db, read_only=True) as session:
        rows = session.execute(
            select(RSEAttribute.key, RSEAttribute.value).join(RSE).where(RSE.rse == name)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_a_unit_of_one_write_commits_it_as_it_runs_it(db: str, root: str, tmp_path: Path) -> None:
    """No ``BEGIN`` and no ``COMMIT`` go out: the write is a transaction of its own, committed
    (other units see it) before the block ends; the plain SELECTs beside it need none either."""
    if not db.startswith("postgresql"):
        pytest.skip("PostgreSQL's wire protocol")
    with transaction(db) as session:
        rse.add_rse(session, "ONE-A")
    seen_inside: list[dict[str, str]] = []

    def write_once(session: Session) -> None:
        rse.get_rse_id(session, "ONE-A")
        rse.add_rse_attribute(session, "ONE-A", "tier", 1)
        seen_inside.append(_attributes(db, "ONE-A"))
        rse.get_rse_id(session, "ONE-A")  # a read after the write is still a plain read

    lines = _traced(db, tmp_path, False, write_once, declared=True)
    assert not [line for line in lines if '"BEGIN"' in line or '"COMMIT"' in line], lines
    assert seen_inside == [{"ONE-A": "true", "tier": "1"}]
    with pytest.raises(RSENotFound), transaction(db) as session:  # the write found nothing: nothing written
        one_write(session)
        rse.add_rse_attribute(session, "NONE-A", "tier", 1)


def test_a_second_write_of_a_one_write_unit_is_refused_before_it_is_sent(db: str, root: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("only PostgreSQL commits the one write as it runs")
    with transaction(db) as session:
        rse.add_rse(session, "ONE-B")
    with pytest.raises(SecondWrite), transaction(db) as session:
        one_write(session)
        rse.add_rse_attribute(session, "ONE-B", "first", 1)
        rse.add_rse_attribute(session, "ONE-B", "second", 2)
    assert _attributes(db, "ONE-B") == {"ONE-B": "true", "first": "1"}


def test_a_one_write_unit_whose_transaction_is_open_stays_one_transaction(db: str, root: str) -> None:
    """Declared after the unit wrote (or locked) already, the write joins that transaction and
    rolls back with it."""
    with pytest.raises(ZeroDivisionError), transaction(db) as session:
        rse.add_rse(session, "ONE-C")
        one_write(session)
        rse.add_rse_attribute(session, "ONE-C", "tier", 1)
        _ = 1 / 0
    assert _attributes(db, "ONE-C") == {}


def test_a_connection_a_one_write_unit_used_does_not_carry_its_declaration(db: str, root: str) -> None:
    """The pooled connection keeps a reference to the unit's progress; a later user of it that
    is not a unit of work (a raw connection on a unit's bind) writes in a transaction of its own."""
    if not db.startswith("postgresql"):
        pytest.skip("only PostgreSQL commits the one write as it runs")
    get_engine(db).dispose()  # one pooled connection: the raw one below gets the unit's
    with transaction(db) as session:
        one_write(session)
        scope.add_scope(session, "declared", "root")
        bind = session.get_bind()
    with bind.connect() as raw:
        raw.execute(
            text(
                "INSERT INTO scopes (scope, account, is_default, status, created_at, updated_at)"
                " SELECT 'undone', account, is_default, status, created_at, updated_at FROM scopes"
            )
        )
        raw.rollback()
    with transaction(db, read_only=True) as session:
        assert session.scalars(select(Scope.scope).order_by(Scope.scope)).all() == ["declared"]
