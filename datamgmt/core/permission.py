"""The permission policy: may ``issuer`` perform ``action`` with these arguments?

One table maps every action to one rule.  It is friendlier than Rucio's generic
policy in two places on purpose: owners may update and delete their own rules while
those are unlocked, and accounts may add and update their own subscriptions.  Anything
not in the table is refused, so a new endpoint that forgets to register its action fails
closed.

Replicas are written (registered, their states changed) by a user only in its own scopes
and only on deterministic RSEs whose ``type`` attribute marks them as user storage
(docs/permissions.md); rule options that delete or bypass (``purge_replicas``,
``ignore_availability``) are for admins, as in Rucio's policy.  A user may tombstone (have the
reaper delete) replicas in its own scopes, which Rucio leaves to admins: the core call refuses
every replica a rule still locks, so only data nobody protects can go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core.account import has_true_attribute, is_admin
from datamgmt.core.db.constants import IdentityType, ScopeStatus
from datamgmt.core.db.models import RSE, RSEAttribute, Rule, Scope
from datamgmt.core.identity import account_has_identity

Check = Callable[[Session, str, dict[str, Any]], bool]

#: Actions only root and admins may perform: RSEs, accounts, limits, scopes, PID services.
ADMIN_ACTIONS = frozenset(
    {
        "add_rse", "update_rse", "del_rse",
        "add_rse_attribute", "del_rse_attribute",
        "add_protocol", "update_protocol", "del_protocol",
        "set_rse_limits", "delete_rse_limits", "set_rse_usage",
        "add_distance", "update_distance", "delete_distance",
        "list_heartbeats", "send_heartbeats", "update_scope",
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
        "list_requests_history", "get_request_history_by_did", "get_request_metrics",
        "list_transfer_limits", "set_transfer_limit", "delete_transfer_limit", "get_status",
        "config_items", "config_get", "config_set", "config_remove_section", "config_remove_option",
        "update_lifetime_exception", "add_meta_convention", "resurrect", "export", "import",
        "add_qos_policy", "delete_qos_policy",
        "add_bad_pfns", "quarantine_file_replicas", "delete_replicas",
        "list_vos", "add_vo", "update_vo", "recover_vo_root_identity", "see_admin_pages",
    }
)  # fmt: skip

#: Actions that write in a namespace: allowed to the owner of every scope named.
SCOPE_ACTIONS = frozenset(
    {"add_did", "add_dids", "attach_dids", "detach_dids", "set_status", "set_metadata", "delete_metadata",
     "publish_did", "unpublish_did"}
)  # fmt: skip

#: Actions that write replica records: the scope owner, on an RSE open to user writes.
REPLICA_ACTIONS = frozenset({"add_replicas", "update_replicas_states"})

#: The RSE attribute, and its values, that open an RSE to replicas written by USER accounts.
#: Rucio's generic policy recognises these storage kinds by RSE-name suffix; its ATLAS policy
#: reads them from this attribute, which is what we do.
USER_WRITE_ATTRIBUTE = "type"
USER_WRITE_TYPES = frozenset({"SCRATCHDISK", "USERDISK", "LOCALGROUPDISK", "MOCK"})

#: The account attribute that lets a USER account get signed URLs (Rucio's name).
SIGN_URL_ATTRIBUTE = "sign-url"

#: Rule options that make a rule destroy data or pass over unavailable RSEs: admins only.
ADMIN_RULE_OPTIONS = ("purge_replicas", "ignore_availability")

#: Reading the catalogue is open to every authenticated account, and so is reporting a replica as
#: suspicious (Rucio's policy: a report changes nothing until an admin declares it bad).
READ_ACTIONS = frozenset({"read", "declare_suspicious_file_replicas"})


def _scopes_of(kwargs: dict[str, Any]) -> set[str]:
    scopes: Iterable[Any] = kwargs.get("scopes") or ([kwargs["scope"]] if "scope" in kwargs else [])
    return {scope for scope in scopes if isinstance(scope, str)}


def _owns_scopes(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The owner of every scope named."""
    scopes = _scopes_of(kwargs)
    if not scopes:
        return False
    owners = dict(
        session.execute(
            select(Scope.scope, Scope.account).where(
                Scope.scope.in_(scopes), Scope.status != ScopeStatus.DELETED
            )
        )
        .tuples()
        .all()
    )
    # An unknown scope is nobody's: the caller's core call reports it as not found to admins only.
    return owners.keys() == scopes and all(owner == issuer for owner in owners.values())


def _user_writable_rse(session: Session, rse: object) -> bool:
    """Deterministic (paths come from the algorithm, never from the caller) and typed as user storage."""
    if not isinstance(rse, str):
        return False
    row = session.execute(
        select(RSE.deterministic, RSEAttribute.value)
        .outerjoin(RSEAttribute, (RSEAttribute.rse_id == RSE.id) & (RSEAttribute.key == USER_WRITE_ATTRIBUTE))
        .where(RSE.rse == rse, RSE.deleted.is_(False))
    ).first()
    return row is not None and row.deterministic and (row.value or "").upper() in USER_WRITE_TYPES


def _writes_own_replicas(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The owner of every scope named, on a deterministic RSE typed as user storage."""
    return _owns_scopes(session, issuer, kwargs) and _user_writable_rse(session, kwargs.get("rse"))


def _admin_options(options: object) -> bool:
    """True when rule arguments or options turn on an admin-only option."""
    return isinstance(options, dict) and any(options.get(option) for option in ADMIN_RULE_OPTIONS)


def _adds_own_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """Any account, for itself: neither locked nor with an admin-only option."""
    return kwargs.get("account") in (None, issuer) and not kwargs.get("locked") and not _admin_options(kwargs)


def _owns_unlocked_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The rule's owner while the rule is unlocked, setting no admin-only option.

    The owner may not hand the rule to another account either: that is an admin's decision."""
    rule_id = kwargs.get("rule_id")
    row = session.get(Rule, rule_id) if isinstance(rule_id, str) else None
    if row is None or row.account != issuer or row.locked or _admin_options(kwargs):
        return False
    # Handing a rule to another account is an admin's decision.
    options = kwargs.get("options") or {}
    return options.get("account", issuer) == issuer and not _admin_options(options)


#: Rule options whose owner may change them even on a locked rule, as in Rucio: they change how
#: the rule's transfers are retried and where they read from, never what the rule protects.
TRANSFER_OPTIONS = frozenset({"boost_rule", "source_replica_expression"})


def _updates_own_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The rule's owner: its transfer options always, anything else while it is unlocked.

    Other options as for ``del_rule``: the owner keeps the rule and sets no admin-only option."""
    options = kwargs.get("options")
    if isinstance(options, dict) and options and set(options) <= TRANSFER_OPTIONS:
        return _owns_rule(session, issuer, kwargs)
    return _owns_unlocked_rule(session, issuer, kwargs)


def _for_own_account(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The subscription's own account, when its rules ask for no admin-only option."""
    rules = kwargs.get("replication_rules") or []
    return kwargs.get("account") == issuer and not any(_admin_options(rule) for rule in rules)


def _owns_rule(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The rule's owner.

    Its own account may read why its transfers failed."""
    rule_id = kwargs.get("rule_id")
    row = session.get(Rule, rule_id) if isinstance(rule_id, str) else None
    return row is not None and row.account == issuer


def _may_sign_urls(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """An account with the attribute ``sign-url=true``.

    Rucio's ``get_signed_url`` policy (root and admins pass anyway)."""
    return has_true_attribute(session, issuer, SIGN_URL_ATTRIBUTE)


def _own_identity(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """An account the identity is mapped to.

    A user may look up its own identities only."""
    kind, identity = kwargs.get("identity_type"), kwargs.get("identity")
    return (
        isinstance(identity, str)
        and isinstance(kind, IdentityType)
        and account_has_identity(session, issuer, identity, kind)
    )


def _anyone(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """Any account."""
    return True


def _is_the_account(session: Session, issuer: str, kwargs: dict[str, Any]) -> bool:
    """The account itself."""
    return kwargs.get("account") == issuer


CHECKS: dict[str, Check] = {
    **dict.fromkeys(SCOPE_ACTIONS, _owns_scopes),
    "set_tombstone": _owns_scopes,
    **dict.fromkeys(REPLICA_ACTIONS, _writes_own_replicas),
    **dict.fromkeys(READ_ACTIONS, _anyone),
    "add_rule": _adds_own_rule,
    "del_rule": _owns_unlocked_rule,
    "update_rule": _updates_own_rule,
    "reduce_rule": _owns_unlocked_rule,
    "add_subscription": _for_own_account,
    "update_subscription": _for_own_account,
    "list_rule_transfers": _owns_rule,
    # An account's identities and e-mail address: the account itself and admins (issue 21).
    "read_account_private": _is_the_account,
    "add_lifetime_exception": _anyone,
    "follow_did": _is_the_account,
    "list_accounts_for_identity": _own_identity,
    "get_signed_url": _may_sign_urls,
}


def has_permission(session: Session, issuer: str | None, action: str, kwargs: dict[str, Any]) -> bool:
    """True when ``issuer`` may perform ``action``; anonymous callers may do nothing."""
    if not issuer:
        return False
    if action in READ_ACTIONS:  # open to every account: no admin lookup on the commonest call
        return True
    if is_admin(session, issuer):
        return True
    if action in ADMIN_ACTIONS:
        return False
    check = CHECKS.get(action)
    return check is not None and check(session, issuer, kwargs)
