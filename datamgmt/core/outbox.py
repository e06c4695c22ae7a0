"""Hermes's side of the messaging outbox: lease messages for delivery, drop them once delivered.

Messages are leased (:mod:`datamgmt.core.claim`) oldest first, so concurrent hermes
instances deliver disjoint sets.  Only messages the broker acknowledged are deleted; the
rest are released for the next batch (those the broker refused after a hold, so they are
retried with back-off), so a broker outage or a missing queue loses nothing.  A worker that dies
between the broker's acknowledgement and the delete leaves its lease to expire and the
messages are delivered again: delivery is at least once, never at most once.

A message's ``services`` (Rucio's column) names the delivery services it is for, comma
separated; NULL means every service the delivering hermes has.  A message delivered to some
of its services but not all keeps only the others (:func:`settle`'s ``narrowed``), so a retry
never repeats a delivery that succeeded.  A message is claimed only by a hermes that has at
least one of its services: one for a service nobody configured waits in the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, literal, or_, update
from sqlalchemy.orm import Session

from datamgmt.core import claim
from datamgmt.core.db.models import Message
from datamgmt.core.keys import QUEUE_CHUNK, chunks
from datamgmt.core.workqueue import OUTBOX


def join_services(services: Iterable[str]) -> str:
    """The stored form of a set of services: sorted, comma separated, no blanks."""
    return ",".join(sorted({s.strip() for s in services if s.strip()}))


def split_services(services: str | None) -> frozenset[str] | None:
    """The services a stored value names; None for NULL (every service)."""
    if services is None:
        return None
    return frozenset(s.strip() for s in services.split(",") if s.strip())


def _for_any_of(services: Collection[str]) -> ColumnElement[bool]:
    """Messages for every service, or naming at least one of ``services``."""
    wrapped = literal(",") + Message.services + literal(",")
    return or_(Message.services.is_(None), *(wrapped.like(f"%,{service},%") for service in services))


def claim_messages(
    session: Session, worker: str, limit: int, lease_seconds: int, services: Collection[str]
) -> list[Row[Any]]:
    """Lease up to ``limit`` messages that one of ``services`` should deliver: rows of
    (id, event_type, payload, created_at, services), oldest first (``UPDATE … RETURNING``
    promises no order, so they are sorted here)."""
    rows = OUTBOX.claim(session, worker, limit, lease_seconds, narrowed=[_for_any_of(services)])
    return sorted(rows, key=lambda row: (row.created_at, row.id))


def settle(
    session: Session,
    worker: str,
    delivered: Sequence[int],
    undelivered: Sequence[int],
    held: Mapping[int, int] | None = None,
    narrowed: Mapping[int, str] | None = None,
) -> int:
    """Delete what was delivered everywhere and give the rest back: ``undelivered`` at once,
    ``held`` (id → seconds) not before then.  ``narrowed`` (id → services) records, for
    messages given back, the services still owed, so the ones that took it are not sent it
    again.  Returns how many were deleted."""
    by_services: dict[str, list[int]] = defaultdict(list)
    for message_id, services in (narrowed or {}).items():
        by_services[services].append(message_id)
    for services, ids in by_services.items():
        for part in chunks(ids, QUEUE_CHUNK):
            session.execute(
                update(Message)
                .where(Message.id.in_(part), Message.claimed_by == worker)
                .values(services=services)
                .execution_options(synchronize_session=False)
            )
    claim.release(session, Message, worker, [(i,) for i in undelivered])
    by_hold: dict[int, list[tuple[int]]] = defaultdict(list)
    for message_id, seconds in (held or {}).items():
        by_hold[seconds].append((message_id,))
    for seconds, keys in by_hold.items():
        claim.release(session, Message, worker, keys, seconds)
    return claim.complete_delete(session, Message, worker, [(i,) for i in delivered])
