"""Logging in: one path for the REST routes (``/auth/*``) and the web pages' sign-in form.

A password is checked between two short transactions, never inside a write one: scrypt
takes a good fraction of a second, and on SQLite a write transaction holds the one write
lock.  An unknown username costs the same hash as a known one, and gets the same answer.
Failed logins count against the source address and the identity (core/throttle.py); a
locked one gets 429 with ``Retry-After`` before any hash is computed.
"""

from __future__ import annotations

from flask import current_app, request

from datamgmt.api.auth import LOGIN_LIMITS_KEY, account_for_identity
from datamgmt.api.context import unit_of_work
from datamgmt.core import throttle
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.identity import hash_password, needs_rehash, set_password, userpass_hash, verify_password
from datamgmt.core.token import IssuedToken, issue_token
from datamgmt.core.validation import account_shown
from datamgmt.exceptions import CannotAuthenticate, TooManyLoginAttempts


def userpass_login(username: str, password: str, wanted: str | None) -> IssuedToken:
    """A token for ``username``/``password``, as account ``wanted`` or the identity's only one."""
    if not username or not password:
        raise CannotAuthenticate("Cannot authenticate without passing all required arguments")
    refuse_if_locked(username)
    with unit_of_work(read_only=True) as session:
        stored = userpass_hash(session, username)
    verified = verify_password(password, stored)  # as slow for an unknown user as for a known one
    if stored is None or not verified:
        target = f" to account {account_shown(wanted)}" if wanted else ""
        raise failed(username, CannotAuthenticate(f"Cannot authenticate{target} with given credentials"))
    new_hash = hash_password(password) if needs_rehash(stored) else None
    return issue(username, IdentityType.USERPASS, wanted, new_hash)


def issue(identity: str, kind: IdentityType, wanted: str | None, new_hash: str | None = None) -> IssuedToken:
    """A token for the account ``wanted`` names, or the identity's only one."""
    with unit_of_work(read_only=False) as session:
        account = account_for_identity(session, identity, kind, wanted)
        if new_hash is not None:
            set_password(session, identity, hashed=new_hash)
        throttle.forget(session, [throttle.identity_key(identity)])
        return issue_token(
            session, account, identity, kind, current_app.config["TOKEN_LIFETIME"], ip=_source()[:39]
        )


def _source() -> str:
    return request.remote_addr or ""


def _limits(identity: str | None) -> dict[str, throttle.Limit]:
    per_source, per_identity = current_app.extensions[LOGIN_LIMITS_KEY]
    limits = {throttle.source_key(_source()): per_source}
    if identity:
        limits[throttle.identity_key(identity)] = per_identity
    return limits


def refuse_if_locked(identity: str | None) -> None:
    """429 with Retry-After while this source or identity is locked out; one short read."""
    with unit_of_work(read_only=True) as session:
        wait = throttle.retry_after(session, list(_limits(identity)))
    if wait:
        raise TooManyLoginAttempts(wait)


def failed(identity: str | None, error: CannotAuthenticate) -> CannotAuthenticate:
    """Count a failed login (one short write) and return the error to raise."""
    with unit_of_work(read_only=False) as session:
        throttle.record_event(session, _limits(identity))
    return error
