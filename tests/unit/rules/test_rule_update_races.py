"""An owner changing a rule while the judge-cleaner removes it (found by the fault campaign,
where users cut the lifetime of rules the cleaner was already taking away).

* ``update_rule`` on a rule whose deletion commits meanwhile answered 500 (the ORM's
  ``StaleDataError`` on an UPDATE that matched no row); it is ``RuleNotFound`` now, because the
  rule is read under a row lock and a deleted row is seen as gone.
* The cleaner deleted a rule whose owner had extended it after the cleaner claimed it; it now
  re-checks, under the row lock, that the rule is still expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from datamgmt.core import rule_update
from datamgmt.core.db.models import Rule
from datamgmt.core.db.session import transaction
from datamgmt.daemons.judge.cleaner import Cleaner
from datamgmt.exceptions import RuleNotFound
from tests.unit.api.test_rule_soft_delete import _rule
from tests.unit.rules.conftest import behind_a_lock


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
