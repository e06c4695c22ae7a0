"""Atomic work claiming for many daemon instances: leases on the queue rows themselves.

Mechanism (one for every leased queue; :mod:`datamgmt.core.workqueue` says which queues are
leased, and why the others are picked in the transaction that works on them instead): a
worker claims rows by setting the lease columns
``claimed_by``/``claimed_until`` of the :class:`~datamgmt.core.db.models.Leased` models in
ONE conditional ``UPDATE … WHERE <free> AND pk IN (<candidates>) RETURNING pk``, where
*free* means ``claimed_until IS NULL OR claimed_until < now``.

Why leases rather than hash partitioning over the heartbeats table (Rucio's way):

* Partitioning needs every worker to agree on the list of live workers; while that list
  changes (a worker starts or dies) two workers can own the same hash bucket, or none.
  A lease is decided by the row itself, so exclusivity never depends on timing.
* A dead worker's items come back by themselves: its lease runs out and the next claim
  finds the row free again.  No one has to notice the death.
* The same statement is correct on both backends.  On PostgreSQL the candidate sub-select
  carries ``FOR UPDATE SKIP LOCKED``, so concurrent claimers skip each other's rows instead
  of queueing on them, and the outer ``WHERE <free>`` is re-checked on the locked row.  On
  SQLite there is a single writer (every transaction begins IMMEDIATE, see
  :mod:`datamgmt.core.db.session`), so the conditional UPDATE is serialised by the database
  lock and no row-level locking is needed.

Processing an item happens later, in its own transaction, which first :func:`confirm`\\ s
the claim (``UPDATE … WHERE claimed_by = me``).  On PostgreSQL that row lock is held until
the item commits, so a claimer whose lease expired meanwhile cannot be overtaken
half-way; if another worker already took the row over, the confirm matches nothing and the
item is skipped.  The item's own effect and its completion (:func:`complete_delete` or
:func:`release`) commit together, so a worker killed mid-item leaves no half-applied
change: the transaction rolls back and the lease simply expires.

A failed item is not released: its lease is the back-off before the next attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Row, Table, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Leased
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import QUEUE_CHUNK, chunks

#: A primary key value, always as a tuple (composite keys such as replicas have several parts).
Key = tuple[Any, ...]


def primary_key(model: type[Leased]) -> list[Column[Any]]:
    """The primary-key columns of a leased model, in declaration order."""
    # Leased is a column mixin, typed without the Table every model that mixes it in has.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return list(table.primary_key.columns)


def key_in(model: type[Leased], keys: Sequence[Key]) -> ColumnElement[bool]:
    """``pk IN keys`` for single and composite keys alike."""
    columns = primary_key(model)
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return tuple_(*columns).in_(list(keys))


def is_free(model: type[Leased]) -> ColumnElement[bool]:
    """Rows nobody holds: never claimed, released, or whose lease ran out."""
    now = utcnow()
    return or_(model.claimed_until.is_(None), model.claimed_until < now)


def claim(
    session: Session,
    model: type[Leased],
    worker: str,
    *,
    filters: Sequence[ColumnElement[bool]] = (),
    order_by: Sequence[Any] = (),
    limit: int = 100,
    lease_seconds: int,
    columns: Sequence[Any] = (),
) -> list[Row[Any]]:
    """Lease up to ``limit`` free rows matching ``filters``; returns only the rows this call won.

    Each returned row has the primary key first, then ``columns``.  The caller commits the
    session to make the lease visible to other workers.
    """
    pk = primary_key(model)
    candidates = select(*pk).where(is_free(model), *filters).order_by(*order_by).limit(limit)
    if is_postgresql(session):
        # Chosen once, in a materialized CTE: as a plain IN subquery, a nested-loop plan runs it
        # again per outer row, its FOR UPDATE skips the rows this statement has just leased, and
        # the LIMIT reaches past them, so more than ``limit`` rows were leased.
        chosen = candidates.with_for_update(skip_locked=True).cte("candidates").prefix_with("MATERIALIZED")
        candidates = select(*chosen.c)
    target = pk[0] if len(pk) == 1 else tuple_(*pk)
    statement = (
        update(model)
        .where(target.in_(candidates), is_free(model))
        .values(claimed_by=worker, claimed_until=utcnow() + timedelta(seconds=lease_seconds))
        .returning(*pk, *columns)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement))


def claim_keys(
    session: Session, model: type[Leased], worker: str, keys: Sequence[Key], lease_seconds: int
) -> list[Key]:
    """Lease exactly these rows where they are free (after the caller picked them); returns the winners."""
    until = utcnow() + timedelta(seconds=lease_seconds)
    won: list[Key] = []
    for part in chunks(keys, QUEUE_CHUNK):
        statement = (
            update(model)
            .where(key_in(model, part), is_free(model))
            .values(claimed_by=worker, claimed_until=until)
            .returning(*primary_key(model))
            .execution_options(synchronize_session=False)
        )
        won.extend(tuple(row) for row in session.execute(statement))
    return won


def confirm(
    session: Session, model: type[Leased], worker: str, keys: Sequence[Key], lease_seconds: int
) -> list[Key]:
    """Re-assert (and extend) this worker's claim inside the item's transaction.

    Returns the keys still held: a key another worker took over after our lease expired is
    left out and must not be processed.  On PostgreSQL the rows stay locked until commit.
    """
    until = utcnow() + timedelta(seconds=lease_seconds)
    held: list[Key] = []
    for part in chunks(keys, QUEUE_CHUNK):
        statement = (
            update(model)
            .where(key_in(model, part), model.claimed_by == worker)
            .values(claimed_until=until)
            .returning(*primary_key(model))
            .execution_options(synchronize_session=False)
        )
        held.extend(tuple(row) for row in session.execute(statement))
    return held


def release(
    session: Session, model: type[Leased], worker: str, keys: Sequence[Key], hold_seconds: int = 0
) -> int:
    """Give rows back.  With ``hold_seconds`` nobody may claim them before then (a retry back-off)."""
    until = utcnow() + timedelta(seconds=hold_seconds) if hold_seconds > 0 else None
    released = 0
    for part in chunks(keys, QUEUE_CHUNK):
        result = session.execute(
            update(model)
            .where(key_in(model, part), model.claimed_by == worker)
            .values(claimed_by=None, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        released += rowcount(result)
    return released


def complete_delete(session: Session, model: type[Leased], worker: str, keys: Sequence[Key]) -> int:
    """Remove queue rows this worker has processed (for pure queues such as ``updated_dids``)."""
    removed = 0
    for part in chunks(keys, QUEUE_CHUNK):
        result = session.execute(
            delete(model)
            .where(key_in(model, part), model.claimed_by == worker)
            .execution_options(synchronize_session=False)
        )
        removed += rowcount(result)
    return removed


def claimed_by(session: Session, model: type[Leased], worker: str) -> list[Key]:
    """Keys a worker holds now (operators' view, and tests)."""
    return [
        tuple(row) for row in session.execute(select(*primary_key(model)).where(model.claimed_by == worker))
    ]
