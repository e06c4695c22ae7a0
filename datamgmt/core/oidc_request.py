"""Browser logins through the OIDC identity provider, kept between the requests of the flow.

Rucio's authorization-code flow takes four requests, which different workers may serve:
``/auth/oidc`` starts a login (:func:`start`), ``/auth/oidc_redirect?<access code>`` sends the
browser to the provider (:func:`redirect_url`), the provider sends it back to ``/auth/oidc_code``
(:func:`find_by_state`, then :func:`authorize`), and the client fetches its token with the fetch
code (:func:`take_authorized`), which ends the login. Codes and state are random, stored hashed,
and die with the row after ``LIFETIME``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import OIDCRequest
from datamgmt.core.db.types import utcnow
from datamgmt.exceptions import CannotAuthenticate

#: How long a started login may take (the stock client polls for three minutes).
LIFETIME = timedelta(minutes=10)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    """A login just started: the secrets that exist only in the answers, never in the catalogue."""

    state: str
    nonce: str
    access_code: str


def new_secrets() -> Started:
    return Started(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(32))


def start(
    session: Session,
    started: Started,
    account: str | None,
    polling: bool,
    provider_url: str,
    refresh_lifetime: int | None = None,
) -> None:
    """Record a login that will go to ``provider_url``; forget the logins that expired.

    ``refresh_lifetime``: the hours the client wants its session renewable, if it said."""
    now = utcnow()
    session.execute(delete(OIDCRequest).where(OIDCRequest.expired_at <= now))
    access_hash = _digest(started.access_code)
    session.add(
        OIDCRequest(
            state_hash=_digest(started.state),
            access_hash=access_hash,
            fetch_hash=access_hash if polling else None,
            account=account,
            nonce=started.nonce,
            polling=polling,
            redirect_url=provider_url,
            expired_at=now + LIFETIME,
            refresh_lifetime=refresh_lifetime,
        )
    )


def _live(session: Session, *condition: object) -> OIDCRequest:
    row = session.scalars(select(OIDCRequest).where(*condition, OIDCRequest.expired_at > utcnow())).first()  # type: ignore[arg-type]
    if row is None:
        raise CannotAuthenticate("Cannot authenticate: unknown or expired OIDC login request")
    return row


def redirect_url(session: Session, access_code: str) -> str:
    """Where the browser goes to log in at the provider."""
    return _live(session, OIDCRequest.access_hash == _digest(access_code)).redirect_url


def find_by_state(session: Session, state: str) -> OIDCRequest:
    """The login the provider is answering (its ``state``), not yet authorized."""
    row = _live(session, OIDCRequest.state_hash == _digest(state))
    if row.identity is not None:
        raise CannotAuthenticate("Cannot authenticate: this OIDC login was already completed")
    return row


def authorize(
    session: Session, state: str, identity: str, account: str, refresh_token: str | None = None
) -> str | None:
    """Mark the login as vouched for, with the provider's refresh token (sealed) if it gave one;
    returns the fetch code to show when the client does not poll."""
    row = find_by_state(session, state)
    row.identity, row.account, row.refresh_token = identity, account, refresh_token
    if row.polling:
        return None
    fetch_code = secrets.token_urlsafe(16)
    row.fetch_hash = _digest(fetch_code)
    return fetch_code


@dataclass(frozen=True)
class Authorized:
    """A completed login, for the session it opens."""

    identity: str
    account: str
    #: The provider's refresh token, sealed (core/oidc_refresh.py), when the login may be renewed.
    refresh_token: str | None
    #: The hours the client asked the session to be renewable, if it said.
    refresh_lifetime: int | None


def take_authorized(session: Session, fetch_code: str) -> Authorized:
    """The authorized login of ``fetch_code``, which this ends; CannotAuthenticate while it is not."""
    row = _live(session, OIDCRequest.fetch_hash == _digest(fetch_code))
    if row.identity is None or row.account is None:
        raise CannotAuthenticate("Cannot authenticate: the OIDC login is not completed yet")
    session.delete(row)
    return Authorized(row.identity, row.account, row.refresh_token, row.refresh_lifetime)
