"""Liveness of daemon workers: one ``heartbeats`` row per worker, refreshed every cycle.

Work claiming does not depend on heartbeats (leases decide ownership, see
:mod:`datamgmt.core.claim`); heartbeats tell operators and tests which workers are alive,
and let a daemon know how many peers share its queue.  A worker only ever writes its own
row, so the upsert is a plain UPDATE-then-INSERT with no race between workers.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Heartbeat
from datamgmt.core.db.types import utcnow


def beat(session: Session, daemon: str, worker_id: str, hostname: str, pid: int) -> None:
    """Record that ``worker_id`` of ``daemon`` is alive now."""
    now = utcnow()
    updated = session.execute(
        update(Heartbeat)
        .where(Heartbeat.daemon == daemon, Heartbeat.worker_id == worker_id)
        .values(updated_at=now, hostname=hostname, pid=pid)
    )
    if updated.rowcount == 0:
        session.execute(
            insert(Heartbeat).values(
                daemon=daemon, worker_id=worker_id, hostname=hostname, pid=pid, updated_at=now, created_at=now
            )
        )


def expire(session: Session, timeout_seconds: int, daemon: str | None = None) -> int:
    """Delete rows of workers silent for longer than ``timeout_seconds``; returns how many."""
    statement = delete(Heartbeat).where(Heartbeat.updated_at < utcnow() - timedelta(seconds=timeout_seconds))
    if daemon is not None:
        statement = statement.where(Heartbeat.daemon == daemon)
    return session.execute(statement).rowcount


def live_workers(session: Session, daemon: str, timeout_seconds: int) -> list[str]:
    """Worker ids of ``daemon`` seen within ``timeout_seconds``, in a stable order."""
    since = utcnow() - timedelta(seconds=timeout_seconds)
    return list(
        session.scalars(
            select(Heartbeat.worker_id)
            .where(Heartbeat.daemon == daemon, Heartbeat.updated_at >= since)
            .order_by(Heartbeat.worker_id)
        )
    )


def die(session: Session, daemon: str, worker_id: str) -> None:
    """Remove a worker's row on graceful exit."""
    session.execute(delete(Heartbeat).where(Heartbeat.daemon == daemon, Heartbeat.worker_id == worker_id))
