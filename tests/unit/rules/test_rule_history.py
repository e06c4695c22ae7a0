"""Rule history keeps one snapshot per change of a rule's state or counters, per rule."""

from __future__ import annotations

from sqlalchemy import func, select, update

from datamgmt.core import rule as rules
from datamgmt.core import rule_history
from datamgmt.core.db.models import Rule, RuleHistory


def _snapshots(session, rule_id: str) -> int:
    return session.scalar(select(func.count()).select_from(RuleHistory).where(RuleHistory.id == rule_id))


def test_an_unchanged_rule_gets_no_new_snapshot_whatever_other_rules_did(cat, session):
    # The "last snapshot" was the newest snapshot of any rule (an uncorrelated subquery): a rule
    # was snapshotted again whenever another rule's newer snapshot differed from it, so the history
    # grew on every settle and each call read the whole table.
    (first,) = rules.add_rule(session, cat.files(1, on=("R1",)), "jdoe", 1, "R1")
    (second,) = rules.add_rule(session, [cat.dataset(cat.files(2, on=("R1",)))], "jdoe", 1, "R1")
    session.execute(update(Rule).where(Rule.id == second).values(locks_ok_cnt=Rule.locks_ok_cnt + 5))
    rule_history.record(session, [second])
    before = _snapshots(session, first), _snapshots(session, second)
    rule_history.record(session, [first, second])
    rule_history.record(session, [first])
    assert (_snapshots(session, first), _snapshots(session, second)) == before
    session.execute(update(Rule).where(Rule.id == first).values(locks_ok_cnt=Rule.locks_ok_cnt + 1))
    rule_history.record(session, [first, second])
    assert (_snapshots(session, first), _snapshots(session, second)) == (before[0] + 1, before[1])
