"""What follows from locks changing state or going: rule counters, rule states, releases.

Split from :mod:`datamgmt.core.lock` (creating locks and deciding their state) because these
are the calls every part that moves a lock ends in: the conveyor's outcomes
(``request.py``), replica state changes, the repairer and rule deletion.  A rule's state is a
function of its counters (:func:`settle_rules`), updated in the same transaction as its locks,
as Rucio does, so no daemon ever has to scan locks to know it.  Releasing locks undoes what
creating them did (``lock_cnt``, tombstones, queued requests, quota), set-based.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import (
    ColumnElement,
    String,
    bindparam,
    case,
    delete,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from datamgmt.core import rule_history
from datamgmt.core.db.constants import (
    OBSOLETE,
    UNSENT,
    LockState,
    ReplicaState,
    RequestState,
    RuleNotification,
    RuleState,
)
from datamgmt.core.db.models import DatasetLock, Lock, Replica, Request, Rule, Source
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import CHUNK, chunks, keys_in
from datamgmt.core.message import add_messages
from datamgmt.core.pins import queue_releases, staging_required_rses, to_unlocked_replicas
from datamgmt.core.quota import change_usage

#: States of a request that no job holds (with ``external_id`` NULL): waiting to be sent, or
#: handed to the finisher before it was, which would send it again.
_CANCELLABLE = (RequestState.QUEUED, *UNSENT)
#: Rule states the counters do not drive.
FROZEN = (RuleState.SUSPENDED, RuleState.WAITING_APPROVAL, RuleState.INJECT)
_COUNTER = {
    LockState.OK: "locks_ok_cnt",
    LockState.REPLICATING: "locks_replicating_cnt",
    LockState.STUCK: "locks_stuck_cnt",
}
_RULES = Rule.__table__
_ADD_TO_COUNTERS = (
    update(_RULES)
    .where(_RULES.c.id == bindparam("rule"))
    .values({column: _RULES.c[column] + bindparam(f"d_{column}") for column in _COUNTER.values()})
)


def add_to_counters(session: Session, deltas: Mapping[str, Mapping[LockState, int]]) -> list[str]:
    """Add lock-state deltas to rules' counters, then settle their states (see settle_rules)."""
    shift_counters(session, deltas)
    return settle_rules(session, list(deltas))


def shift_counters(session: Session, deltas: Mapping[str, Mapping[LockState, int]]) -> None:
    """Add lock-state deltas to rules' counters and leave their states to the caller, which
    settles each rule once after all its changes (applying or repairing a rule): a settle
    costs a rule's reload and a history check, twice over if done after each step.

    One executemany UPDATE for all the rules, however many: a batch of transfers may touch
    a rule each.  It goes to the table, not the ORM; settle_rules reloads those rules."""
    moved = [
        {"rule": rule_id, **{f"d_{column}": delta.get(state, 0) for state, column in _COUNTER.items()}}
        for rule_id, delta in deltas.items()
        if any(delta.values())
    ]
    if moved:
        session.execute(_ADD_TO_COUNTERS, moved)


def settle_rules(session: Session, rule_ids: Sequence[str]) -> list[str]:
    """Derive each rule's state from its counters (Rucio's §4.6 roll-up); returns the rules
    that became OK.

    SUSPENDED, WAITING_APPROVAL and INJECT rules keep their state.  Otherwise any STUCK
    lock makes the rule STUCK (``stuck_at`` set once), no REPLICATING lock makes it OK,
    else REPLICATING.  A rule turning OK sends RULE_OK (unless its notification is NO)
    and releases its parent rule of a move, which is removed.
    """
    if not rule_ids:
        return []
    session.flush()
    rules = session.scalars(
        select(Rule).where(Rule.id.in_(rule_ids)).execution_options(populate_existing=True)
    )
    now = utcnow()
    turned_ok: list[Rule] = []
    changed: dict[RuleState, list[str]] = defaultdict(list)
    for rule in rules:
        if rule.state in FROZEN:
            continue
        if rule.locks_stuck_cnt > 0:
            state = RuleState.STUCK
        elif rule.locks_replicating_cnt == 0:
            state = RuleState.OK
        else:
            state = RuleState.REPLICATING
        if state == RuleState.STUCK:
            rule.stuck_at = rule.stuck_at or now
            rule.error = rule.error or "MissingSourceReplica"
        else:
            rule.stuck_at, rule.error = None, None
        if state != rule.state:
            rule.state = state
            changed[state].append(rule.id)
            if state == RuleState.OK:
                turned_ok.append(rule)
    session.flush()
    for state, ids in changed.items():
        for part in chunks(ids):
            session.execute(
                update(DatasetLock).where(DatasetLock.rule_id.in_(part)).values(state=LockState[state.name])
            )
    add_messages(
        session,
        "RULE_OK",
        [
            {"rule_id": r.id, "scope": r.scope, "name": r.name, "rse_expression": r.rse_expression}
            for r in turned_ok
            if r.notification != RuleNotification.NO
        ],
    )
    rule_history.record(session, rule_ids)
    done = [r.id for r in turned_ok]
    if done:
        for parent in session.scalars(select(Rule).where(Rule.child_rule_id.in_(done))).all():
            purge_rule(session, parent)
    return done


def release_locks(
    session: Session, rule: Rule, where: Sequence[ColumnElement[bool]] = (), *, settle: bool = True
) -> int:
    """Remove the rule's locks matching ``where`` (all of them by default); returns how many.

    Replicas lose one ``lock_cnt``; at zero they get a tombstone: OBSOLETE (delete at once)
    with the rule's ``purge_replicas`` or when the replica never arrived (a COPYING one
    becomes UNAVAILABLE), else now.  A file on a ``staging_required`` RSE is only *pinned* by
    its locks: it is never purged through them, and when its last lock goes the pin is queued
    for release (:mod:`datamgmt.core.pins`).  QUEUED requests for replicas nobody locks any more
    are cancelled (removed with their sources), and so are those the finisher would send again
    (NO_SOURCES, …), except those under a job's id: that job may still reach the tool (a
    submission whose answer was lost, a cancel not confirmed), and its copy must find the
    request and the replica row it writes to, which the reaper keeps while the request lives;
    the request runs to its end and the replica is reaped after.  Quota is released and, with
    ``settle``, the counters and state updated (a rule about to be removed skips that).

    Which locks go is decided by deleting them, a chunk at a time (``DELETE … RETURNING``), and
    every statement after acts on exactly the keys that came back.  Two releases of the same
    locks at once (the API and the judge-cleaner removing one rule) are then one release: the
    second's delete waits for the first's and finds the rows gone.  Re-evaluated in each
    statement instead, ``where`` saw the locks still there in the second's snapshot and took a
    second ``lock_cnt`` off replicas another rule still locked, for the reaper to delete; and a
    ``where`` whose answer changed between the statements (a file attached again while the
    evaluator released its lock) lowered ``lock_cnt`` for a lock it then kept.
    """
    chosen = select(Lock.scope, Lock.name, Lock.rse_id).where(Lock.rule_id == rule.id, *where).limit(CHUNK)
    released = (
        delete(Lock.__table__)
        .where(Lock.rule_id == rule.id, tuple_(Lock.scope, Lock.name, Lock.rse_id).in_(chosen))
        .returning(Lock.scope, Lock.name, Lock.rse_id, type_coerce(Lock.state, String), Lock.bytes)
    )
    deltas: Counter[str] = Counter()
    files: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    while rows := session.execute(released).all():
        _release_replicas(session, rule, [(scope, name, rse_id) for scope, name, rse_id, _, _ in rows])
        for _, _, rse_id, state, size in rows:
            deltas[state] -= 1
            files[rse_id] += 1
            nbytes[rse_id] += size or 0
    if not files:
        return 0
    change_usage(session, {(rule.account, rse_id): (-files[rse_id], -nbytes[rse_id]) for rse_id in files})
    if settle:
        add_to_counters(session, {rule.id: Counter({LockState(code): n for code, n in deltas.items()})})
    return files.total()


def _release_replicas(session: Session, rule: Rule, keys: list[tuple[str, str, str]]) -> None:
    """What the rule's locks on ``keys`` (scope, name, RSE id), just deleted, held: ``lock_cnt``,
    queued transfers, pins."""
    last = Replica.lock_cnt <= 1
    staging = sorted(staging_required_rses(session, {rse_id for _, _, rse_id in keys}))
    never_arrived = Replica.state != ReplicaState.AVAILABLE
    purgeable = or_(never_arrived, Replica.rse_id.notin_(staging)) if staging else literal(True)
    gone = purgeable if rule.purge_replicas else never_arrived
    session.execute(
        update(Replica)
        .where(keys_in((Replica.scope, Replica.name, Replica.rse_id), keys))
        .values(
            lock_cnt=Replica.lock_cnt - 1,
            tombstone=case((~last, Replica.tombstone), (gone, OBSOLETE), else_=utcnow()),
            state=case(
                (
                    last & (Replica.state == ReplicaState.COPYING),
                    literal(ReplicaState.UNAVAILABLE, Replica.state.type),
                ),
                else_=Replica.state,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    unneeded = select(Request.id).where(
        Request.state.in_(_CANCELLABLE),
        Request.external_id.is_(None),
        *to_unlocked_replicas(keys),
    )
    if is_postgresql(session):
        # Chosen under a row lock, which re-reads each row's latest version: a request the
        # submitter recorded under its job meanwhile (mark_submitting) no longer qualifies and
        # stays; deleted, its job's copy would land where no row names it.  SQLite's writer
        # already holds the database since the replica update above.
        unneeded = unneeded.with_for_update(of=Request)
    queue_releases(session, staging, keys)
    doomed = [(request_id,) for request_id in session.scalars(unneeded)]
    if doomed:
        for model, column in ((Source, Source.request_id), (Request, Request.id)):
            session.execute(
                delete(model)
                .where(keys_in((column,), doomed, wide=0))
                .execution_options(synchronize_session=False)
            )


def purge_rule(session: Session, rule: Rule) -> None:
    """Remove a rule with all its locks (see release_locks) and dataset locks."""
    release_locks(session, rule, settle=False)
    session.execute(delete(DatasetLock).where(DatasetLock.rule_id == rule.id))
    session.execute(update(Rule).where(Rule.child_rule_id == rule.id).values(child_rule_id=None))
    session.delete(rule)
    session.flush()
