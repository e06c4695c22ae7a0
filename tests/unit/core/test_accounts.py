"""Accounts, identities, tokens and scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from datamgmt.core import account, identity, scope, token
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import Account, Token
from datamgmt.core.db.types import utcnow
from datamgmt.exceptions import (
    AccountNotFound,
    CannotAuthenticate,
    Duplicate,
    InputValidationError,
    ScopeNotFound,
)
from tests.conftest import ROOT_PASSWORD


def test_add_and_get_account(session):
    account.add_account(session, "alice", "USER", email="a@example.org")
    info = account.get_account(session, "alice")
    assert (info.account, info.account_type, info.status) == ("alice", "USER", "ACTIVE")
    assert [a.account for a in account.list_accounts(session, account_type="USER")] == ["alice"]


@pytest.mark.parametrize("bad", ["Alice", "a" * 26, "", "al ice", "al;ice", None])
def test_invalid_account_names_are_refused_and_nothing_written(session, bad):
    with pytest.raises(InputValidationError):
        account.add_account(session, bad, "USER")
    assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_duplicate_account(session):
    account.add_account(session, "alice", "USER")
    with pytest.raises(Duplicate):
        account.add_account(session, "alice", "USER")


def test_unknown_account_type(session):
    with pytest.raises(InputValidationError):
        account.add_account(session, "alice", "ROBOT")


def test_admin_attribute(session):
    account.add_account(session, "alice", "USER")
    assert not account.is_admin(session, "alice")
    account.add_account_attribute(session, "alice", "admin", True)
    assert account.is_admin(session, "alice")
    assert account.is_admin(session, "root")


def test_password_is_stored_hashed_and_verified(session):
    account.add_account(session, "alice", "USER")
    identity.add_account_identity(session, "alice", "USERPASS", "alice", password="correct horse")
    stored = session.scalar(select(identity.Identity.password))
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert identity.verify_password("correct horse", identity.userpass_hash(session, "alice"))
    assert not identity.verify_password("wrong horse", identity.userpass_hash(session, "alice"))
    assert identity.userpass_hash(session, "bob") is None


def test_short_password_refused(session):
    account.add_account(session, "alice", "USER")
    with pytest.raises(InputValidationError):
        identity.add_account_identity(session, "alice", "USERPASS", "alice", password="short")


def _token_for(session, name: str) -> str:
    account.add_account(session, name, "USER")
    identity.add_account_identity(session, name, "USERPASS", name, password="long enough pw")
    return token.issue_token(session, name, name, IdentityType.USERPASS, 3600).token


def test_token_stored_hashed_and_validated(session):
    raw = _token_for(session, "alice")
    assert session.scalar(select(Token.token_hash)) != raw
    assert token.validate_token(session, raw).account == "alice"
    with pytest.raises(CannotAuthenticate):
        token.validate_token(session, raw + "x")


def test_token_dies_with_suspension(session):
    raw = _token_for(session, "alice")
    account.suspend_account(session, "alice")
    with pytest.raises(CannotAuthenticate):
        token.validate_token(session, raw)
    with pytest.raises(CannotAuthenticate):
        token.issue_token(session, "alice", "alice", IdentityType.USERPASS, 60)


def test_token_dies_with_identity_removal(session):
    raw = _token_for(session, "alice")
    identity.del_account_identity(session, "alice", "USERPASS", "alice")
    with pytest.raises(CannotAuthenticate):
        token.validate_token(session, raw)


def test_expired_token(session):
    raw = _token_for(session, "alice")
    session.execute(Token.__table__.update().values(expired_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(CannotAuthenticate):
        token.validate_token(session, raw)
    assert token.purge_expired_tokens(session) == 1


def test_scopes(session):
    account.add_account(session, "alice", "USER")
    scope.add_scope(session, "user.alice", "alice")
    assert scope.list_scopes(session, "alice") == ["user.alice"]
    assert scope.get_scope_owner(session, "user.alice") == "alice"
    with pytest.raises(Duplicate):
        scope.add_scope(session, "user.alice", "alice")
    with pytest.raises(ScopeNotFound):
        scope.get_scope_owner(session, "nope")
    with pytest.raises(AccountNotFound):
        scope.add_scope(session, "other", "nobody")
    with pytest.raises(InputValidationError):
        scope.add_scope(session, "bad scope", "alice")


def test_bootstrap_is_idempotent(session, root):
    from datamgmt.core.bootstrap import bootstrap

    assert not bootstrap(session, "root", "another-password", "21.T99999")
    assert identity.verify_password(ROOT_PASSWORD, identity.userpass_hash(session, "root"))
    assert account.is_admin(session, "root")
    assert [a.account for a in account.list_accounts(session)] == ["root"]
