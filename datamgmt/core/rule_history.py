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

from sqlalchemy import Insert, bindparam, func, insert, literal, select
from sqlalchemy.orm import Session

from datamgmt.core.db import listing
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


def _snapshot_statement() -> Insert:
    """The ``INSERT … SELECT`` of :func:`record`, built once: building it per call (ORM aliases
    adapted anew each time) cost the judge-repairer more CPU than the rest of a rule's repair."""
    rules, history = Rule.__table__, RuleHistory.__table__
    last, snapshots = history.alias("last_snapshot"), history.alias("snapshots")
    # Correlated explicitly: SQLAlchemy only auto-correlates to the directly enclosing SELECT (the
    # EXISTS below, which has no ``rules``), and would otherwise take the newest snapshot of any rule.
    newest = (
        select(func.max(snapshots.c.history_id))
        .where(snapshots.c.id == rules.c.id)
        .correlate(rules)
        .scalar_subquery()
    )
    unchanged = (
        select(literal(1))
        .where(last.c.history_id == newest, *(last.c[column] == rules.c[column] for column in _COMPARED))
        .exists()
    )
    return insert(history).from_select(
        [*_COPIED, "updated_at"],
        select(
            *(rules.c[column] for column in _COPIED), bindparam("now", type_=history.c.updated_at.type)
        ).where(rules.c.id.in_(bindparam("ids", expanding=True)), ~unchanged),
    )


_SNAPSHOT = _snapshot_statement()


def record(session: Session, rule_ids: Sequence[str]) -> None:
    """Snapshot the rules ``rule_ids`` whose state or counters changed since their last snapshot."""
    if not rule_ids:
        return
    session.flush()
    now = utcnow()
    for part in chunks(list(dict.fromkeys(rule_ids))):
        session.execute(_SNAPSHOT, {"ids": part, "now": now})


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
    for row in listing.rows(session, query):
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
    for row in listing.scalars(session, query):
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
