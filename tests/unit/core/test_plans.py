"""On PostgreSQL, statements with array parameters are planned per call, never prepared
(``core/db/plans.py``): a generic plan of a 500-key attach joined every key to every DID row on
a catalogue not analyzed yet (190 ms a call instead of 8 ms from the sixth call on)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from datamgmt.core import did, scope
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.session import is_postgresql


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
