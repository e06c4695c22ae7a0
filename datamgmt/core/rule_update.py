"""A rule's changes after its creation: update, move, and deletion now or at expiry.

Split from :mod:`datamgmt.core.rule` (creation, approval, the judge, reading) because these
are the calls that act on a rule that already holds locks: they move its locks' quota to
another account, hand it to a child rule, or release its locks (``lock_state.purge_rule``).
The judge-cleaner's entry point, :func:`delete_expired_rule`, is here.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from datamgmt.core import rule_history, validation
from datamgmt.core.account import account_exists, is_admin
from datamgmt.core.db.constants import LockState, RequestState, RuleState
from datamgmt.core.db.models import DatasetLock, Lock, Request, Rule
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.lock_state import purge_rule, settle_rules
from datamgmt.core.quota import change_usage
from datamgmt.core.rule import PLACEMENT_ERRORS, add_rule, keep_cause, lifetime_expiry, rule_exists, rule_row
from datamgmt.core.rule_boost import boost_rule, source_expression
from datamgmt.core.rule_placement import apply_rule
from datamgmt.exceptions import (
    AccountNotFound,
    DuplicateRule,
    InputValidationError,
    RuleLocked,
    RuleNotFound,
    UnsupportedOperation,
)

#: How long a softly deleted rule (``DELETE /rules/{id}``) lives on, as in Rucio.
SOFT_DELETE_GRACE = timedelta(hours=1)


# --- deletion and expiry ---------------------------------------------------------------------
def delete_rule(
    session: Session,
    rule_id: str,
    issuer: str | None = None,
    force: bool = False,
    purge_replicas: bool | None = None,
    soft: bool = False,
) -> None:
    """Remove a rule now, with its locks (see ``lock_state.release_locks``), or ``soft``ly.

    A soft deletion, which is what Rucio's REST API does, only brings the rule's expiry
    forward to at most :data:`SOFT_DELETE_GRACE` from now: the judge-cleaner removes it then,
    and until then an owner who deleted by mistake can still extend it.
    A locked rule is refused unless ``force`` is given by an admin ``issuer``; a rule being
    moved (with a child rule) is refused: it goes once its child is OK.  ``purge_replicas``
    overrides the rule's own flag.
    """
    rule = rule_row(session, rule_id)
    if rule.locked and not (force and issuer is not None and is_admin(session, issuer)):
        raise RuleLocked(
            f"The replication rule {rule_id} is locked and has to be unlocked before it can be deleted"
        )
    if rule.child_rule_id is not None:
        raise UnsupportedOperation(
            f"The replication rule {rule_id} is being moved; it goes once its child is OK"
        )
    if purge_replicas is not None:
        rule.purge_replicas = bool(purge_replicas)
    if soft:
        deadline = utcnow() + SOFT_DELETE_GRACE
        rule.expires_at = deadline if rule.expires_at is None else min(rule.expires_at, deadline)
        return
    purge_rule(session, rule)


def delete_expired_rule(session: Session, rule_id: str) -> bool:
    """The judge-cleaner's deletion: the rule goes only if it is still expired, unlocked and not
    being moved, re-checked under its row lock; an owner may have extended it since it was
    found due.  Returns whether it went."""
    try:
        rule = rule_row(session, rule_id, lock=True)
    except RuleNotFound:
        return False
    if (
        rule.expires_at is None
        or rule.expires_at >= utcnow()
        or rule.locked
        or rule.child_rule_id is not None
    ):
        return False
    purge_rule(session, rule)
    return True


# --- update and move -------------------------------------------------------------------------
UPDATABLE = (
    "lifetime",
    "locked",
    "comment",
    "account",
    "priority",
    "activity",
    "rse_expression",
    "purge_replicas",
    "source_replica_expression",
    "boost_rule",
    "state",
    "cancel_requests",
    "child_rule_id",
)

#: The states an update may set, as Rucio's ``rucio rule update --stuck`` / ``--suspend``.
SETTABLE_STATES = {"STUCK": RuleState.STUCK, "SUSPENDED": RuleState.SUSPENDED}


def update_rule(session: Session, rule_id: str, options: dict[str, Any]) -> str | None:
    """Change a rule: ``lifetime`` (seconds, None = forever), ``locked``, ``comment``,
    ``account`` (its locks and their quota move along), ``priority`` and ``activity`` (also of
    its QUEUED requests), ``purge_replicas``, ``source_replica_expression`` and ``boost_rule``
    (:mod:`datamgmt.core.rule_boost`), ``state`` (:func:`set_state`), ``child_rule_id``
    (:func:`set_child_rule`), and ``rse_expression``: a move, see :func:`move_rule`, whose
    child rule id is returned."""
    unknown = set(options) - set(UPDATABLE)
    if unknown:
        raise InputValidationError(f"{validation.shown(sorted(unknown)[0])} cannot be updated on a rule")
    if "child_rule_id" in options and "rse_expression" in options:
        raise InputValidationError("child_rule_id and rse_expression cannot be updated together")
    if options.get("cancel_requests"):
        raise UnsupportedOperation(
            "cancel_requests is not supported: a rule set STUCK or SUSPENDED keeps its transfers running"
        )
    rule = rule_row(session, rule_id, lock=True)
    if "state" in options:
        set_state(session, rule, options["state"])
    if "lifetime" in options:
        rule.expires_at = lifetime_expiry(options["lifetime"])
    if "locked" in options:
        rule.locked = bool(options["locked"])
    if "comment" in options:
        rule.comments = options["comment"]
    if "purge_replicas" in options:
        rule.purge_replicas = bool(options["purge_replicas"])
    if "source_replica_expression" in options:
        rule.source_replica_expression = source_expression(session, options["source_replica_expression"])
    queued: dict[str, int | str] = {}
    if "priority" in options:
        priority = options["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
            raise InputValidationError("priority must be an integer from 1 to 5")
        rule.priority = queued["priority"] = priority
    if "activity" in options:
        rule.activity = queued["activity"] = str(options["activity"])
    if queued:
        session.execute(
            update(Request)
            .where(Request.rule_id == rule.id, Request.state == RequestState.QUEUED)
            .values(**queued)
        )
    if "account" in options:
        _change_account(session, rule, options["account"])
    session.flush()
    if options.get("boost_rule"):  # after the other changes, as in Rucio: it only moves the rule in the queue
        boost_rule(session, rule)
    if "child_rule_id" in options:  # last: the rule may go at once
        set_child_rule(session, rule, options["child_rule_id"])
    if "rse_expression" in options:
        return move_rule(session, rule_id, options["rse_expression"])
    return None


def set_state(session: Session, rule: Rule, state: object) -> None:
    """Set a rule SUSPENDED or STUCK by hand, as ``rucio rule update --suspend/--stuck``; its
    transfers keep running either way, and a copy that arrives turns its lock OK.

    SUSPENDED freezes the rule where it stands: the judge neither evaluates nor repairs it until
    a later update sets it STUCK.  STUCK makes its REPLICATING locks STUCK and hands the rule to
    the judge-repairer, which leaves a lock whose copy is still in flight REPLICATING with no
    second request; it counts as stuck from now (the repairer suspends rules stuck too long),
    and files attached while the judge left it alone are placed now (a placement error stays on
    the rule, as the repairer's do).
    The rule then takes the state its locks give it, so a rule whose locks are all OK is OK, and
    ``datamgmt-admin check`` never finds a STUCK rule without a STUCK lock.  A rule not applied
    yet (waiting for approval or injection) holds no locks: it is refused, where Rucio would
    leave a STUCK rule without locks.
    """
    wanted = SETTABLE_STATES.get(state.upper()) if isinstance(state, str) else None
    if wanted is None:
        raise InputValidationError(f"state must be STUCK or SUSPENDED, not {validation.shown(state)}")
    if rule.state in (RuleState.WAITING_APPROVAL, RuleState.INJECT):
        raise UnsupportedOperation(
            f"The rule is {rule.state.name}: it holds no locks to suspend or repair yet"
        )
    rule.state = wanted
    if wanted is RuleState.SUSPENDED:
        rule_history.record(session, [rule.id])  # it flushes the new state first
        return
    stuck = rowcount(
        session.execute(
            update(Lock)
            .where(Lock.rule_id == rule.id, Lock.state == LockState.REPLICATING)
            .values(state=LockState.STUCK)
        )
    )
    rule.locks_replicating_cnt -= stuck
    rule.locks_stuck_cnt += stuck
    rule.stuck_at = utcnow()
    rule.error = rule.error or "set STUCK by an update of the rule"
    session.execute(update(DatasetLock).where(DatasetLock.rule_id == rule.id).values(state=LockState.STUCK))
    try:  # files attached while the rule was frozen have no lock of it yet
        apply_rule(session, rule, only_unlocked=True)
    except PLACEMENT_ERRORS as exc:
        rule.error = keep_cause(rule.error, exc)
        settle_rules(session, [rule.id])


def set_child_rule(session: Session, rule: Rule, child_id: object) -> None:
    """Rucio's ``child_rule_id``: ``rule`` is replaced by the rule ``child_id`` on the same DID,
    as the parent of a move is: it goes as soon as the child is OK, at once if it already is.
    None dissolves the relationship, and the rule no longer expires (a move had made it expire)."""
    if child_id is None:
        if rule.child_rule_id is None:
            raise InputValidationError("Cannot detach child when no such relationship exists")
        rule.child_rule_id, rule.expires_at = None, None
        session.flush()  # the session does not autoflush: later reads in the unit see it
        return
    if not isinstance(child_id, str):
        raise InputValidationError(f"child_rule_id must be a rule id, not {validation.shown(child_id)}")
    if child_id == rule.id:
        raise InputValidationError("Self-referencing parent/child-relationship.")
    child = rule_row(session, child_id)
    if (child.scope, child.name) != (rule.scope, rule.name):
        raise InputValidationError("Parent and child rule must be set on the same dataset.")
    rule.child_rule_id = child.id
    session.flush()
    if child.state == RuleState.OK:
        purge_rule(session, rule)


def _change_account(session: Session, rule: Rule, account: str) -> None:
    if not account_exists(session, account):
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")
    if account == rule.account:
        return
    if rule_exists(session, rule.scope, rule.name, account, rule.rse_expression, rule.copies):
        raise DuplicateRule(f"{validation.shown(account)} already has the same rule on this DID")
    usage = session.execute(
        select(Lock.rse_id, func.count(), func.coalesce(func.sum(Lock.bytes), 0))
        .where(Lock.rule_id == rule.id)
        .group_by(Lock.rse_id)
    ).all()
    deltas: dict[tuple[str, str], tuple[int, int]] = {}
    for rse_id, files, nbytes in usage:
        deltas[(rule.account, rse_id)] = (-int(files), -int(nbytes))
        deltas[(account, rse_id)] = (int(files), int(nbytes))
    change_usage(session, deltas)
    session.execute(update(Lock).where(Lock.rule_id == rule.id).values(account=account))
    session.execute(update(DatasetLock).where(DatasetLock.rule_id == rule.id).values(account=account))
    rule.account = account


#: Options a move may change on the child rule (Rucio's ``override``).
MOVE_OVERRIDES = ("activity", "source_replica_expression", "comment", "priority")


def move_rule(
    session: Session, rule_id: str, rse_expression: str, override: dict[str, Any] | None = None
) -> str:
    """Move a rule to another expression: a child rule with the same options (but ``override``)
    is created and the parent, unlocked, is removed as soon as the child is OK (at once if it
    already is)."""
    override = override or {}
    unknown = set(override) - set(MOVE_OVERRIDES)
    if unknown:
        raise InputValidationError(f"{validation.shown(sorted(unknown)[0])} cannot be overridden in a move")
    rule = rule_row(session, rule_id)
    if rule.child_rule_id is not None:
        raise UnsupportedOperation(f"The replication rule {rule_id} is already being moved")
    if rule.state in (RuleState.WAITING_APPROVAL, RuleState.INJECT):
        raise UnsupportedOperation(f"a {rule.state.name} rule cannot be moved")
    lifetime = None if rule.expires_at is None else max(int((rule.expires_at - utcnow()).total_seconds()), 0)
    (child_id,) = add_rule(
        session,
        [{"scope": rule.scope, "name": rule.name}],
        rule.account,
        rule.copies,
        rse_expression,
        grouping=rule.grouping.name,
        weight=rule.weight,
        lifetime=lifetime,
        locked=rule.locked,
        source_replica_expression=override.get("source_replica_expression", rule.source_replica_expression),
        activity=override.get("activity", rule.activity),
        notify=rule.notification.name,
        purge_replicas=rule.purge_replicas,
        ignore_availability=rule.ignore_availability,
        priority=override.get("priority", rule.priority),
        comment=override.get("comment", rule.comments),
        meta=json.loads(rule.meta) if rule.meta else None,
        ignore_account_limit=rule.ignore_account_limit,
        subscription_id=rule.subscription_id,
    )
    rule.child_rule_id, rule.locked = child_id, False
    session.flush()
    if rule_row(session, child_id).state == RuleState.OK:
        purge_rule(session, rule)
    return child_id
