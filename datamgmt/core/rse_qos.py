"""The QoS policies an RSE offers (Rucio's ``rse_qos_map``), set by admins and listed by anyone."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import RSEQoSPolicy
from datamgmt.core.db.types import utcnow
from datamgmt.core.rse import get_rse_id
from datamgmt.core.validation import shown
from datamgmt.exceptions import Duplicate, InputValidationError

POLICY_LIMIT = 64


def add_qos_policy(session: Session, rse: str, policy: str) -> None:
    rse_id = get_rse_id(session, rse)
    if not policy or len(policy) > POLICY_LIMIT:
        raise InputValidationError(
            f"a QoS policy must have 1 to {POLICY_LIMIT} characters, not {shown(policy)}"
        )
    if session.get(RSEQoSPolicy, (rse_id, policy)) is not None:
        raise Duplicate(f"QoS policy {shown(policy)} already exists!")
    now = utcnow()
    session.add(RSEQoSPolicy(rse_id=rse_id, qos_policy=policy, created_at=now, updated_at=now))
    session.flush()


def delete_qos_policy(session: Session, rse: str, policy: str) -> None:
    """Remove a policy; one the RSE does not have is no error (Rucio's silent delete)."""
    rse_id = get_rse_id(session, rse)
    session.execute(
        delete(RSEQoSPolicy).where(RSEQoSPolicy.rse_id == rse_id, RSEQoSPolicy.qos_policy == policy)
    )


def list_qos_policies(session: Session, rse: str) -> list[str]:
    rse_id = get_rse_id(session, rse)
    return list(
        session.scalars(
            select(RSEQoSPolicy.qos_policy)
            .where(RSEQoSPolicy.rse_id == rse_id)
            .order_by(RSEQoSPolicy.qos_policy)
        )
    )
