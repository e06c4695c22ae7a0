"""Pins of staged files, given back when their staging rule goes.

A lock on an RSE with ``staging_required`` is OK once a STAGEIN request has brought its file
online, pinned for the rule's lifetime (``core/lock.py``).  When the last lock on such a file
goes (its rule removed, or expired and cleaned), nothing needs the file online any more: its
STAGEIN requests are dropped and a :class:`~datamgmt.core.db.models.PinRelease` is queued for
each, carrying the tool, host, external id and URL that staged it.  The conveyor-finisher claims
them under a lease and asks the tool to release the pin; a release is idempotent, so a worker
that died mid-release only makes another worker release it again.  The file itself, the tape
copy, is never deleted by any of this.

The requests whose pins go are chosen under their row locks (PostgreSQL), which re-read each
row's latest version: a STAGEIN the stager was recording as SUBMITTING under its job meanwhile
is seen in that state and its pin queued for release, and one another release took first is
seen gone, so each pin is released once.  Chosen from the statement's snapshot instead, the
request still looked QUEUED: its pin was not queued, the removal's cancellation then found it
sent and kept it, and the pin its job made was never given back.  The state is checked on the
locked rows, not in the query: PostgreSQL locks (and re-reads) only the rows its snapshot
already matched, so a condition on the state there would pass over that request unlocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, exists, insert, select
from sqlalchemy.orm import Session

from datamgmt.core import claim as claiming
from datamgmt.core.db.constants import RequestState, RequestType
from datamgmt.core.db.models import PinRelease, Replica, Request, RSEAttribute, Source
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.core.keys import chunks, keys_in

#: STAGEIN requests whose pin may exist or be on its way.
_PINNING = (RequestState.SUBMITTING, RequestState.SUBMITTED, RequestState.DONE)


@dataclass(frozen=True)
class PendingRelease:
    """A pin to release, as the finisher claims it."""

    id: str
    url: str | None
    transfertool: str | None
    external_host: str | None
    external_id: str | None


def queue_releases(
    session: Session, staging_rse_ids: Sequence[str], released: Sequence[tuple[str, str, str]]
) -> int:
    """Queue the release of the pins of files on ``staging_rse_ids`` whose last lock was among the
    locks just ``released`` (scope, name, RSE id; call it after their replicas' ``lock_cnt`` went
    down); their STAGEIN requests go.  Returns how many pins were queued."""
    if not staging_rse_ids:
        return 0
    rows = [row for row in _unpinned_stageins(session, staging_rse_ids, released) if row.state in _PINNING]
    if not rows:
        return 0
    now = utcnow()
    session.execute(
        insert(PinRelease),
        [
            {
                "id": new_id(),
                "request_id": row.id,
                "url": row.dest_url,
                "transfertool": row.transfertool,
                "external_host": row.external_host,
                "external_id": row.external_id,
                "created_at": now,
                "updated_at": now,
            }
            for row in rows
        ],
    )
    for part in chunks([row.id for row in rows]):
        session.execute(delete(Source).where(Source.request_id.in_(part)))
        session.execute(delete(Request).where(Request.id.in_(part)))
    return len(rows)


def _unpinned_stageins(
    session: Session, staging_rse_ids: Sequence[str], released: Sequence[tuple[str, str, str]]
) -> list[Row[Any]]:
    """The STAGEIN requests, in any state, of the ``released`` replicas on ``staging_rse_ids``
    that no lock holds any more, locked on PostgreSQL (see the module docstring); SQLite's
    writer already holds the database since the caller lowered ``lock_cnt``."""
    query = select(
        Request.id,
        Request.state,
        Request.dest_url,
        Request.transfertool,
        Request.external_host,
        Request.external_id,
    ).where(
        Request.request_type == RequestType.STAGEIN,
        Request.dest_rse_id.in_(list(staging_rse_ids)),
        *to_unlocked_replicas(released),
    )
    if is_postgresql(session):
        query = query.with_for_update(of=Request)
    return list(session.execute(query))


def to_unlocked_replicas(keys: Sequence[tuple[str, str, str]]) -> tuple[ColumnElement[bool], ...]:
    """Conditions on requests: to one of the replicas ``keys`` (scope, name, RSE id), which no
    lock holds any more, so that nobody needs what the request brings there."""
    return (
        keys_in((Request.scope, Request.name, Request.dest_rse_id), keys),
        exists().where(
            Replica.scope == Request.scope,
            Replica.name == Request.name,
            Replica.rse_id == Request.dest_rse_id,
            Replica.lock_cnt == 0,
        ),
    )


def claim_releases(session: Session, worker: str, limit: int, lease_seconds: int) -> list[PendingRelease]:
    """Lease up to ``limit`` queued releases, oldest first."""
    rows = claiming.claim(
        session,
        PinRelease,
        worker,
        filters=[],
        order_by=[PinRelease.created_at, PinRelease.id],
        limit=limit,
        lease_seconds=lease_seconds,
        columns=(PinRelease.url, PinRelease.transfertool, PinRelease.external_host, PinRelease.external_id),
    )
    return [
        PendingRelease(row.id, row.url, row.transfertool, row.external_host, row.external_id) for row in rows
    ]


def released(session: Session, worker: str, ids: Sequence[str]) -> int:
    """Forget the releases this worker still holds and has carried out."""
    done = 0
    for part in chunks(list(ids)):
        done += rowcount(
            session.execute(
                delete(PinRelease).where(PinRelease.id.in_(part), PinRelease.claimed_by == worker)
            )
        )
    return done


def staging_required_rses(session: Session, rse_ids: Iterable[str]) -> set[str]:
    """Those of ``rse_ids`` with the ``staging_required`` attribute true (Rucio's: a lock there on a
    present replica is OK only once a STAGEIN request has brought the file online, pinned)."""
    ids = sorted(set(rse_ids))
    rows: Iterable[tuple[str, str]] = (
        session.execute(
            select(RSEAttribute.rse_id, RSEAttribute.value).where(
                RSEAttribute.rse_id.in_(ids), RSEAttribute.key == "staging_required"
            )
        ).tuples()
        if ids
        else []
    )
    return {rse_id for rse_id, value in rows if str(value).lower() in ("true", "1")}
