"""The daemons' work queues: which rows of which leased table are due, in which order.

A queue is only a description; :mod:`datamgmt.core.claim` turns it into one claiming
statement.  The conditions live here, in ``core``, because they are SQL; daemons name a
queue and never write a query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Row
from sqlalchemy.orm import Session

from datamgmt.core import claim as claiming
from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Leased, Rule, UpdatedDID
from datamgmt.core.db.types import utcnow


@dataclass(frozen=True)
class WorkQueue:
    """Rows of ``model`` that are due now (``filters``), oldest first (``order_by``)."""

    name: str
    model: type[Leased]
    #: Called at claim time, so conditions on "now" are fresh each cycle.
    filters: Callable[[], Sequence[ColumnElement[bool]]]
    order_by: Callable[[], Sequence[Any]]
    #: Extra columns returned with each claimed key.
    columns: Callable[[], Sequence[Any]] = field(default=lambda: ())

    def claim(self, session: Session, worker: str, limit: int, lease_seconds: int) -> list[Row[Any]]:
        return claiming.claim(
            session,
            self.model,
            worker,
            filters=self.filters(),
            order_by=self.order_by(),
            limit=limit,
            lease_seconds=lease_seconds,
            columns=self.columns(),
        )


#: judge-evaluator: collections whose content changed under rules.
UPDATED_DIDS = WorkQueue(
    name="updated_dids",
    model=UpdatedDID,
    filters=lambda: (),
    order_by=lambda: (UpdatedDID.created_at, UpdatedDID.id),
    columns=lambda: (UpdatedDID.scope, UpdatedDID.name),
)

#: judge-repairer: rules in STUCK.
STUCK_RULES = WorkQueue(
    name="stuck_rules",
    model=Rule,
    filters=lambda: (Rule.state == RuleState.STUCK,),
    order_by=lambda: (Rule.updated_at,),
)

#: judge-cleaner: expired rules that are not locked and have no child rule (Rucio's get_expired_rules).
EXPIRED_RULES = WorkQueue(
    name="expired_rules",
    model=Rule,
    filters=lambda: (Rule.expires_at < utcnow(), Rule.locked.is_(False), Rule.child_rule_id.is_(None)),
    order_by=lambda: (Rule.expires_at,),
)

#: judge-injector: asynchronous rules waiting to be applied; a future created_at delays injection.
INJECT_RULES = WorkQueue(
    name="inject_rules",
    model=Rule,
    filters=lambda: (Rule.state == RuleState.INJECT, Rule.created_at <= utcnow()),
    order_by=lambda: (Rule.created_at,),
)
