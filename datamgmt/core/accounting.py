"""Abacus's catalogue side: fold queued usage deltas into the usage tables.

Writers that change usage in bulk (replica registration and removal, see
:func:`datamgmt.core.replica.record_rse_delta`) only append a delta row, so they never
contend on one hot usage row.  :func:`fold_counters` with :data:`RSE_FOLD` adds a batch of those deltas
into ``rse_usage`` (source ``rucio``) and deletes them in the same transaction, so a delta
is counted exactly once whatever fails.  :data:`ACCOUNT_FOLD` does the same for
``updated_account_counters`` into ``account_usage``; rules currently change
``account_usage`` directly (:func:`datamgmt.core.quota.change_usage`), so only deltas that
somebody queued there are folded, nothing is recomputed.

Each fold is set-based: the batch's rows are picked from the fold's queue in
:mod:`datamgmt.core.workqueue` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
instances take disjoint deltas; SQLite has a single writer),
missing usage rows are inserted, and ONE correlated UPDATE adds every group's sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamgmt.core.db.models import AccountUsage, RSEUsage, UpdatedAccountCounter, UpdatedRSECounter
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.workqueue import ACCOUNT_USAGE_DELTAS, RSE_USAGE_DELTAS, LockedBatch

#: The usage source the catalogue's own counters are kept under (Rucio's name).
CATALOGUE_SOURCE = "rucio"


@dataclass(frozen=True)
class Fold:
    """How one delta queue maps onto one usage table."""

    queue: Any
    #: The deltas due now, in ``queue`` (:mod:`datamgmt.core.workqueue`).
    due: LockedBatch
    target: Any
    #: (queue column, usage column) pairs that identify a usage row.
    keys: Sequence[tuple[Any, Any]]
    #: (queue column, usage column) pairs whose deltas are summed into the usage row.
    sums: Sequence[tuple[Any, Any]]
    #: Usage columns with a fixed value for every row this fold touches.
    fixed: dict[str, Any] = field(default_factory=dict)


RSE_FOLD = Fold(
    queue=UpdatedRSECounter,
    due=RSE_USAGE_DELTAS,
    target=RSEUsage,
    keys=((UpdatedRSECounter.rse_id, RSEUsage.rse_id),),
    sums=((UpdatedRSECounter.files, RSEUsage.files), (UpdatedRSECounter.bytes, RSEUsage.used)),
    fixed={"source": CATALOGUE_SOURCE},
)

ACCOUNT_FOLD = Fold(
    queue=UpdatedAccountCounter,
    due=ACCOUNT_USAGE_DELTAS,
    target=AccountUsage,
    keys=(
        (UpdatedAccountCounter.account, AccountUsage.account),
        (UpdatedAccountCounter.rse_id, AccountUsage.rse_id),
    ),
    sums=(
        (UpdatedAccountCounter.files, AccountUsage.files),
        (UpdatedAccountCounter.bytes, AccountUsage.bytes),
    ),
)


def _pick(session: Session, fold: Fold, limit: int) -> list[int]:
    return [row.id for row in fold.due.pick(session, limit)]


def _fixed_match(fold: Fold) -> list[ColumnElement[bool]]:
    return [getattr(fold.target, column) == value for column, value in fold.fixed.items()]


def _insert_missing(session: Session, fold: Fold, picked: ColumnElement[bool]) -> None:
    """Create the usage rows the batch needs, at zero; a row a concurrent fold created is kept."""
    target_keys = [target for _, target in fold.keys]
    now = utcnow()
    stamps = [name for name in ("created_at", "updated_at") if name in fold.target.__table__.c]
    present = (
        select(literal(1))
        .where(*[target == source for source, target in fold.keys], *_fixed_match(fold))
        .exists()
    )
    rows = (
        select(
            *[source for source, _ in fold.keys],
            *[literal(value) for value in fold.fixed.values()],
            *[literal(0) for _ in fold.sums],
            *[literal(now) for _ in stamps],
        )
        .where(picked, ~present)
        .distinct()
    )
    columns = [
        *[column.key for column in target_keys],
        *fold.fixed,
        *[target.key for _, target in fold.sums],
        *stamps,
    ]
    dialect = postgresql if is_postgresql(session) else sqlite
    session.execute(dialect.insert(fold.target).from_select(columns, rows).on_conflict_do_nothing())


def fold_counters(session: Session, fold: Fold, limit: int) -> int:
    """Add up to ``limit`` queued deltas into their usage rows and delete them; returns how many."""
    ids = _pick(session, fold, limit)
    if not ids:
        return 0
    picked = fold.queue.id.in_(ids)
    _insert_missing(session, fold, picked)
    group = and_(picked, *[source == target for source, target in fold.keys])
    sums = {
        target.key: target + select(func.coalesce(func.sum(source), 0)).where(group).scalar_subquery()
        for source, target in fold.sums
    }
    source_keys = [source for source, _ in fold.keys]
    target_keys = [target for _, target in fold.keys]
    touched = (
        target_keys[0].in_(select(source_keys[0]).where(picked))
        if len(target_keys) == 1
        else tuple_(*target_keys).in_(select(*source_keys).where(picked))
    )
    session.execute(
        update(fold.target)
        .where(touched, *_fixed_match(fold))
        .values(**sums, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(fold.queue).where(picked).execution_options(synchronize_session=False))
    return len(ids)
