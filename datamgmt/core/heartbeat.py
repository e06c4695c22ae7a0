"""Liveness of daemon workers: one ``heartbeats`` row per worker, refreshed every cycle.

Work claiming does not depend on heartbeats (leases decide ownership, see
:mod:`datamgmt.core.claim`); heartbeats tell operators and tests which workers are alive,
let a daemon know how many peers share its queue, and feed the API's ``/health``.  A worker only ever writes its own
row, so the upsert is a plain UPDATE-then-INSERT with no race between workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Heartbeat
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow


def beat(session: Session, daemon: str, worker_id: str, hostname: str, pid: int) -> None:
    """Record that ``worker_id`` of ``daemon`` is alive now."""
    now = utcnow()
    updated = session.execute(
        update(Heartbeat)
        .where(Heartbeat.daemon == daemon, Heartbeat.worker_id == worker_id)
        .values(updated_at=now, hostname=hostname, pid=pid)
    )
    if rowcount(updated) == 0:
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
    return rowcount(session.execute(statement))


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


@dataclass(frozen=True)
class Liveness:
    """What the heartbeats say about one daemon: its newest beat and its workers beating now."""

    daemon: str
    last_beat: datetime | None
    live_workers: int

    @property
    def alive(self) -> bool:
        return self.live_workers > 0


def liveness(session: Session, daemons: Sequence[str], timeout_seconds: int) -> dict[str, Liveness]:
    """Each of ``daemons`` (all that have heartbeats when empty): alive when a worker beat
    within ``timeout_seconds``.  One grouped query."""
    since = utcnow() - timedelta(seconds=timeout_seconds)
    fresh = func.sum(case((Heartbeat.updated_at >= since, 1), else_=0))
    query = select(Heartbeat.daemon, func.max(Heartbeat.updated_at), fresh).group_by(Heartbeat.daemon)
    if daemons:
        query = query.where(Heartbeat.daemon.in_(list(daemons)))
    found = {name: Liveness(name, last, int(live or 0)) for name, last, live in session.execute(query)}
    return {name: found.get(name, Liveness(name, None, 0)) for name in (daemons or sorted(found))}


def list_heartbeats(session: Session) -> list[dict[str, object]]:
    """Every worker's last beat, in Rucio's listing form (``readable`` is the daemon's name)."""
    rows = session.scalars(select(Heartbeat).order_by(Heartbeat.daemon, Heartbeat.worker_id))
    return [
        {
            "readable": row.daemon,
            "hostname": row.hostname,
            "pid": row.pid,
            "thread_name": row.worker_id,
            "updated_at": row.updated_at,
            "created_at": row.created_at,
            "payload": None,
        }
        for row in rows
    ]
