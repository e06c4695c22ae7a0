"""Rule history: a snapshot of a rule each time its state or lock counters change.

:func:`record` is called where rules are created and wherever their counters settle
(:func:`datamgmt.core.lock_state.settle_rules`), for any number of rules with one
``INSERT … SELECT`` per chunk, and writes a row only for rules whose state or counters differ
from their last snapshot, so calling it twice, or for a rule that did not change, adds
nothing.  The rows outlive the rule: ``GET /rules/<scope>:<name>/history`` shows rules
long deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from datamgmt.core.db.models import Rule, RuleHistory
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import chunks

_COPIED = (
    "id",
    "account",
    "scope",
    "name",
    "did_type",
    "state",
    "error",
    "rse_expression",
    "copies",
    "locks_ok_cnt",
    "locks_replicating_cnt",
    "locks_stuck_cnt",
    "created_at",
)
_COMPARED = ("state", "locks_ok_cnt", "locks_replicating_cnt", "locks_stuck_cnt")


def record(session: Session, rule_ids: Sequence[str]) -> None:
    """Snapshot the rules ``rule_ids`` whose state or counters changed since their last snapshot."""
    if not rule_ids:
        return
    session.flush()
    last, snapshots = aliased(RuleHistory), aliased(RuleHistory)
    # Correlated explicitly: SQLAlchemy only auto-correlates to the directly enclosing SELECT (the
    # EXISTS below, which has no ``rules``), and would otherwise take the newest snapshot of any rule.
    newest = (
        select(func.max(snapshots.history_id))
        .where(snapshots.id == Rule.id)
        .correlate(Rule)
        .scalar_subquery()
    )
    unchanged = (
        select(literal(1))
        .where(
            last.history_id == newest,
            *(getattr(last, column) == getattr(Rule, column) for column in _COMPARED),
        )
        .exists()
    )
    now = utcnow()
    for part in chunks(list(dict.fromkeys(rule_ids))):
        session.execute(
            insert(RuleHistory).from_select(
                [*_COPIED, "updated_at"],
                select(
                    *(getattr(Rule, column) for column in _COPIED), literal(now, RuleHistory.updated_at.type)
                ).where(Rule.id.in_(part), ~unchanged),
            )
        )


def rule_history(session: Session, rule_id: str) -> Iterator[dict[str, Any]]:
    """A rule's snapshots, oldest first, with Rucio's fields."""
    query = (
        select(
            RuleHistory.updated_at,
            RuleHistory.state,
            RuleHistory.locks_ok_cnt,
            RuleHistory.locks_stuck_cnt,
            RuleHistory.locks_replicating_cnt,
        )
        .where(RuleHistory.id == rule_id)
        .order_by(RuleHistory.history_id)
    )
    for row in session.execute(query.execution_options(yield_per=1000)):
        yield {
            "updated_at": row.updated_at,
            "state": row.state.name,
            "locks_ok_cnt": row.locks_ok_cnt,
            "locks_stuck_cnt": row.locks_stuck_cnt,
            "locks_replicating_cnt": row.locks_replicating_cnt,
        }


def did_rule_history(session: Session, scope: str, name: str) -> Iterator[dict[str, Any]]:
    """The snapshots of every rule there ever was on a DID, by rule creation then time."""
    query = (
        select(RuleHistory)
        .where(RuleHistory.scope == scope, RuleHistory.name == name)
        .order_by(RuleHistory.created_at, RuleHistory.history_id)
    )
    for row in session.scalars(query.execution_options(yield_per=1000)):
        yield {
            "rule_id": row.id,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "rse_expression": row.rse_expression,
            "state": row.state.name,
            "account": row.account,
            "locks_ok_cnt": row.locks_ok_cnt,
            "locks_stuck_cnt": row.locks_stuck_cnt,
            "locks_replicating_cnt": row.locks_replicating_cnt,
        }
