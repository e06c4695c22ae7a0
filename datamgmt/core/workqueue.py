"""The daemons' work queues: which rows of which table are due, in which order.

A queue is only a description; the daemons name a queue and never write a query.  The
conditions live here, in ``core``, because they are SQL.  Every daemon's queue is below, of
one of two kinds, and the kind follows from one question: does the work on an item leave the
transaction that picks it?

* :class:`WorkQueue` (**leased**): the item is worked on *outside* the transaction that claims
  it (a copy on storage, an FTS call, a broker delivery, or one short transaction per item),
  so something must keep other instances off it in between and give it back if the worker
  dies.  That is a lease on the row (``claimed_by``/``claimed_until``, the
  :class:`~datamgmt.core.db.models.Leased` models); :mod:`datamgmt.core.claim` takes it in one
  conditional UPDATE and the item's own transaction confirms it.  The judge, hermes and the
  conveyor's submitter, poller and finisher work this way.
* :class:`LockedBatch` (**picked in the working transaction**): the whole batch is processed
  by set-based statements in the one transaction that picks it (abacus folds deltas,
  undertaker buries DIDs, transmogrifier matches new DIDs).  Then the transaction itself
  is the claim: on PostgreSQL the picked rows are read ``FOR UPDATE SKIP LOCKED`` and stay
  locked until commit, so concurrent instances take disjoint rows; on SQLite every
  transaction begins IMMEDIATE (:mod:`datamgmt.core.db.session`), so batches are serialised.
  A worker that dies rolls back and its rows are free at once, with no lease to wait out,
  and the tables involved (usage deltas, DIDs) need no lease columns.  A lease here would
  cost a second transaction and a second write of every row, for nothing.

Two claims are not expressed as a queue here, for reasons of their own:

* The reaper (:func:`datamgmt.core.deletion.claim_for_deletion`): how many replicas are due on
  an RSE depends on a running total of their bytes against the space it needs, which no
  ``LIMIT`` can say.  It reads the candidates in order (``SKIP LOCKED`` on PostgreSQL), stops
  when enough bytes are chosen, and leases exactly those with :func:`claim.claim_keys`.
* The ``local`` transfer tool's copies (:func:`datamgmt.core.local_transfer.claim_due`): its
  table is the tool's own job store, not a daemon's queue.  It leases the heads of chains
  with :func:`claim.claim` under an advisory lock (two workers must never pick two copies to
  one destination), then takes each chain's other hops with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, or_, select, true
from sqlalchemy.orm import Session, aliased

from datamgmt.core import claim as claiming
from datamgmt.core import lifetime_exception
from datamgmt.core.db.constants import DIDType, RequestState, RuleState
from datamgmt.core.db.models import (
    Content,
    DataIdentifier,
    Leased,
    Message,
    Request,
    Rule,
    Share,
    UpdatedAccountCounter,
    UpdatedDID,
    UpdatedRSECounter,
)
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS

#: Request states the finisher consumes: the tool forgot the transfer, or it never reached a tool.
FINISHER_STATES = (
    RequestState.LOST,
    RequestState.NO_SOURCES,
    RequestState.MISMATCH_SCHEME,
    RequestState.SUBMISSION_FAILED,
)


@dataclass(frozen=True)
class WorkQueue:
    """Rows of ``model`` that are due now (``filters``), oldest first (``order_by``)."""

    name: str
    model: type[Leased]
    #: Called at claim time, so conditions on "now" are fresh each cycle.
    filters: Callable[[], Sequence[ColumnElement[bool]]]
    order_by: Callable[[], Sequence[Any]]
    #: Extra columns returned with each claimed key.
    columns: Callable[[], Sequence[Any]] = field(default=lambda: ())

    def claim(
        self,
        session: Session,
        worker: str,
        limit: int,
        lease_seconds: int,
        columns: Sequence[Any] | None = None,
        narrowed: Sequence[ColumnElement[bool]] = (),
    ) -> list[Row[Any]]:
        """Lease up to ``limit`` due rows: each the primary key, then ``columns`` (default: the
        queue's own), for a caller that reads more than the queue names; ``narrowed`` adds the
        caller's own conditions (the stager's request types, hermes's services)."""
        return claiming.claim(
            session,
            self.model,
            worker,
            filters=(*self.filters(), *narrowed),
            order_by=self.order_by(),
            limit=limit,
            lease_seconds=lease_seconds,
            columns=self.columns() if columns is None else columns,
        )


@dataclass(frozen=True)
class LockedBatch:
    """Rows of ``model`` that are due now, picked and worked on in one transaction (see the
    module docstring): ``columns`` of the rows matching ``filters``, in ``order_by``."""

    name: str
    model: Any
    columns: Callable[[], Sequence[Any]]
    filters: Callable[[], Sequence[ColumnElement[bool]]]
    order_by: Callable[[], Sequence[Any]] = field(default=lambda: ())

    def pick(self, session: Session, limit: int) -> list[Row[Any]]:
        """Up to ``limit`` due rows, locked (and skipped by concurrent pickers) until commit on
        PostgreSQL; the caller works on them before its transaction ends.

        The lock is ``FOR NO KEY UPDATE``: it keeps every other picker and writer of the rows
        off them, but not a foreign-key check of a row that refers to one.  Picked DIDs are
        the files that other batches' rules lock: under ``FOR UPDATE`` two transmogrifiers,
        each holding files of the other's datasets, waited on each other until PostgreSQL
        broke the deadlock, and an attach of a picked file waited for the whole batch."""
        query = select(*self.columns()).where(*self.filters()).order_by(*self.order_by()).limit(limit)
        if is_postgresql(session):
            query = query.with_for_update(of=self.model, skip_locked=True, key_share=True)
        return list(session.execute(query))


#: judge-evaluator: collections whose content changed under rules.
UPDATED_DIDS = WorkQueue(
    name="updated_dids",
    model=UpdatedDID,
    filters=lambda: (),
    order_by=lambda: (UpdatedDID.created_at, UpdatedDID.id),
    columns=lambda: (UpdatedDID.scope, UpdatedDID.name),
)

#: judge-repairer: rules in STUCK.
STUCK_RULES = WorkQueue(
    name="stuck_rules",
    model=Rule,
    filters=lambda: (Rule.state == RuleState.STUCK,),
    order_by=lambda: (Rule.updated_at,),
)

#: judge-cleaner: expired rules that are not locked and have no child rule (Rucio's get_expired_rules).
EXPIRED_RULES = WorkQueue(
    name="expired_rules",
    model=Rule,
    filters=lambda: (Rule.expires_at < utcnow(), Rule.locked.is_(False), Rule.child_rule_id.is_(None)),
    order_by=lambda: (Rule.expires_at,),
)

#: judge-injector: asynchronous rules waiting to be applied; a future created_at delays injection.
INJECT_RULES = WorkQueue(
    name="inject_rules",
    model=Rule,
    filters=lambda: (Rule.state == RuleState.INJECT, Rule.created_at <= utcnow()),
    order_by=lambda: (Rule.created_at,),
)

#: hermes: every message, oldest first (narrowed to the worker's services by
#: :func:`datamgmt.core.outbox.claim_messages`).
OUTBOX = WorkQueue(
    name="messages",
    model=Message,
    filters=lambda: (),
    order_by=lambda: (Message.created_at, Message.id),
    columns=lambda: (Message.event_type, Message.payload, Message.created_at, Message.services),
)

#: conveyor-submitter: QUEUED transfer requests whose back-off is over, highest priority first.
QUEUED_REQUESTS = WorkQueue(
    name="queued_requests",
    model=Request,
    filters=lambda: (
        Request.state == RequestState.QUEUED,
        or_(Request.not_before.is_(None), Request.not_before <= utcnow()),
    ),
    order_by=lambda: (Request.priority.desc(), Request.created_at, Request.id),
)

#: conveyor-poller: SUBMITTED requests, those polled longest ago (lease ended earliest) first.
SUBMITTED_REQUESTS = WorkQueue(
    name="submitted_requests",
    model=Request,
    filters=lambda: (Request.state == RequestState.SUBMITTED, Request.external_id.is_not(None)),
    order_by=lambda: (Request.claimed_until.is_not(None), Request.claimed_until, Request.submitted_at),
)

#: conveyor-poller: SUBMITTING requests nobody holds, whose submission's answer never came.
SUBMITTING_REQUESTS = WorkQueue(
    name="submitting_requests",
    model=Request,
    filters=lambda: (Request.state == RequestState.SUBMITTING, Request.external_id.is_not(None)),
    order_by=lambda: (Request.submitted_at, Request.id),
)

#: conveyor-finisher: requests whose transfer ended or could not start, oldest change first.
FINISHED_REQUESTS = WorkQueue(
    name="finished_requests",
    model=Request,
    filters=lambda: (Request.state.in_(FINISHER_STATES),),
    order_by=lambda: (Request.updated_at, Request.id),
)


def _deltas(model: Any) -> LockedBatch:
    """abacus: a table of queued usage deltas, in the order they were written."""
    return LockedBatch(
        name=model.__tablename__,
        model=model,
        columns=lambda: (model.id,),
        filters=lambda: (),
        order_by=lambda: (model.id,),
    )


RSE_USAGE_DELTAS = _deltas(UpdatedRSECounter)
ACCOUNT_USAGE_DELTAS = _deltas(UpdatedAccountCounter)

#: transmogrifier: DIDs no subscription has seen yet.
NEW_DIDS = LockedBatch(
    name="new_dids",
    model=DataIdentifier,
    columns=lambda: (
        DataIdentifier.scope,
        DataIdentifier.name,
        DataIdentifier.did_type,
        DataIdentifier.account,
        DataIdentifier.hidden,
    ),
    filters=lambda: (DataIdentifier.is_new == true(),),
)


def _expired_dids() -> tuple[ColumnElement[bool], ...]:
    """What the undertaker may remove now (:mod:`datamgmt.core.undertaker` says why each holds)."""
    did = DataIdentifier
    parent = aliased(DataIdentifier)
    held_by_rule = exists().where(
        Rule.scope == did.scope,
        Rule.name == did.name,
        or_(Rule.locked.is_(True), Rule.child_rule_id.is_not(None)),
    )
    published = exists().where(Share.scope == did.scope, Share.name == did.name)
    attached = exists().where(Content.child_scope == did.scope, Content.child_name == did.name)
    in_monotonic = (
        select(Content.child_scope)
        .join(parent, and_(parent.scope == Content.scope, parent.name == Content.name))
        .where(Content.child_scope == did.scope, Content.child_name == did.name, parent.monotonic.is_(True))
        .exists()
    )
    return (
        did.expired_at < utcnow(),
        ~held_by_rule,
        ~published,
        ~lifetime_exception.held(did.scope, did.name),
        or_(
            and_(did.did_type.in_(COLLECTIONS), ~in_monotonic), and_(did.did_type == DIDType.FILE, ~attached)
        ),
    )


#: undertaker: DIDs whose lifetime has passed and that nothing keeps, longest expired first.
EXPIRED_DIDS = LockedBatch(
    name="expired_dids",
    model=DataIdentifier,
    columns=lambda: (
        DataIdentifier.scope,
        DataIdentifier.name,
        DataIdentifier.did_type,
        DataIdentifier.account,
    ),
    filters=_expired_dids,
    order_by=lambda: (DataIdentifier.expired_at, DataIdentifier.scope, DataIdentifier.name),
)
