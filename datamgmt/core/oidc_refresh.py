"""Renewing a session opened by an OIDC login with the provider's refresh token (``/auth/oidc_refresh``).

A login that asked for ``offline_access`` brings back a refresh token from the provider. We keep it
with the session token the login opens, encrypted (:class:`Sealer`, keyed by our client secret at
the provider: a copy of the catalogue alone reveals no refresh token, and the provider honours none
without that secret anyway). A refresh follows Rucio's rules (``rucio.core.oidc.refresh_cli_auth_token``):

- a token issued in the last five minutes comes back as it is (the stock client asks right after
  its login, to learn the expiry);
- otherwise the provider renews the refresh token and a new session token takes it over; the old
  token lives on until it expires, but is no longer renewed;
- a token that was already renewed gets its successor back (processes sharing one token file).
  Only a hash of each token is stored, so the old row keeps the successor encrypted under a key
  derived from the old token itself: nobody without the old token can read it;
- a session is renewable for ``[auth] oidc_refresh_lifetime`` hours after its login (Rucio's 96),
  or fewer when the client asked for fewer.

The presented token must be alive (unexpired, its account active, its identity mapped: core/token.py),
else the refresh is refused with Rucio's ``CannotAuthorize``. Suspending the account or unmapping the
identity deletes its tokens, and the refresh tokens with them.

The provider is asked between two transactions (:func:`plan`, then :func:`renew` or :func:`forget`);
both of those change a row only while it still holds the refresh token that was sent, so of two
concurrent refreshes one renews the session and the other hands back its result.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import Token
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.token import IssuedToken, issue_token, token_digest, validate_token
from datamgmt.exceptions import CannotAuthenticate, CannotAuthorize

#: A token issued this recently is handed back instead of renewed (Rucio's five minutes).
REUSE = timedelta(seconds=300)
#: The most renewals followed from an old token to the live one.
MAX_CHAIN = 16


class Sealer:
    """Authenticated encryption (Fernet) under a key derived from ``secret`` for one ``purpose``."""

    def __init__(self, secret: str, purpose: str) -> None:
        derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"datamgmt {purpose}".encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derive.derive(secret.encode())))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The text, or None when it was sealed under another key (a changed client secret)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


def refresh_sealer(client_secret: str) -> Sealer | None:
    """The sealer of the provider's refresh tokens; None for a client without a secret (none are kept)."""
    return Sealer(client_secret, "oidc refresh token") if client_secret else None


def _successor_sealer(token: str) -> Sealer:
    return Sealer(token, "successor token")


@dataclass(frozen=True)
class Answer:
    """A refresh that needs no provider: this token (None: nothing to renew) and its expiry."""

    token: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Due:
    """A refresh for the provider: its refresh token, and the session it renews."""

    refresh_token: str
    #: The stored (sealed) form, which the row must still hold when the answer is recorded.
    sealed: str
    account: str
    identity: str
    refresh_until: datetime
    #: Seals the provider's next refresh token.
    sealer: Sealer


def keep(session: Session, token: str, sealed_refresh: str, lifetime: timedelta) -> None:
    """Make the session ``token``, just opened by an OIDC login, renewable with ``sealed_refresh``."""
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token))
        .values(refresh_token=sealed_refresh, refresh_until=utcnow() + lifetime)
    )


def plan(session: Session, token: str, account: str, sealer: Sealer | None) -> Answer | Due:
    """What refreshing ``token`` (presented for ``account``) comes to; CannotAuthorize for a dead token."""
    try:
        owner = validate_token(session, token)
    except CannotAuthenticate as exc:
        raise CannotAuthorize(f"Cannot authorize token request: {exc.message}") from exc
    row = session.get(Token, token_digest(token))
    if owner.account != account or row is None:
        raise CannotAuthorize("Cannot authorize token request: the token is not one of the account's")
    if row.successor is not None:
        return _successor(session, token, row.successor)
    sealed = row.refresh_token
    opened = sealer.open(sealed) if sealer is not None and sealed else None
    if (
        sealer is None
        or opened is None
        or sealed is None  # never when opened: only a stored refresh token opens
        or row.identity is None
        or row.identity_type != IdentityType.OIDC
    ):
        return Answer()
    now = utcnow()
    if row.created_at > now - REUSE:
        return Answer(token, row.expired_at)
    if row.refresh_until is None or row.refresh_until <= now:
        row.refresh_token = None  # the session's time is up: a new login is due
        return Answer()
    return Due(opened, sealed, row.account, row.identity, row.refresh_until, sealer)


def _successor(session: Session, token: str, sealed: str) -> Answer:
    """The live token that took over from ``token``, along its chain of renewals."""
    current = token
    for _ in range(MAX_CHAIN):
        following = _successor_sealer(current).open(sealed)
        if following is None:
            return Answer()
        try:
            owner = validate_token(session, following)
        except CannotAuthenticate:
            return Answer()
        row = session.get(Token, token_digest(following))
        if row is None or row.successor is None:
            return Answer(following, owner.expires_at)
        current, sealed = following, row.successor
    return Answer()


def _release(session: Session, token: str, due: Due) -> bool:
    """Take the refresh token off ``token``'s row, if it still holds the one that was sent."""
    taken = session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token), Token.refresh_token == due.sealed)
        .values(refresh_token=None)
    )
    return bool(rowcount(taken))


def renew(
    session: Session,
    token: str,
    due: Due,
    refresh_token: str,
    lifetime_seconds: int,
    ip: str | None = None,
) -> IssuedToken | None:
    """Open the session's next token, renewable with the provider's new ``refresh_token``; None when
    another request renewed ``token`` first (its successor is then the answer)."""
    if not _release(session, token, due):
        return None
    issued = issue_token(session, due.account, due.identity, IdentityType.OIDC, lifetime_seconds, ip=ip)
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token))
        .values(successor=_successor_sealer(token).seal(issued.token))
    )
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(issued.token))
        .values(refresh_token=due.sealer.seal(refresh_token), refresh_until=due.refresh_until)
    )
    return issued


def forget(session: Session, token: str, due: Due) -> bool:
    """The provider refused the refresh token: the session is no longer renewable. False when another
    request renewed it meanwhile (the provider refused a refresh token already used)."""
    return _release(session, token, due)
