"""Session tokens: random, returned once, stored only as a sha256 hash.

A token is valid while it has not expired, its account is ACTIVE and, when it was
issued for an identity, that identity is still mapped to the account; suspension or
identity removal therefore ends every session at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import AccountStatus, IdentityType
from datamgmt.core.db.models import Account, AccountIdentity, Token
from datamgmt.core.db.types import utcnow
from datamgmt.exceptions import CannotAuthenticate


@dataclass(frozen=True)
class IssuedToken:
    token: str
    account: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenOwner:
    account: str
    identity: str | None
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    account: str,
    identity: str | None,
    identity_type: IdentityType | None,
    lifetime_seconds: int,
    ip: str | None = None,
) -> IssuedToken:
    status = session.scalar(select(Account.status).where(Account.account == account))
    if status != AccountStatus.ACTIVE:
        raise CannotAuthenticate(f"Cannot authenticate to account {account}: account is not active")
    # Rucio's shape <account>-<identity>-<appid>-<random> helps operators; we keep the
    # account prefix and make the rest unguessable.
    token = f"{account}-{secrets.token_urlsafe(32)}"
    now = utcnow()
    # Logging in sweeps the account's dead tokens, so the table does not grow without bound.
    session.execute(delete(Token).where(Token.account == account, Token.expired_at <= now))
    expires_at = now + timedelta(seconds=lifetime_seconds)
    session.add(
        Token(
            token_hash=_digest(token),
            account=account,
            identity=identity,
            identity_type=identity_type,
            expired_at=expires_at,
            ip=ip,
        )
    )
    session.flush()
    return IssuedToken(token=token, account=account, expires_at=expires_at)


def validate_token(session: Session, token: str) -> TokenOwner:
    """The owner of a live token, or CannotAuthenticate."""
    row = session.execute(
        select(Token, Account.status)
        .join(Account, Account.account == Token.account)
        .where(Token.token_hash == _digest(token))
    ).first()
    if row is None:
        raise CannotAuthenticate("Cannot authenticate with given credentials: unknown token")
    found, status = row
    if found.expired_at <= utcnow():
        raise CannotAuthenticate("Cannot authenticate with given credentials: token expired")
    if status != AccountStatus.ACTIVE:
        raise CannotAuthenticate(f"Cannot authenticate: account {found.account} is not active")
    if found.identity is not None and found.identity_type is not None:
        mapped = session.get(AccountIdentity, (found.identity, found.identity_type, found.account))
        if mapped is None:
            raise CannotAuthenticate("Cannot authenticate: the identity of this token was removed")
    return TokenOwner(account=found.account, identity=found.identity, expires_at=found.expired_at)




def purge_expired_tokens(session: Session) -> int:
    return session.execute(delete(Token).where(Token.expired_at <= utcnow())).rowcount or 0
