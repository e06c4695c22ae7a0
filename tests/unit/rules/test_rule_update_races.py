"""An owner changing a rule while the judge-cleaner removes it (found by the fault campaign,
where users cut the lifetime of rules the cleaner was already taking away).

* ``update_rule`` on a rule whose deletion commits meanwhile answered 500 (the ORM's
  ``StaleDataError`` on an UPDATE that matched no row); it is ``RuleNotFound`` now, because the
  rule is read under a row lock and a deleted row is seen as gone.
* The cleaner deleted a rule whose owner had extended it after the cleaner claimed it; it now
  re-checks, under the row lock, that the rule is still expired.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from datamgmt.core import rule_update
from datamgmt.core.db.models import Rule
from datamgmt.core.db.session import transaction
from datamgmt.daemons.judge.cleaner import Cleaner
from datamgmt.exceptions import RuleNotFound
from tests.unit.api.test_rule_soft_delete import _rule


def test_updating_a_rule_deleted_meanwhile_is_rule_not_found(session: Session, root: str, db: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot arise")
    rule_id = _rule(session)
    session.close()
    with transaction(db) as cleaner:
        rule_update.delete_rule(cleaner, rule_id)  # uncommitted: the row is locked and deleted
        outcome = behind_a_lock(
            cleaner, db, lambda own: rule_update.update_rule(own, rule_id, {"lifetime": 0})
        )
    assert isinstance(outcome(), RuleNotFound), outcome()


def behind_a_lock(holder: Session, db: str, work: Callable[[Session], object]) -> Callable[[], object]:
    """Start ``work`` in a transaction of its own on another thread and return once it waits on
    a lock (one ``holder``'s open transaction holds); the caller then ends that transaction.
    Returns a function that waits for ``work`` and gives what it returned, or what it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            with transaction(db) as own:
                outcome.append(work(own))
        except Exception as exc:  # the test reports what escaped
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for_lock_wait(holder)

    def result() -> object:
        thread.join(timeout=30)
        assert len(outcome) == 1, "the blocked work did not end"
        return outcome[0]

    return result


def _wait_for_lock_wait(session: Session) -> None:
    """Until another backend waits on a lock (the owner's transaction on the deleted row)."""
    import time

    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow to start the thread
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    with session.get_bind().connect() as probe:
        while not probe.execute(query).scalar():
            assert time.monotonic() < deadline, "the owner's update never waited on the row"
            time.sleep(0.05)


class ExtendedAfterTheClaim(Cleaner):
    """The cleaner, with the owner extending the rule between the claim and the deletion."""

    rule_id = ""

    def items(self, rows: Sequence[Row[Any]]):  # type: ignore[no-untyped-def]
        with transaction(self.db_url) as other:
            rule_update.update_rule(other, self.rule_id, {"lifetime": None})
        return super().items(rows)


def test_the_cleaner_keeps_a_rule_extended_after_its_claim(session: Session, root: str, db: str) -> None:
    rule_id = _rule(session, lifetime=0)
    session.rollback()
    cleaner = ExtendedAfterTheClaim(db_url=db)
    cleaner.rule_id = rule_id
    cleaner.run_once(10)
    session.expire_all()
    kept = session.get(Rule, rule_id)
    assert kept is not None and kept.expires_at is None, (
        "the cleaner removed a rule its owner had just extended"
    )
    session.rollback()
    assert Cleaner(db_url=db).run_once(10) == 0
