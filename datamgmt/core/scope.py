"""Scopes: the namespaces of DIDs, each owned by one account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.account import LIVE_ACCOUNT, get_account
from datamgmt.core.db.constants import ScopeStatus
from datamgmt.core.db.models import Scope
from datamgmt.core.db.rows import FoundWrite
from datamgmt.exceptions import Duplicate, ScopeNotFound

_ADD_SCOPE = FoundWrite(Scope, LIVE_ACCOUNT, {}, ("scope", "account", "status"))


def add_scope(session: Session, scope: str, account: str) -> None:
    """One statement: the scope is inserted for the account if that exists and the scope does not."""
    validation.scope_name(scope)
    if not isinstance(account, str) or not _ADD_SCOPE(
        session, scope=scope, account=account, status=ScopeStatus.OPEN
    ):
        get_account(session, account)  # raises AccountNotFound; else the scope was there
        raise Duplicate(f"Scope {validation.shown(scope)} already exists!")


def get_scope_owner(session: Session, scope: str) -> str:
    """The owning account; raises ScopeNotFound for unknown or deleted scopes."""
    row = session.get(Scope, scope) if isinstance(scope, str) else None
    if row is None or row.status == ScopeStatus.DELETED:
        raise ScopeNotFound(f"Scope {validation.shown(scope)} does not exist")
    return row.account


def set_scope_owner(session: Session, scope: str, account: str) -> None:
    """Give a scope to another account, which then controls every DID in it (an admin's act)."""
    get_scope_owner(session, scope)
    get_account(session, account)
    row = session.get(Scope, scope)
    assert row is not None  # get_scope_owner refused unknown and deleted scopes
    row.account = account
    session.flush()


def list_scopes(session: Session, account: str | None = None) -> list[str]:
    query = select(Scope.scope).where(Scope.status != ScopeStatus.DELETED).order_by(Scope.scope)
    if account is not None:
        get_account(session, account)
        query = query.where(Scope.account == account)
    return list(session.scalars(query))


def list_scopes_with_owner(session: Session) -> list[dict[str, str]]:
    rows = session.execute(
        select(Scope.scope, Scope.account).where(Scope.status != ScopeStatus.DELETED).order_by(Scope.scope)
    )
    return [{"scope": scope, "account": account} for scope, account in rows]
