"""The undertaker's catalogue side: remove DIDs whose lifetime (``expired_at``) has passed.

What goes (Rucio's ``list_expired_dids`` + ``delete_dids(expire_rules=True)``, simplified):

* Collections (datasets, containers) past ``expired_at``: their rules are deleted with
  :func:`~datamgmt.core.rule_update.delete_rule` semantics (replicas nobody else locks get
  tombstones, so the reaper frees the space), their content is detached, they are detached
  from their parents (which are re-evaluated), and the DID row is deleted with its metadata
  and collection replicas.  Children stay: they have lifetimes of their own.
* Files past ``expired_at`` only when attached to no collection (a file inside a dataset
  lives as long as the dataset needs it): their rules go the same way, replicas left
  without locks get a tombstone, and the DID row goes at once if no replica is left;
  otherwise the reaper removes it with its last replica, and ``expired_at`` is cleared so
  the file is handed over once.

Never touched: DIDs with a locked rule or a rule being moved (they go once the rule does),
published DIDs (PIDs must keep resolving), DIDs with an approved lifetime exception
that has not run out (:mod:`datamgmt.core.lifetime_exception`), and DIDs attached to a monotonic collection
(whose content may not shrink).  These conditions are in the selecting query
(:data:`~datamgmt.core.workqueue.EXPIRED_DIDS`), so skipped DIDs never fill a batch.  Every
removed DID leaves an ``ERASE`` message.

The rule conditions are read again under the rules' row locks before any rule goes: the picked
DID's row lock keeps its lifetime from changing, but not its rules, and an owner may lock one,
or start moving it, after the pick looked.  A DID whose rule is found locked or moving then is
left whole, with all its rules, for a later pass.  Read without the lock, the rule looked
unlocked, and its deletion waited for the owner's commit and then removed the rule just locked.

A batch is picked and processed in ONE transaction; on PostgreSQL the picked rows are
locked with ``SKIP LOCKED``, so concurrent undertakers take disjoint DIDs, and on SQLite the
single writer serialises them.  Either the whole batch is buried or nothing is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from datamgmt.core import content_history, deleted_did
from datamgmt.core.db.constants import DIDReEvaluation, DIDType
from datamgmt.core.db.models import (
    CollectionReplica,
    Content,
    DataIdentifier,
    Replica,
    Rule,
    UpdatedDID,
)
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS
from datamgmt.core.keys import DIDKey, keys_in
from datamgmt.core.lock_state import purge_rule
from datamgmt.core.message import add_messages
from datamgmt.core.workqueue import EXPIRED_DIDS

#: Event type of the message each removed DID leaves (Rucio's).
ERASE = "ERASE"


def _is(key: Sequence[DIDKey], scope: Any, name: Any) -> Any:
    return keys_in((scope, name), list(key))


def claim_expired(session: Session, limit: int) -> list[dict[str, Any]]:
    """Pick (and on PostgreSQL lock) up to ``limit`` DIDs due for removal, longest expired first
    (:data:`datamgmt.core.workqueue.EXPIRED_DIDS`)."""
    return [dict(row._mapping) for row in EXPIRED_DIDS.pick(session, limit)]


def bury(session: Session, dids: Sequence[dict[str, Any]]) -> int:
    """Remove the DIDs picked by :func:`claim_expired` (see the module docstring); returns how many."""
    rules = _locked_rules(session, [(d["scope"], d["name"]) for d in dids])
    kept = {(rule.scope, rule.name) for rule in rules if rule.locked or rule.child_rule_id is not None}
    dids = [d for d in dids if (d["scope"], d["name"]) not in kept]
    if not dids:
        return 0
    keys = [(d["scope"], d["name"]) for d in dids]
    for rule in rules:
        if (rule.scope, rule.name) not in kept:
            purge_rule(session, rule)
    collections = [(d["scope"], d["name"]) for d in dids if d["did_type"] in COLLECTIONS]
    files = [(d["scope"], d["name"]) for d in dids if d["did_type"] == DIDType.FILE]
    if collections:
        _detach_from_parents(session, collections)
        content_history.record_removal(session, _is(collections, Content.scope, Content.name))
        session.execute(delete(Content).where(_is(collections, Content.scope, Content.name)))
        session.execute(
            delete(CollectionReplica).where(_is(collections, CollectionReplica.scope, CollectionReplica.name))
        )
        session.execute(delete(UpdatedDID).where(_is(collections, UpdatedDID.scope, UpdatedDID.name)))
    if files:
        _hand_files_to_reaper(session, files)
    has_replica = exists().where(Replica.scope == DataIdentifier.scope, Replica.name == DataIdentifier.name)
    deleted_did.keep(session, and_(_is(keys, DataIdentifier.scope, DataIdentifier.name), ~has_replica))
    session.execute(
        delete(DataIdentifier)
        .where(_is(keys, DataIdentifier.scope, DataIdentifier.name), ~has_replica)
        .execution_options(synchronize_session=False)
    )
    add_messages(
        session,
        ERASE,
        [
            {"scope": d["scope"], "name": d["name"], "account": d["account"], "did_type": d["did_type"].name}
            for d in dids
        ],
    )
    return len(dids)


def _locked_rules(session: Session, keys: Sequence[DIDKey]) -> list[Rule]:
    """The rules on the DIDs ``keys``, read again under their row locks (taken in id order, as
    every undertaker does) so that what they say holds until the batch commits (see the
    module docstring)."""
    if not keys:
        return []
    query = (
        select(Rule)
        .where(_is(keys, Rule.scope, Rule.name))
        .order_by(Rule.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def _detach_from_parents(session: Session, keys: Sequence[DIDKey]) -> None:
    """Take the DIDs out of every collection holding them: sizes shrink and the parents' rules re-evaluate."""
    link = _is(keys, Content.child_scope, Content.child_name)
    parents = session.execute(select(Content.scope, Content.name).where(link).distinct()).tuples().all()
    if not parents:
        return
    removed = and_(Content.scope == DataIdentifier.scope, Content.name == DataIdentifier.name, link)
    session.execute(
        update(DataIdentifier)
        .where(_is(parents, DataIdentifier.scope, DataIdentifier.name))
        .values(
            bytes=func.coalesce(DataIdentifier.bytes, 0)
            - select(func.coalesce(func.sum(Content.bytes), 0)).where(removed).scalar_subquery(),
            length=func.coalesce(DataIdentifier.length, 0)
            - select(func.count()).where(removed).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    content_history.record_removal(session, link)
    session.execute(delete(Content).where(link))
    session.execute(
        insert(UpdatedDID),
        [{"scope": s, "name": n, "rule_evaluation_action": DIDReEvaluation.DETACH} for s, n in parents],
    )


def _hand_files_to_reaper(session: Session, keys: Sequence[DIDKey]) -> None:
    """Tombstone the files' unlocked, untombstoned replicas; files keeping replicas stop being expired."""
    session.execute(
        update(Replica)
        .where(_is(keys, Replica.scope, Replica.name), Replica.lock_cnt == 0, Replica.tombstone.is_(None))
        .values(tombstone=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(DataIdentifier)
        .where(_is(keys, DataIdentifier.scope, DataIdentifier.name))
        .values(expired_at=None)
        .execution_options(synchronize_session=False)
    )
