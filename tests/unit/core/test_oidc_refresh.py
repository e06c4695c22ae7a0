"""core/oidc_refresh: what a refresh comes to, two refreshes racing, and the sealed refresh token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core import oidc_refresh
from datamgmt.core.account import add_account
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import Token
from datamgmt.core.db.types import utcnow
from datamgmt.core.identity import add_account_identity
from datamgmt.core.token import issue_token, token_digest

IDENTITY = "alice@https://idp.example"
SEALER = oidc_refresh.Sealer("client-secret", "oidc refresh token")


def _session_token(session: Session, refresh_token: str = "provider-refresh-1") -> str:
    """A token of alice's OIDC login with a refresh token, issued six minutes ago."""
    add_account(session, "alice", "USER")
    add_account_identity(session, IDENTITY, "OIDC", "alice")
    token = issue_token(session, "alice", IDENTITY, IdentityType.OIDC, 900).token
    oidc_refresh.keep(session, token, SEALER.seal(refresh_token), timedelta(hours=2))
    session.execute(
        update(Token)
        .where(Token.token_hash == token_digest(token))
        .values(created_at=utcnow() - timedelta(minutes=6))
    )
    session.commit()
    return token


def test_two_refreshes_racing_renew_once_and_both_get_the_new_token(session: Session) -> None:
    token = _session_token(session)
    first = oidc_refresh.plan(session, token, "alice", SEALER)
    second = oidc_refresh.plan(session, token, "alice", SEALER)
    session.commit()
    assert isinstance(first, oidc_refresh.Due) and first.refresh_token == "provider-refresh-1"
    assert isinstance(second, oidc_refresh.Due)
    issued = oidc_refresh.renew(session, token, first, "provider-refresh-2", 900)
    session.commit()
    assert issued is not None and issued.token != token
    assert oidc_refresh.renew(session, token, second, "provider-refresh-3", 900) is None
    assert oidc_refresh.forget(session, token, second) is False
    session.commit()
    renewed = oidc_refresh.Answer(issued.token, issued.expires_at)
    assert oidc_refresh.plan(session, token, "alice", SEALER) == renewed, "the loser gets the winner's token"
    assert oidc_refresh.plan(session, issued.token, "alice", SEALER) == renewed, "issued just now: as it is"


def test_a_refresh_token_sealed_under_another_secret_renews_nothing(session: Session) -> None:
    token = _session_token(session)
    other = oidc_refresh.Sealer("a-new-client-secret", "oidc refresh token")
    assert other.open(SEALER.seal("x")) is None and SEALER.open(SEALER.seal("x")) == "x"
    assert oidc_refresh.plan(session, token, "alice", other) == oidc_refresh.Answer()
    assert oidc_refresh.plan(session, token, "alice", None) == oidc_refresh.Answer()
