"""The ``local`` transfer tool's transfers, kept in the catalogue.

The local tool copies in worker threads of whichever process runs the submitter, but its state
lives here, so that every shape of deployment works: a poller in another process, or on another
host, reads the outcome from this table; a copy whose process died is found by its lease (the
copying worker renews ``claimed_until`` while it copies) and is claimed and run again by any
live worker; and no file is copied twice at once, because a transfer is only claimed while no
other transfer to the same destination is held under a live lease.

A unit of work is a *chain*: one transfer, or the hops of one multihop path (``chain`` is the
first hop's id), claimed, renewed and run together.  Every function is a fixed number of
set-based statements per batch.  The states are the tool's own: QUEUED, ACTIVE, DONE, FAILED,
and the tape phases STAGING and ARCHIVING (:mod:`datamgmt.core.local_tape`), which hold no lease.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from datamgmt.core import claim as claiming
from datamgmt.core import local_tape
from datamgmt.core.db.models import LocalTransfer
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import QUEUE_CHUNK, chunks
from datamgmt.transfertool.base import CANCELED_REASON

QUEUED, ACTIVE, DONE, FAILED = "QUEUED", "ACTIVE", "DONE", "FAILED"
PENDING = (QUEUED, ACTIVE)
#: Not ended yet, in a tape phase no worker holds.
TAPE_PHASES = (local_tape.STAGING, local_tape.ARCHIVING)
#: Serialises claims on PostgreSQL, so two workers never claim two transfers to one destination
#: at the same moment (SQLite serialises every writer anyway).
_CLAIM_LOCK = 0x6C6F63616C  # "local"


@dataclass(frozen=True)
class StoredTransfer:
    """One transfer as it is stored: its external id, request, chain and the copy's description."""

    id: str
    request_id: str
    chain: str
    hop_index: int
    destination: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """The end of one transfer, as its copying worker reports it."""

    id: str
    state: str
    reason: str | None = None
    transferred_bytes: int | None = None
    source_url: str | None = None


@dataclass(frozen=True)
class TransferRow:
    """What a poller learns about one transfer."""

    id: str
    request_id: str
    state: str
    reason: str | None
    transferred_bytes: int | None
    source_url: str | None
    running: bool
    staging_started: datetime | None = None
    staging_finished: datetime | None = None
    archive_started: datetime | None = None
    archive_finished: datetime | None = None


def add_transfers(
    session: Session, transfers: Sequence[StoredTransfer], staging_seconds: float = 0.0
) -> set[str]:
    """Store transfers whose id is not stored yet (QUEUED, or STAGING for ``staging_seconds``
    when their source is on tape and not online); a job sent twice is not run twice.
    Returns the ids now stored for the same request: those the tool holds."""
    ids = [t.id for t in transfers]
    existing: dict[str, str] = {}
    for chunk in chunks(ids, QUEUE_CHUNK):
        existing.update(
            session.execute(
                select(LocalTransfer.id, LocalTransfer.request_id).where(LocalTransfer.id.in_(chunk))
            )
            .tuples()
            .all()
        )
    now = utcnow()
    new = [t for t in transfers if t.id not in existing]
    pinned = local_tape.online(session, [t.spec["sources"][0] for t in new if t.spec.get("bring_online")])
    rows = [
        {
            "id": t.id,
            "request_id": t.request_id,
            "chain": t.chain,
            "hop_index": t.hop_index,
            "destination": t.destination,
            "spec": json.dumps(t.spec),
            "canceled": False,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "phase_until": None,
            "staging_started_at": None,
            **local_tape.entry_phase(t.spec, t.hop_index, pinned, staging_seconds),
        }
        for t in new
    ]
    if rows:
        session.connection().execute(LocalTransfer.__table__.insert(), rows)
    return {t.id for t in transfers if existing.get(t.id, t.request_id) == t.request_id}


def claim_due(session: Session, worker: str, limit: int, lease_seconds: int) -> list[StoredTransfer]:
    """Lease up to ``limit`` chains to copy: QUEUED ones, and ACTIVE ones whose worker's lease ran
    out (it died mid-copy), oldest first, skipping any whose destination another transfer holds
    under a live lease.  Their transfers become ACTIVE and count an attempt.  Canceled chains
    nobody holds end FAILED here instead of running."""
    if is_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
    now = utcnow()
    session.execute(
        update(LocalTransfer)
        .where(
            LocalTransfer.canceled.is_(True),
            LocalTransfer.state.in_(PENDING),
            claiming.is_free(LocalTransfer),
        )
        .values(state=FAILED, reason=CANCELED_REASON, finished_at=now, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    other = aliased(LocalTransfer)
    busy = exists().where(
        other.destination == LocalTransfer.destination,
        other.id != LocalTransfer.id,
        other.state == ACTIVE,
        other.claimed_until >= now,
    )
    heads = claiming.claim(
        session,
        LocalTransfer,
        worker,
        filters=[LocalTransfer.state.in_(PENDING), LocalTransfer.hop_index == 0, ~busy],
        order_by=[LocalTransfer.created_at, LocalTransfer.id],
        limit=limit,
        lease_seconds=lease_seconds,
        columns=(LocalTransfer.chain,),
    )
    chains = [row.chain for row in heads]
    claimed: list[StoredTransfer] = []
    until = now + timedelta(seconds=lease_seconds)
    for chunk in chunks(chains, QUEUE_CHUNK):
        rows = (
            session.execute(
                update(LocalTransfer)
                .where(LocalTransfer.chain.in_(chunk), LocalTransfer.state.in_(PENDING))
                .values(
                    state=ACTIVE,
                    claimed_by=worker,
                    claimed_until=until,
                    attempts=LocalTransfer.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    LocalTransfer.id,
                    LocalTransfer.request_id,
                    LocalTransfer.chain,
                    LocalTransfer.hop_index,
                    LocalTransfer.destination,
                    LocalTransfer.spec,
                )
                .execution_options(synchronize_session=False)
            )
            .tuples()
            .all()
        )
        claimed.extend(StoredTransfer(*row[:5], json.loads(row[5])) for row in rows)
    return sorted(claimed, key=lambda t: (t.chain, t.hop_index))


def renew(
    session: Session, worker: str, chains: Sequence[str], lease_seconds: int
) -> tuple[set[str], set[str]]:
    """Extend this worker's lease on the chains it is copying.  Returns (chains still held,
    chains among them that were canceled meanwhile); a chain not held was taken over after
    the lease ran out, and its copy must stop."""
    until = utcnow() + timedelta(seconds=lease_seconds)
    held: set[str] = set()
    canceled: set[str] = set()
    for chunk in chunks(list(chains), QUEUE_CHUNK):
        rows = session.execute(
            update(LocalTransfer)
            .where(
                LocalTransfer.chain.in_(chunk),
                LocalTransfer.claimed_by == worker,
                LocalTransfer.state == ACTIVE,
            )
            .values(claimed_until=until)
            .returning(LocalTransfer.chain, LocalTransfer.canceled)
            .execution_options(synchronize_session=False)
        ).all()
        held.update(row.chain for row in rows)
        canceled.update(row.chain for row in rows if row.canceled)
    return held, canceled


def finish(
    session: Session, worker: str, outcomes: Sequence[Outcome], archive_seconds: float = 0.0
) -> set[str]:
    """Record outcomes of transfers this worker still holds (one executemany); their leases end.
    A copy to tape that arrived is ARCHIVING (:func:`~datamgmt.core.local_tape.archiving_values`),
    not DONE yet.  Returns the ids recorded: an outcome of a transfer taken over by another
    worker is dropped."""
    held: dict[str, dict[str, Any]] = {}
    for chunk in chunks([o.id for o in outcomes], QUEUE_CHUNK):
        mine = select(LocalTransfer.id, LocalTransfer.spec).where(
            LocalTransfer.id.in_(chunk), LocalTransfer.claimed_by == worker, LocalTransfer.state == ACTIVE
        )
        held.update(
            (i, json.loads(spec))
            for i, spec in session.execute(mine.with_for_update() if is_postgresql(session) else mine)
        )
    if not held:
        return set()
    table = LocalTransfer.__table__
    now = utcnow()
    rows = []
    for o in outcomes:
        if o.id not in held:
            continue
        row = {
            "b_id": o.id,
            "b_state": o.state,
            "b_reason": (o.reason or None) and o.reason[:4000],
            "b_bytes": o.transferred_bytes,
            "b_source": o.source_url,
            "b_finished": now,
            "b_phase": None,
            "b_archive": None,
        }
        archiving = local_tape.archiving_values(held[o.id], archive_seconds, now) if o.state == DONE else None
        if archiving is not None:
            row.update(
                b_state=archiving["state"],
                b_reason=archiving["reason"],
                b_finished=None,
                b_phase=archiving["phase_until"],
                b_archive=archiving["archive_started_at"],
            )
        rows.append(row)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.claimed_by == worker, table.c.state == ACTIVE)
        .values(
            state=bindparam("b_state"),
            reason=bindparam("b_reason"),
            transferred_bytes=bindparam("b_bytes"),
            source_url=bindparam("b_source"),
            finished_at=bindparam("b_finished"),
            updated_at=now,
            phase_until=bindparam("b_phase"),
            archive_started_at=bindparam("b_archive"),
            claimed_by=None,
            claimed_until=None,
        ),
        rows,
    )
    return set(held)


def give_back(session: Session, worker: str, chains: Sequence[str]) -> int:
    """Release chains this worker stops copying (a graceful stop): any worker may run them again now."""
    released = 0
    for chunk in chunks(list(chains), QUEUE_CHUNK):
        released += rowcount(
            session.execute(
                update(LocalTransfer)
                .where(
                    LocalTransfer.chain.in_(chunk),
                    LocalTransfer.claimed_by == worker,
                    LocalTransfer.state == ACTIVE,
                )
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        )
    return released


def transfer_rows(session: Session, ids: Sequence[str]) -> dict[str, TransferRow]:
    """The stored state of these transfers (ids not stored are absent)."""
    now = utcnow()
    found: dict[str, TransferRow] = {}
    for chunk in chunks(list(dict.fromkeys(ids)), QUEUE_CHUNK):
        rows = session.execute(
            select(
                LocalTransfer.id,
                LocalTransfer.request_id,
                LocalTransfer.state,
                LocalTransfer.reason,
                LocalTransfer.transferred_bytes,
                LocalTransfer.source_url,
                and_(LocalTransfer.state == ACTIVE, LocalTransfer.claimed_until >= now),
                LocalTransfer.staging_started_at,
                LocalTransfer.staging_finished_at,
                LocalTransfer.archive_started_at,
                LocalTransfer.archive_finished_at,
            ).where(LocalTransfer.id.in_(chunk))
        ).tuples()
        # One starred tuple: mypy takes a starred Any (the select has too many columns for a typed
        # row) as filling every parameter, so a plain argument after it would count as one too many.
        found.update((row[0], TransferRow(*(*row[:6], bool(row[6]), *row[7:]))) for row in rows)
    return found


def cancel(session: Session, ids: Sequence[str]) -> None:
    """Flag transfers canceled: a QUEUED one nobody holds fails at once, and so does one in a
    tape phase (a recall aborted, an archive no longer watched); an ACTIVE one's worker stops its
    copy at its next renewal (see :func:`renew`)."""
    now = utcnow()
    for chunk in chunks(list(ids), QUEUE_CHUNK):
        session.execute(
            update(LocalTransfer)
            .where(LocalTransfer.id.in_(chunk), LocalTransfer.state.in_(PENDING))
            .values(canceled=True, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        unheld = or_(
            LocalTransfer.state.in_(TAPE_PHASES),
            and_(LocalTransfer.state == QUEUED, claiming.is_free(LocalTransfer)),
        )
        session.execute(
            update(LocalTransfer)
            .where(LocalTransfer.id.in_(chunk), unheld)
            .values(state=FAILED, reason=CANCELED_REASON, finished_at=now, phase_until=None, canceled=True)
            .execution_options(synchronize_session=False)
        )


def purge(session: Session, retention_seconds: float) -> int:
    """Forget transfers that finished more than ``retention_seconds`` ago (a poller asking later
    gets LOST), and pins whose lifetime is over."""
    horizon = utcnow() - timedelta(seconds=retention_seconds)
    local_tape.purge_pins(session)
    return rowcount(
        session.execute(
            delete(LocalTransfer)
            .where(LocalTransfer.state.in_((DONE, FAILED)), LocalTransfer.finished_at < horizon)
            .execution_options(synchronize_session=False)
        )
    )
