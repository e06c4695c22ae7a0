"""Accounts, their identities, tokens and failed logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from datamgmt.core.db.constants import (
    AccountStatus,
    AccountType,
    IdentityType,
)
from datamgmt.core.db.models.base import ACCOUNT, Base, Timestamped
from datamgmt.core.db.types import Code, utcnow


class Account(Timestamped, Base):
    __tablename__ = "accounts"
    account: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)
    account_type: Mapped[AccountType] = mapped_column(Code(AccountType))
    status: Mapped[AccountStatus] = mapped_column(Code(AccountStatus), default=AccountStatus.ACTIVE)
    email: Mapped[str | None] = mapped_column(String(255))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountAttribute(Timestamped, Base):
    __tablename__ = "account_attr_map"
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Identity(Timestamped, Base):
    __tablename__ = "identities"
    identity: Mapped[str] = mapped_column(String(2048), primary_key=True)
    identity_type: Mapped[IdentityType] = mapped_column(Code(IdentityType, 8), primary_key=True)
    #: scrypt hash ("scrypt$n$r$p$salt$hash") for USERPASS, else NULL.
    password: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountIdentity(Timestamped, Base):
    __tablename__ = "account_map"
    identity: Mapped[str] = mapped_column(String(2048), primary_key=True)
    identity_type: Mapped[IdentityType] = mapped_column(Code(IdentityType, 8), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"), primary_key=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        ForeignKeyConstraint(
            ["identity", "identity_type"], ["identities.identity", "identities.identity_type"]
        ),
        Index(None, "account"),
    )


class Token(Base):
    __tablename__ = "tokens"
    #: sha256 of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.account"))
    identity: Mapped[str | None] = mapped_column(String(2048))
    identity_type: Mapped[IdentityType | None] = mapped_column(Code(IdentityType, 8))
    expired_at: Mapped[datetime] = mapped_column(DateTime)
    ip: Mapped[str | None] = mapped_column(String(39))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: A session opened by an OIDC login with a refresh token (core/oidc_refresh.py): the provider's
    #: refresh token, encrypted, while this token is the one to renew; the last moment it may be
    #: renewed; and, once renewed, the new token encrypted under a key only this token yields.
    refresh_token: Mapped[str | None] = mapped_column(Text)
    refresh_until: Mapped[datetime | None] = mapped_column(DateTime)
    successor: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index(None, "account"), Index(None, "expired_at"))


class LoginFailure(Base):
    """Recent failed logins of one source address or one identity (see core/throttle.py)."""

    __tablename__ = "login_failures"
    #: sha256 of ``source:<address>`` or ``identity:<name>``: a mistyped password in the username
    #: field is never stored readable.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index(None, "window_start"),)


class OIDCRequest(Base):
    """One browser login through the identity provider (``/auth/oidc``), from start to token fetch.

    Rucio's ``oauth_requests``. Every secret (state, the access and fetch codes) is stored as a
    sha256 hash; the row is deleted when its token is fetched, and is worthless once expired.
    """

    __tablename__ = "oidc_requests"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The code of the URL the client prints (``/auth/oidc_redirect?<code>``), which sends the browser on.
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The code that fetches the token: the access code when polling, else the one the page shows.
    fetch_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    account: Mapped[str | None] = mapped_column(ACCOUNT)
    nonce: Mapped[str] = mapped_column(String(64))
    polling: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The identity provider's authorization URL for this request.
    redirect_url: Mapped[str] = mapped_column(String(4000))
    #: Set once the provider vouched for the user: ``sub@iss``, and the account it logs in to.
    identity: Mapped[str | None] = mapped_column(String(2048))
    expired_at: Mapped[datetime] = mapped_column(DateTime)
    #: The provider's refresh token (encrypted) when the login asked for ``offline_access``, kept for
    #: the session the fetch opens, and the hours the client asked that session to be renewable.
    refresh_token: Mapped[str | None] = mapped_column(Text)
    refresh_lifetime: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (Index(None, "expired_at"),)


class VO(Timestamped, Base):
    """A community served by this instance (multi-VO, core/vo.py).

    The registry lives in the default VO's catalogue; each VO's accounts, scopes, RSEs and
    everything keyed by them live in that VO's own catalogue, so a row of one VO can never
    name, match or change a row of another.
    """

    __tablename__ = "vos"
    vo: Mapped[str] = mapped_column(String(3), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
