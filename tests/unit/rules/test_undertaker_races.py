"""A rule its owner locks while the undertaker buries the expired dataset it is on (PostgreSQL:
SQLite runs one writer at a time, so the interleaving cannot arise there).

The undertaker never takes a DID with a locked rule, but it read its rules without a lock: the
rule the owner was locking still looked unlocked, its removal waited for the owner's commit,
then deleted the rule just locked, with its locks.  The rules are now read again under their
row locks, which wait for the owner and see the rule locked: the dataset is left whole.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core import rule as rules
from datamgmt.core import rule_update, undertaker
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from tests.unit.rules.conftest import Catalogue, behind_a_lock
from tests.unit.rules.test_rule_removal_races import postgresql_only


def _bury_expired(session: Session) -> int:
    """One undertaker pass, as the daemon runs it."""
    return undertaker.bury(session, undertaker.claim_expired(session, 10))


def test_a_rule_locked_while_the_undertaker_buries_its_dataset_keeps_the_dataset(
    cat: Catalogue, session: Session, db: str
) -> None:
    postgresql_only(db)
    f = cat.files(1, on=("R1",))[0]
    ds = cat.dataset([f])
    (rule_id,) = rules.add_rule(session, [ds], "jdoe", 1, "R1")
    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name == ds["name"])
        .values(expired_at=utcnow() - timedelta(minutes=1))
    )
    session.commit()
    with transaction(db) as owner:
        rule_update.update_rule(owner, rule_id, {"locked": True})
        burial = behind_a_lock(owner, db, _bury_expired)
    assert burial() == 0, "the dataset went although its rule was locked"
    rule = cat.rule(rule_id)
    assert rule is not None and rule.locked
    assert cat.locks(rule_id) == {(f["scope"], f["name"]): {"R1"}}
    assert cat.replica(f, "R1").lock_cnt == 1
    assert session.scalar(select(DataIdentifier.name).where(DataIdentifier.name == ds["name"])) == ds["name"]
