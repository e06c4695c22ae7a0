"""How statements reach PostgreSQL (``core/db/plans.py``): statements with array parameters are
planned per call, never prepared (a generic plan of a 500-key attach joined every key to every
DID row on a catalogue not analyzed yet: 190 ms a call instead of 8 ms from the sixth call on),
and a unit that writes sends its ``BEGIN`` with its first statement."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import pq
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from datamgmt.core import did, rse, scope
from datamgmt.core.db.models import RSE, DataIdentifier, Scope
from datamgmt.core.db.session import is_postgresql, transaction
from datamgmt.exceptions import Duplicate


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


def test_a_unit_that_writes_sends_its_begin_with_its_first_statement(
    db: str, root: str, tmp_path: Path
) -> None:
    """``BEGIN`` and the first statement go out before any answer comes back (one round trip);
    psycopg on its own waited for ``BEGIN``'s answer first.  The unit is still one transaction."""
    if not db.startswith("postgresql"):
        pytest.skip("PostgreSQL's wire protocol")
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        with transaction(db) as session:
            raw = session.connection().connection.dbapi_connection
            raw.pgconn.trace(out.fileno())
            raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            rse.add_rse(session, "SITE-A")
            assert raw.info.transaction_status == pq.TransactionStatus.INTRANS
        raw.pgconn.untrace()  # after the unit's COMMIT
    lines = trace.read_text().splitlines()  # F: a message sent, B: one received
    first_answer = next(i for i, line in enumerate(lines) if line.startswith("B"))
    sent_before = " ".join(lines[:first_answer])
    assert '"BEGIN"' in sent_before and "INSERT INTO rses" in sent_before, lines
    assert any('"COMMIT"' in line for line in lines), lines
    with transaction(db, read_only=True) as session:
        assert session.scalar(select(RSE.rse).where(RSE.rse == "SITE-A")) == "SITE-A"


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
