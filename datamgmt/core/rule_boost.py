"""Two rule updates that change how a rule's transfers are retried and read, not what it holds.

``boost_rule`` is Rucio's answer to "my rule is STUCK, the cause is fixed, retry now": Rucio
backdates the rule's (and its STUCK locks') ``updated_at`` by a day so that the repairer takes
the rule first and at once.  Here the repairer holds a rule it repaired (still STUCK) for
``[judge] repair_backoff_seconds`` through the lease columns, so a boost also lifts that hold;
a lease a repairer holds *now* (``claimed_by`` set) is left alone, since that rule is being
repaired this moment.  The repairer then retries the STUCK locks where they stand (new
transfer requests) or places them again.

``source_replica_expression`` restricts the RSEs transfers may read from.  The conveyor reads
it from the rule each time it plans a batch (:func:`datamgmt.core.transfer.plan_transfers`),
and the repairer when it retries, so a change applies to every transfer not yet submitted.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Rule
from datamgmt.core.expression import rse_ids_for
from datamgmt.exceptions import InvalidRSEExpression, InvalidSourceReplicaExpression

#: How far a boost moves a rule back in the repairer's queue (ordered by ``updated_at``), as Rucio.
BOOST = timedelta(days=1)


def boost_rule(session: Session, rule: Rule) -> None:
    """Make a STUCK rule the repairer's next item, due at once.

    Other states have nothing waiting for a retry and are left as they are (Rucio accepts the
    option on any rule too)."""
    if rule.state != RuleState.STUCK:
        return
    session.flush()  # the other changes first: their own write would set updated_at to now again
    session.execute(
        update(Rule)
        .where(Rule.id == rule.id)
        .values(
            updated_at=rule.updated_at - BOOST,  # the caller holds the row: no race on the old value
            claimed_until=case((Rule.claimed_by.is_(None), None), else_=Rule.claimed_until),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(rule)


def source_expression(session: Session, value: object) -> str | None:
    """The new ``source_replica_expression``: None (or empty) lifts the restriction; an
    expression must name at least one RSE, or transfers would have no source at all."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidSourceReplicaExpression("source_replica_expression must be a string or null")
    try:
        rse_ids_for(session, value)
    except InvalidRSEExpression as exc:
        raise InvalidSourceReplicaExpression(f"{validation.shown(value)}: {exc.message}") from exc
    return value
