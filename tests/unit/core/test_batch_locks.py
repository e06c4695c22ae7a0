"""A batch picked by a daemon (``core/workqueue.LockedBatch``) does not hold off rows that only
refer to the picked ones: the pick is ``FOR NO KEY UPDATE`` on PostgreSQL, which foreign-key
checks (``FOR KEY SHARE``) pass.  Under ``FOR UPDATE`` two transmogrifiers deadlocked, each
creating locks on files that the other had picked, and an attach waited for the batch."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from datamgmt.core import did, did_content, replica, rse, scope
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.session import session_factory, transaction
from datamgmt.core.workqueue import NEW_DIDS


def test_a_picked_file_can_still_be_attached_meanwhile(db: str, root: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; row locks are PostgreSQL's")
    with transaction(db) as session:
        scope.add_scope(session, "data", root)
        rse.add_rse(session, "SITE")
        replica.add_replicas(
            session, "SITE", [{"scope": "data", "name": "f", "bytes": 1, "adler32": "0000000a"}], root
        )
        did.add_collection(session, "data", "ds", "DATASET", root)
        session.execute(update(DataIdentifier).where(DataIdentifier.name == "ds").values(is_new=False))
    picker = session_factory(db)()
    try:
        picked = NEW_DIDS.pick(picker, 10)
        assert [(row.scope, row.name) for row in picked] == [("data", "f")]
        with transaction(db) as session:
            session.execute(text("SET LOCAL lock_timeout = '3s'"))
            assert did_content.attach(session, "data", "ds", [{"scope": "data", "name": "f"}]) == 1
    finally:
        picker.rollback()
        picker.close()
