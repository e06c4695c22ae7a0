"""Rule history keeps one snapshot per change of a rule's state or counters, per rule."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from datamgmt.core import rule as rules
from datamgmt.core import rule_history
from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Rule, RuleHistory
from datamgmt.core.replica import add_replicas
from tests.invariants import check_invariants


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


def _history_checks(session: Session, work: Callable[[], object]) -> int:
    """How often ``work`` settled a rule: each settle ends in one ``INSERT … SELECT`` into the
    history (which inserts only what changed), so this counts settles however many rows."""
    engine = session.get_bind()
    statements: list[str] = []

    def listener(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return sum(statement.lstrip().startswith("INSERT INTO rules_history") for statement in statements)


def test_applying_a_rule_settles_it_once(cat, session):
    # create_locks settled the rule, then apply_rule settled it again: a second reload of the
    # rule and a second history check on every rule applied, in the request or in the injector.
    # The other check is the rule's first snapshot, when it is created.
    dataset = cat.dataset(cat.files(3, on=("R1",)))
    assert _history_checks(session, lambda: rules.add_rule(session, [dataset], "jdoe", 1, "R1")) == 2
    assert session.scalar(select(Rule.state)) == RuleState.OK


def test_repairing_a_rule_whose_locks_stay_settles_it_once(cat, session):
    # retry_stuck_locks settled the rule, then repair_rule settled it again.
    (stuck,) = cat.files(1, on=())
    (rule_id,) = rules.add_rule(session, [stuck], "jdoe", 1, "R1")
    assert session.get(Rule, rule_id).state == RuleState.STUCK
    add_replicas(session, "R3", [{**stuck, "bytes": 100, "adler32": "0cc737eb"}], "jdoe")
    assert _history_checks(session, lambda: rules.repair_rule(session, rule_id)) == 1
    assert session.get(Rule, rule_id).state == RuleState.REPLICATING
    check_invariants(session)
