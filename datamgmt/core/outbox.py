"""Hermes's side of the messaging outbox: lease messages for delivery, drop them once delivered.

Messages are leased (:mod:`datamgmt.core.claim`) oldest first, so concurrent hermes
instances deliver disjoint sets.  Only messages the broker acknowledged are deleted; the
rest are released for the next batch (those the broker refused after a hold, so they are
retried with back-off), so a broker outage or a missing queue loses nothing.  A worker that dies
between the broker's acknowledgement and the delete leaves its lease to expire and the
messages are delivered again: delivery is at least once, never at most once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from datamgmt.core import claim
from datamgmt.core.db.models import Message
from datamgmt.core.workqueue import OUTBOX


def claim_messages(session: Session, worker: str, limit: int, lease_seconds: int) -> list[Row[Any]]:
    """Lease up to ``limit`` messages: rows of (id, event_type, payload, created_at)."""
    return OUTBOX.claim(session, worker, limit, lease_seconds)


def settle(
    session: Session,
    worker: str,
    delivered: Sequence[int],
    undelivered: Sequence[int],
    held: Mapping[int, int] | None = None,
) -> int:
    """Delete what the broker acknowledged and give the rest back: ``undelivered`` at once,
    ``held`` (id → seconds) not before then.  Returns how many were deleted."""
    claim.release(session, Message, worker, [(i,) for i in undelivered])
    by_hold: dict[int, list[tuple[int]]] = defaultdict(list)
    for message_id, seconds in (held or {}).items():
        by_hold[seconds].append((message_id,))
    for seconds, keys in by_hold.items():
        claim.release(session, Message, worker, keys, seconds)
    return claim.complete_delete(session, Message, worker, [(i,) for i in delivered])
