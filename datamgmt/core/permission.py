"""The permission policy: may ``issuer`` perform ``action`` with these arguments?

One table maps every action to one rule.  It is friendlier than Rucio's generic
policy in two places on purpose: owners may update and delete their own rules while
those are unlocked, and accounts may add and update their own subscriptions.  Anything
not in the table is refused, so a new endpoint that forgets to register its action fails
closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core.account import is_admin
from datamgmt.core.db.constants import ScopeStatus
from datamgmt.core.db.models import Rule, Scope

Check = Callable[[Session, str, dict[str, Any]], bool]

#: Actions only root and admins may perform: RSEs, accounts, limits, scopes, PID services.
ADMIN_ACTIONS = frozenset(
    {
        "add_rse", "update_rse", "del_rse",
        "add_rse_attribute", "del_rse_attribute",
        "add_protocol", "update_protocol", "del_protocol",
        "set_rse_limits", "delete_rse_limits", "set_rse_usage",
        "add_distance", "update_distance", "delete_distance",
        "add_account", "update_account", "del_account",
        "add_account_attribute", "del_account_attribute",
        "add_identity", "del_identity",
        "set_local_account_limit", "delete_local_account_limit",
        "set_global_account_limit", "delete_global_account_limit",
        "add_scope",
        "approve_rule", "deny_rule",
        "declare_bad_file_replicas",
        "list_requests", "cancel_request",
        "add_pid_service", "update_pid_service", "del_pid_service",
        "reopen_did",
    }
)  # fmt: skip

#: Actions that write in a namespace: allowed to the owner of every scope named.
SCOPE_ACTIONS = frozenset(
    {"add_did", "add_dids", "attach_dids", "detach_dids", "set_status", "set_metadata", "delete_metadata",
     "add_replicas", "update_replicas_states", "publish_did", "unpublish_did"}
)  # fmt: skip

#: Reading the catalogue is open to every authenticated account.
READ_ACTIONS = frozenset({"read"})


def _scopes_of(kwargs: dict[str, Any]) -> set[str]:
    scopes: Iterable[Any] = kwargs.get("scopes") or ([kwargs["scope"]] if "scope" in kwargs else [])
    return {scope for scope in scopes if isinstance(scope, str)}


def _owns_scopes(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    scopes = _scopes_of(kwargs)
    if not scopes:
        return False
    owners = dict(
        session.execute(
            select(Scope.scope, Scope.account).where(Scope.scope.in_(scopes), Scope.status != ScopeStatus.DELETED)
        ).all()
    )
    # An unknown scope is nobody's: the caller's core call reports it as not found to admins only.
    return owners.keys() == scopes and all(owner == issuer for owner in owners.values())


def _adds_own_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    return kwargs.get("account") in (None, issuer) and not kwargs.get("locked")


def _owns_unlocked_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    rule_id = kwargs.get("rule_id")
    row = session.get(Rule, rule_id) if isinstance(rule_id, str) else None
    if row is None or row.account != issuer or row.locked:
        return False
    # Handing a rule to another account is an admin's decision.
    options = kwargs.get("options") or {}
    return options.get("account", issuer) == issuer


def _for_own_account(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    return kwargs.get("account") == issuer


CHECKS: dict[str, Check] = {
    **dict.fromkeys(SCOPE_ACTIONS, _owns_scopes),
    **dict.fromkeys(READ_ACTIONS, lambda session, issuer, kwargs: True),
    "add_rule": _adds_own_rule,
    "del_rule": _owns_unlocked_rule,
    "update_rule": _owns_unlocked_rule,
    "add_subscription": _for_own_account,
    "update_subscription": _for_own_account,
}


def has_permission(session: Session, issuer: str | None, action: str, kwargs: dict[str, Any]) -> bool:
    """True when ``issuer`` may perform ``action``; anonymous callers may do nothing."""
    if not issuer:
        return False
    if is_admin(session, issuer):
        return True
    if action in ADMIN_ACTIONS:
        return False
    check = CHECKS.get(action)
    return check is not None and check(session, issuer, kwargs)
