"""Account usage rows are locked in one order by every writer (found by the kill -9 campaign).

Two rule changes on the same account and two RSEs upserted their usage rows in the order their
deltas came, so one could hold DST1 waiting on DST2 while the other held DST2 waiting on DST1:
PostgreSQL's deadlock detector then killed one, five times in a row for one ``POST /rules``,
which failed after the client's retries.  Taken in key order, one simply waits for the other.

Shown on PostgreSQL without relying on timing: while another transaction holds the usage row
of ``R2``, ``change_usage({R2, R1})`` must already hold ``R1`` (it locks ``R1`` first).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from datamgmt.core.db.session import transaction
from datamgmt.core.quota import change_usage
from datamgmt.core.rse import add_rse

ROW = "SELECT 1 FROM account_usage WHERE account = 'root' AND rse_id = :rse FOR UPDATE NOWAIT"


@pytest.mark.corrupts_catalogue("account_usage")  # usage written without locks, to have rows to lock
def test_usage_rows_are_locked_in_key_order(session: Session, root: str, db: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    r1, r2 = sorted((add_rse(session, "R1"), add_rse(session, "R2")))
    change_usage(session, {("root", r1): (1, 1), ("root", r2): (1, 1)})
    session.commit()
    session.close()
    engine = create_engine(db)
    try:
        with engine.connect() as holder:
            holder.execute(text(ROW), {"rse": r2})  # R2 is taken
            writer = threading.Thread(target=_change, args=(db, {("root", r2): (1, 1), ("root", r1): (1, 1)}))
            writer.start()
            time.sleep(1.0)  # the writer is now blocked on R2, holding whatever it took before
            with engine.connect() as probe:
                with pytest.raises(OperationalError, match="could not obtain lock"):
                    probe.execute(text(ROW), {"rse": r1})
                probe.rollback()
            holder.rollback()
            writer.join(timeout=30)
    finally:
        engine.dispose()


def _change(db: str, deltas: dict[tuple[str, str], tuple[int, int]]) -> None:
    with transaction(db) as other:
        change_usage(other, deltas)
