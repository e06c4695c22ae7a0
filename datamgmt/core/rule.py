"""Replication rules: "keep N copies of this DID on RSEs matching this expression".

This module is a rule's creation and approval, the judge's entry points, and reading.  What
changes a rule afterwards (update, move, deletion and expiry) is
:mod:`datamgmt.core.rule_update`.  Where a rule's locks go (planning with the solver, then
writing the locks) is :mod:`datamgmt.core.rule_placement`: planning raises every placement
error before anything is written, which is also what makes :func:`explain_rule` a faithful
dry run.

Functions the daemons call: :func:`apply_injected_rule` (judge-injector),
:func:`evaluate_did_changes` (judge-evaluator) and :func:`repair_rule` (judge-repairer), each
over its queue in ``workqueue.py``; the judge-cleaner's is in ``rule_update.py`` and the
conveyor's in ``request.py``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, select, tuple_, update
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import rule_history, validation, wakeup, workqueue
from datamgmt.core.account import account_exists
from datamgmt.core.db import listing
from datamgmt.core.db.constants import (
    DIDType,
    LockState,
    RequestState,
    RSEType,
    RuleGrouping,
    RuleNotification,
    RuleState,
)
from datamgmt.core.db.models import RSE, Content, DataIdentifier, Lock, Request, Rule
from datamgmt.core.db.point_reads import PointRead
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.core.did import get_did_row
from datamgmt.core.did_content import descendants_cte, file_keys_query, list_all_parents
from datamgmt.core.expression import parse_expression
from datamgmt.core.keys import chunks, keys_in
from datamgmt.core.lock import PRESENT, WantedLock, load_replicas, retry_stuck_locks
from datamgmt.core.lock_state import FROZEN, purge_rule, release_locks, settle_rules
from datamgmt.core.rule_placement import allowed_sources, apply_rule, load_files, placement_targets, plan_rule
from datamgmt.exceptions import (
    AccountNotFound,
    DuplicateRule,
    InputValidationError,
    InsufficientAccountLimit,
    InsufficientTargetRSEs,
    InvalidRSEExpression,
    InvalidSourceReplicaExpression,
    InvalidValueForKey,
    RSEOverQuota,
    RSEWriteBlocked,
    RuleNotFound,
    StagingAreaRuleRequiresLifetime,
    UnsupportedOperation,
)

DEFAULT_ACTIVITY = "User Subscriptions"
#: Errors of planning that leave an asynchronous rule SUSPENDED or a repaired rule STUCK.
PLACEMENT_ERRORS = (
    InsufficientAccountLimit,
    InsufficientTargetRSEs,
    RSEOverQuota,
    InvalidRSEExpression,
    RSEWriteBlocked,
)


# --- creation --------------------------------------------------------------------------------
def _count_files(session: Session, did: DataIdentifier) -> int:
    if did.did_type == DIDType.FILE:
        return 1
    keys = file_keys_query(did.scope, did.name, did.did_type).subquery()
    return int(session.scalar(select(func.count()).select_from(keys)) or 0)


def lifetime_expiry(lifetime: int | None) -> datetime | None:
    """When a rule with ``lifetime`` seconds expires (None: never); shared with updates."""
    if lifetime is None:
        return None
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 0:
        raise InputValidationError("lifetime must be a non-negative number of seconds")
    return utcnow() + timedelta(seconds=lifetime)


def _check_copies(copies: Any) -> int:
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise InvalidValueForKey("copies must be a positive integer")
    return copies


def rule_exists(session: Session, scope: str, name: str, account: str, expression: str, copies: int) -> bool:
    """Whether the account already has this rule: Rucio's duplicate check, also for a change of owner."""
    return (
        session.scalar(
            select(Rule.id).where(
                Rule.scope == scope,
                Rule.name == name,
                Rule.account == account,
                Rule.rse_expression == expression,
                Rule.copies == copies,
            )
        )
        is not None
    )


def async_threshold() -> int:
    """Rules with more locks than this start as INJECT (``[judge] async_lock_threshold``)."""
    return get_config().get_int("judge", "async_lock_threshold", 10000)


def add_rule(
    session: Session,
    dids: Sequence[dict[str, Any]],
    account: str,
    copies: int,
    rse_expression: str,
    grouping: str = "DATASET",
    weight: str | None = None,
    lifetime: int | None = None,
    locked: bool = False,
    source_replica_expression: str | None = None,
    activity: str = DEFAULT_ACTIVITY,
    notify: str | None = None,
    purge_replicas: bool = False,
    ignore_availability: bool = False,
    ask_approval: bool = False,
    asynchronous: bool = False,
    priority: int = 3,
    comment: str | None = None,
    meta: dict[str, Any] | None = None,
    ignore_account_limit: bool = False,
    subscription_id: str | None = None,
    split_container: bool = False,
) -> list[str]:
    """Create one rule per DID; returns their ids (Rucio's ``add_rule``, reference §4.2).

    A rule starts WAITING_APPROVAL with ``ask_approval``; INJECT when ``asynchronous`` or
    when it would create more than ``[judge] async_lock_threshold`` locks (the
    judge-injector applies it with :func:`apply_injected_rule`); otherwise it is applied
    now and is OK, REPLICATING or STUCK.  Without a lifetime a rule on a TAPE RSE is locked, and
    one on a ``staging_area`` RSE is refused (a staging area only holds files for a while).
    With ``split_container`` a rule on a container starts INJECT and the injector replaces it
    by one rule per dataset below it (:func:`apply_injected_rule`), as Rucio does.
    """
    copies = _check_copies(copies)
    if not account_exists(session, account):
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")
    grouping_value = RuleGrouping.parse(grouping)
    notification = RuleNotification.parse(notify) if notify else RuleNotification.NO
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
        raise InputValidationError("priority must be an integer from 1 to 5")
    expires_at = lifetime_expiry(lifetime)
    rses = parse_expression(session, rse_expression, for_write=True, ignore_availability=ignore_availability)
    if lifetime is None and any(r["staging_area"] for r in rses):
        raise StagingAreaRuleRequiresLifetime("A rule on a staging area RSE needs a lifetime")
    if lifetime is None and any(RSEType.parse(r["rse_type"]) == RSEType.TAPE for r in rses):
        locked = True
    ids: list[str] = []
    for did in dids:
        scope, name = validation.scope_name(did.get("scope")), validation.did_name(did.get("name"))
        row = get_did_row(session, scope, name)
        if rule_exists(session, scope, name, account, rse_expression, copies):
            raise DuplicateRule(
                "A duplicate rule for this account, did, rse_expression and copies already exists"
            )
        rule = Rule(
            id=new_id(),
            subscription_id=subscription_id,
            account=account,
            scope=scope,
            name=name,
            did_type=row.did_type,
            state=RuleState.REPLICATING,
            rse_expression=rse_expression,
            copies=copies,
            expires_at=expires_at,
            weight=weight,
            locked=bool(locked),
            grouping=grouping_value,
            source_replica_expression=source_replica_expression,
            activity=activity,
            notification=notification,
            purge_replicas=bool(purge_replicas),
            ignore_availability=bool(ignore_availability),
            ignore_account_limit=bool(ignore_account_limit),
            priority=priority,
            comments=comment,
            meta=json.dumps(meta) if meta is not None else None,
            locks_ok_cnt=0,
            locks_replicating_cnt=0,
            locks_stuck_cnt=0,
            split_container=bool(split_container),
        )
        session.add(rule)
        session.flush()
        if ask_approval:
            rule.state = RuleState.WAITING_APPROVAL
        elif (
            asynchronous
            or (split_container and row.did_type == DIDType.CONTAINER)
            or _count_files(session, row) * copies > async_threshold()
        ):
            rule.state = RuleState.INJECT
            wakeup.notify(session, workqueue.INJECT_RULES)
        else:
            allowed_sources(session, rule)
            apply_rule(session, rule)
        session.flush()
        ids.append(rule.id)
    rule_history.record(session, ids)
    return ids


def rule_row(session: Session, rule_id: str, *, lock: bool = False) -> Rule:
    """The rule, or RuleNotFound; with ``lock``, read under a row lock (PostgreSQL), so that
    a deletion committed meanwhile is seen as the rule gone rather than failing the write."""
    options: dict[str, Any] = {"with_for_update": True, "populate_existing": True} if lock else {}
    row = session.get(Rule, rule_id, **options) if isinstance(rule_id, str) else None
    if row is None:
        raise _not_found(rule_id)
    return row


def _not_found(rule_id: object) -> RuleNotFound:
    return RuleNotFound(f"No replication rule found with the id {validation.shown(rule_id)}")


def apply_injected_rule(session: Session, rule_id: str) -> RuleState:
    """Apply an INJECT rule (the judge-injector's work); returns its new state.

    A rule that cannot be placed (quota, space, targets, expression) becomes SUSPENDED
    with the error, as Rucio's injector does; nothing else is written then.
    """
    rule = rule_row(session, rule_id)
    if rule.state != RuleState.INJECT:
        return rule.state
    if rule.split_container and rule.did_type == DIDType.CONTAINER:
        return _split_container(session, rule)
    rule.state = RuleState.REPLICATING
    try:
        apply_rule(session, rule)
    except PLACEMENT_ERRORS as exc:
        rule.state, rule.error = RuleState.SUSPENDED, str(exc)[:255]
        session.flush()
    return rule.state


def _split_container(session: Session, rule: Rule) -> RuleState:
    """Replace a ``split_container`` rule by asynchronous DATASET-grouped rules on each dataset
    below its container (those the account has no rule on with this expression yet), with its
    copies, expression, remaining lifetime, activity, priority and comment; then remove it.

    Returns OK for the removed rule: what it asked for is now the dataset rules' job."""
    tree = descendants_cte(rule.scope, rule.name)
    datasets = session.execute(
        select(tree.c.scope, tree.c.name)
        .where(tree.c.type == DIDType.DATASET)
        .distinct()
        .except_(
            select(Rule.scope, Rule.name).where(
                Rule.account == rule.account, Rule.rse_expression == rule.rse_expression
            )
        )
        .order_by("scope", "name")
    ).all()
    lifetime = None
    if rule.expires_at is not None:
        lifetime = max(1, int((rule.expires_at - utcnow()).total_seconds()))
    notify = None if rule.notification is RuleNotification.NO else rule.notification.value
    if datasets:
        add_rule(
            session,
            [{"scope": scope, "name": name} for scope, name in datasets],
            rule.account,
            rule.copies,
            rule.rse_expression,
            grouping="DATASET",
            lifetime=lifetime,
            activity=rule.activity,
            notify=notify,
            ignore_availability=rule.ignore_availability,
            asynchronous=True,
            priority=rule.priority,
            comment=rule.comments,
            ignore_account_limit=True,
        )
    purge_rule(session, rule)
    return RuleState.OK


# --- approval --------------------------------------------------------------------------------
def approve_rule(session: Session, rule_id: str) -> None:
    """Approve a WAITING_APPROVAL rule: it waives quota and goes to INJECT for the injector."""
    rule = rule_row(session, rule_id)
    if rule.state != RuleState.WAITING_APPROVAL:
        raise UnsupportedOperation(f"rule {rule_id} is {rule.state.name}, not WAITING_APPROVAL")
    rule.state, rule.ignore_account_limit = RuleState.INJECT, True
    wakeup.notify(session, workqueue.INJECT_RULES)
    session.flush()


def deny_rule(session: Session, rule_id: str, reason: str | None = None) -> None:
    """Deny a WAITING_APPROVAL rule: it is removed (it holds no locks yet)."""
    rule = rule_row(session, rule_id)
    if rule.state != RuleState.WAITING_APPROVAL:
        raise UnsupportedOperation(f"rule {rule_id} is {rule.state.name}, not WAITING_APPROVAL")
    purge_rule(session, rule)


# --- the judge -------------------------------------------------------------------------------
def evaluate_did_changes(session: Session, scope: str, name: str) -> int:
    """Bring the rules on a DID and on all its ancestors in line with its content now (the
    judge-evaluator's work after attach or detach); returns how many rules were evaluated.

    Per rule, set-based: locks on files no longer under the rule's DID are released; files
    without a lock of the rule get them, joining the RSEs their dataset (ALL: the DID)
    already uses, else placed by the solver.  Frozen rules (SUSPENDED, WAITING_APPROVAL,
    INJECT) are skipped.  Then the attached contents are marked evaluated.
    """
    dids = [(scope, name)] + [(p["scope"], p["name"]) for p in list_all_parents(session, scope, name)]
    rules = session.scalars(
        select(Rule)
        .where(keys_in((Rule.scope, Rule.name), dids), Rule.state.not_in(FROZEN))
        .order_by(Rule.created_at, Rule.id)
    ).all()
    for rule in rules:
        keys = file_keys_query(rule.scope, rule.name, rule.did_type)
        release_locks(session, rule, [tuple_(Lock.scope, Lock.name).not_in(keys)])
        apply_rule(session, rule, only_unlocked=True)
    session.execute(
        update(Content)
        .where(Content.scope == scope, Content.name == name, Content.rule_evaluation.is_(True))
        .values(rule_evaluation=False)
    )
    return len(rules)


def repair_rule(session: Session, rule_id: str) -> RuleState:
    """Repair a STUCK rule (the judge-repairer's work); returns its new state.

    Stuck longer than ``[judge] stuck_suspend_hours`` -> SUSPENDED.  Otherwise STUCK locks on
    RSEs that are still writable targets are retried there (a source may exist now); the
    others are released with their file's locks and the files placed again by the solver,
    which no longer offers the RSEs that dropped out.  Planning errors keep the rule STUCK
    with the error.
    """
    rule = rule_row(session, rule_id)
    if rule.state != RuleState.STUCK:
        return rule.state
    hours = get_config().get_float("judge", "stuck_suspend_hours", 48.0)
    if rule.stuck_at is not None and rule.stuck_at < utcnow() - timedelta(hours=hours):
        rule.state = RuleState.SUSPENDED
        session.flush()
        return rule.state
    try:
        targets = placement_targets(session, rule)
        allowed = allowed_sources(session, rule)
    except (*PLACEMENT_ERRORS, InvalidSourceReplicaExpression) as exc:
        rule.error = keep_cause(rule.error, exc)
        session.flush()
        return rule.state
    usable = {r for r, w in zip(targets.rse_ids, targets.write_available, strict=True) if w}
    stuck_keys = select(Lock.scope.label("scope"), Lock.name.label("name")).where(
        Lock.rule_id == rule.id, Lock.state == LockState.STUCK
    )
    rows = session.execute(
        select(Lock.scope, Lock.name, Lock.rse_id, Lock.bytes, DataIdentifier.adler32, DataIdentifier.md5)
        .join(DataIdentifier, and_(DataIdentifier.scope == Lock.scope, DataIdentifier.name == Lock.name))
        .where(Lock.rule_id == rule.id, Lock.state == LockState.STUCK)
    ).all()
    replicas = load_replicas(session, stuck_keys)
    stay = [WantedLock(s, n, r, b or 0, a, m) for s, n, r, b, a, m in rows if r in usable]
    moved = sorted({(s, n) for s, n, r, *_ in rows if r not in usable})
    retry_stuck_locks(session, rule, stay, replicas, allowed)
    for part in chunks(moved):
        release_locks(session, rule, [keys_in((Lock.scope, Lock.name), part)])
    if moved:
        try:
            apply_rule(session, rule, only_unlocked=True)
        except PLACEMENT_ERRORS as exc:
            rule.error = keep_cause(rule.error, exc)
    session.flush()
    settle_rules(session, [rule.id])
    return rule.state


#: Joins a rule's recorded cause and a later failure of the repairer.
THEN = " | then: "


def keep_cause(cause: str | None, later: Exception) -> str:
    """The rule's error after the repairer failed with ``later``: the recorded cause (the
    storage error or quota that made it STUCK) stays first, because that is what an operator
    must fix; the repairer's own failure (often "RSE Expression resulted in an empty set",
    once the broken RSE is excluded) follows it.  Repeated repairs replace, not pile up."""
    first = (cause or "").split(THEN)[0]
    return (f"{first}{THEN}{later}" if first and first != str(later) else str(later))[:255]


# --- reading ---------------------------------------------------------------------------------
def rule_dict(rule: Any) -> dict[str, Any]:
    """A rule (an entity, or a row named as its columns) with Rucio's field names."""
    return {
        "id": rule.id,
        "subscription_id": rule.subscription_id,
        "account": rule.account,
        "scope": rule.scope,
        "name": rule.name,
        "did_type": rule.did_type.name,
        "state": rule.state.name,
        "error": rule.error,
        "rse_expression": rule.rse_expression,
        "copies": rule.copies,
        "expires_at": rule.expires_at,
        "weight": rule.weight,
        "locked": rule.locked,
        "locks_ok_cnt": rule.locks_ok_cnt,
        "locks_replicating_cnt": rule.locks_replicating_cnt,
        "locks_stuck_cnt": rule.locks_stuck_cnt,
        "source_replica_expression": rule.source_replica_expression,
        "activity": rule.activity,
        "grouping": rule.grouping.name,
        "notification": rule.notification.name,
        "stuck_at": rule.stuck_at,
        "purge_replicas": rule.purge_replicas,
        "ignore_availability": rule.ignore_availability,
        "ignore_account_limit": rule.ignore_account_limit,
        "priority": rule.priority,
        "comments": rule.comments,
        "child_rule_id": rule.child_rule_id,
        "split_container": rule.split_container,
        "meta": json.loads(rule.meta) if rule.meta else None,
        "eol_at": rule.eol_at,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


#: Every column of one rule, read as a row rather than an ORM entity (clients poll
#: ``GET /rules/{id}`` while a rule is applied).
_ONE_RULE = PointRead(select(*Rule.__table__.columns).where(Rule.id == bindparam("rule_id")))


def get_rule(session: Session, rule_id: str) -> dict[str, Any]:
    row = _ONE_RULE.first(session, rule_id=rule_id) if isinstance(rule_id, str) else None
    if row is None:
        raise _not_found(rule_id)
    return rule_dict(row)


RULE_FILTERS = (
    "id",
    "scope",
    "name",
    "account",
    "state",
    "rse_expression",
    "did_type",
    "grouping",
    "activity",
    "subscription_id",
)


def list_associated_rules(session: Session, scope: str, name: str) -> Iterator[dict[str, Any]]:
    """The rules that hold a file: those with a lock on it, whichever DID they were made on."""
    holding = exists().where(Lock.rule_id == Rule.id, Lock.scope == scope, Lock.name == name)
    for rule in session.scalars(select(Rule).where(holding).order_by(Rule.created_at, Rule.id)):
        yield rule_dict(rule)


def list_rules(session: Session, filters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Rules matching equality filters on ``RULE_FILTERS``, oldest first."""
    query = select(Rule).order_by(Rule.created_at, Rule.id)
    for key, value in (filters or {}).items():
        if key not in RULE_FILTERS:
            raise InputValidationError(f"rules cannot be filtered by {validation.shown(key)}")
        if key == "state":
            value = RuleState.parse(value)
        elif key == "did_type":
            value = DIDType.parse(value)
        elif key == "grouping":
            value = RuleGrouping.parse(value)
        query = query.where(getattr(Rule, key) == value)
    for rule in listing.scalars(session, query):
        yield rule_dict(rule)


def list_rule_locks(session: Session, rule_id: str) -> Iterator[dict[str, Any]]:
    """The rule's locks: scope, name, rse_id, rse, state, rule_id, account, bytes, and for a
    REPLICATING lock ``transfer_state``, what the transfer tool last said of its request in
    flight (FTS's STAGING from tape, ACTIVE, ARCHIVING to tape ...), or None."""
    rule_row(session, rule_id)
    transfer_state = (
        select(Request.external_state)
        .where(
            Request.scope == Lock.scope,
            Request.name == Lock.name,
            Request.dest_rse_id == Lock.rse_id,
            Request.state == RequestState.SUBMITTED,
        )
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(Lock, RSE.rse, transfer_state)
        .join(RSE, RSE.id == Lock.rse_id)
        .where(Lock.rule_id == rule_id)
        .order_by(Lock.scope, Lock.name, RSE.rse)
    )
    for lock, rse, phase in listing.rows(session, query):
        yield {
            "scope": lock.scope,
            "name": lock.name,
            "rse_id": lock.rse_id,
            "rse": rse,
            "state": lock.state.name,
            "rule_id": lock.rule_id,
            "account": lock.account,
            "bytes": lock.bytes,
            "created_at": lock.created_at,
            "updated_at": lock.updated_at,
            "transfer_state": phase if lock.state is LockState.REPLICATING else None,
        }


# --- dry run ---------------------------------------------------------------------------------
def explain_rule(
    session: Session,
    dids: Sequence[dict[str, Any]],
    account: str,
    copies: int,
    rse_expression: str,
    grouping: str = "DATASET",
    weight: str | None = None,
    ignore_availability: bool = False,
    ignore_account_limit: bool = False,
) -> list[dict[str, Any]]:
    """What ``add_rule`` would do, writing nothing: per DID the chosen RSEs per group,
    bytes to transfer per destination, files already in place, and the quota left after.

    Raises what ``add_rule`` would raise for placement (InsufficientTargetRSEs, quota...).
    """
    copies = _check_copies(copies)
    result = []
    for did in dids:
        scope, name = validation.scope_name(did.get("scope")), validation.did_name(did.get("name"))
        row = get_did_row(session, scope, name)
        rule = Rule(
            id=new_id(),
            account=account,
            scope=scope,
            name=name,
            did_type=row.did_type,
            copies=copies,
            rse_expression=rse_expression,
            grouping=RuleGrouping.parse(grouping),
            weight=weight,
            ignore_availability=ignore_availability,
            ignore_account_limit=ignore_account_limit,
        )
        targets = placement_targets(session, rule)
        files = load_files(session, rule)
        replicas = load_replicas(session, file_keys_query(scope, name, row.did_type))
        plan = plan_rule(session, rule, files, replicas, targets)
        names = dict(zip(targets.rse_ids, targets.names, strict=True))
        to_transfer: dict[str, int] = defaultdict(int)
        in_place = 0
        charged: dict[str, int] = defaultdict(int)
        for f, key in enumerate(files.keys):
            for rse_id in plan.rse_of[f]:
                charged[rse_id] += files.bytes[f]
                if replicas.get(key, {}).get(rse_id) in PRESENT:
                    in_place += 1
                else:
                    to_transfer[names[rse_id]] += files.bytes[f]
        quota_after = {}
        for rse_id, nbytes in charged.items():
            left = targets.quota.for_rse(rse_id)
            quota_after[names[rse_id]] = left if left < 0 else left - nbytes
        result.append(
            {
                "scope": scope,
                "name": name,
                "locks": sum(len(r) for r in plan.rse_of),
                "files_in_place": in_place,
                "groups": [
                    {"scope": s, "name": n, "rses": [names[r] for r in rses]}
                    for (s, n), rses in plan.item_rses.items()
                ],
                "bytes_to_transfer": dict(sorted(to_transfer.items())),
                "quota_after": dict(sorted(quota_after.items())),
            }
        )
    return result
