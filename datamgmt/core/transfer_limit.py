"""Transfer limits (Rucio's ``/requests/transfer_limits``): caps on active transfers per RSE.

A limit names an RSE expression, optionally an activity, and a direction, and the conveyor
honours its ``max_transfers`` through :func:`limit_caps`: each RSE the expression selects is
the destination (DESTINATION) or the source (SOURCE) of at most that many requests SUBMITTING
or SUBMITTED (of that activity when one is named).  DESTINATION limits are applied by the
throttler (:func:`datamgmt.core.transfer.throttle`) before sources are ranked; SOURCE limits
when a source is chosen (:func:`datamgmt.core.transfer.plan_transfers`): a full source is
passed over for the next one, and a request whose every source is full waits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import TransferLimit
from datamgmt.core.db.rows import rowcount
from datamgmt.core.expression import rse_ids_for
from datamgmt.exceptions import InputValidationError, InvalidRSEExpression

DIRECTIONS = ("DESTINATION", "SOURCE")
_NUMBERS = ("max_transfers", "volume", "deadline", "transfers", "waitings")


def _direction(value: Any) -> str:
    text = str(value or "DESTINATION").upper()
    if text not in DIRECTIONS:
        raise InputValidationError("direction must be DESTINATION or SOURCE")
    return text


def _selector(rse_expression: Any, activity: Any, direction: Any) -> tuple[Any, ...]:
    if not isinstance(rse_expression, str) or not rse_expression:
        raise InputValidationError("rse_expression must be a non-empty string")
    if activity is not None and not isinstance(activity, str):
        raise InputValidationError("activity must be a string")
    return (
        TransferLimit.rse_expression == rse_expression,
        TransferLimit.activity.is_(None) if activity is None else TransferLimit.activity == activity,
        TransferLimit.direction == _direction(direction),
    )


def set_transfer_limit(
    session: Session,
    rse_expression: str,
    activity: str | None = None,
    direction: str = "DESTINATION",
    **values: Any,
) -> str:
    """Create or update the limit for (expression, activity, direction); returns its id.
    The expression must select at least one RSE now (InvalidRSEExpression otherwise)."""
    selector = _selector(rse_expression, activity, direction)
    rse_ids_for(session, rse_expression)
    for key in _NUMBERS:
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InputValidationError(f"{key} must be a non-negative integer")
    strategy = values.get("strategy")
    if strategy is not None and not isinstance(strategy, str):
        raise InputValidationError("strategy must be a string")
    row = session.scalars(select(TransferLimit).where(*selector)).first()
    if row is None:
        row = TransferLimit(rse_expression=rse_expression, activity=activity, direction=_direction(direction))
        session.add(row)
    for key in (*_NUMBERS, "strategy"):
        if key in values:
            setattr(row, key, values[key])
    session.flush()
    return row.id


def delete_transfer_limit(
    session: Session, rse_expression: str, activity: str | None = None, direction: str = "DESTINATION"
) -> int:
    """Remove the limit for (expression, activity, direction); returns how many were removed."""
    return rowcount(
        session.execute(delete(TransferLimit).where(*_selector(rse_expression, activity, direction)))
    )


def list_transfer_limits(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(TransferLimit).order_by(TransferLimit.created_at, TransferLimit.id))
    return [
        {
            "id": r.id,
            "rse_expression": r.rse_expression,
            "activity": r.activity,
            "direction": r.direction,
            "max_transfers": r.max_transfers,
            "volume": r.volume,
            "deadline": r.deadline,
            "strategy": r.strategy,
            "transfers": r.transfers,
            "waitings": r.waitings,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in rows
    ]


def limit_caps(session: Session, direction: str) -> dict[tuple[str, str | None], int]:
    """``{(rse_id, activity or None): max_transfers}`` from the limits of ``direction``; where
    two limits cover one RSE and activity the smaller wins.  A limit whose expression selects
    no RSE any more (an RSE was deleted) caps nothing."""
    caps: dict[tuple[str, str | None], int] = {}
    rows = session.execute(
        select(TransferLimit.rse_expression, TransferLimit.activity, TransferLimit.max_transfers).where(
            TransferLimit.direction == _direction(direction), TransferLimit.max_transfers.is_not(None)
        )
    )
    for expression, activity, cap in rows:
        try:
            rse_ids = rse_ids_for(session, expression)
        except InvalidRSEExpression:
            continue
        for rse_id in rse_ids:
            key = (rse_id, activity)
            caps[key] = min(cap, caps.get(key, cap))
    return caps
