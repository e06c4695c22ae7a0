"""Session tokens: random, returned once, stored only as a sha256 hash.

A token is valid while it has not expired, its account is ACTIVE and, when it was
issued for an identity, that identity is still mapped to the account; suspension or
identity removal therefore ends every session at once.

Checking that costs one query.  Each process therefore remembers validated tokens for up to
``[auth] token_cache_seconds``, under a *generation* (:func:`~datamgmt.core.cache.make_generation`:
in the shared cache backend, or a file of the host with the memory backend): every commit
that can end a session (:func:`tokens_revoked`) writes a fresh generation, so every worker
stops trusting what it remembered before its next request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core.cache import BoundedDict, Generation, make_generation, make_region
from datamgmt.core.db.after_commit import on_next_commit
from datamgmt.core.db.constants import AccountStatus, IdentityType
from datamgmt.core.db.models import Account, AccountIdentity, Token
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.session import catalogue_of
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


def token_digest(token: str) -> str:
    """The key of a token's row: its sha256 (the token itself is never stored)."""
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
            token_hash=token_digest(token),
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
    digest = token_digest(token)
    cache = current_token_cache()
    if cache is None:
        return _lookup(session, digest)
    generation = cache.generation()  # read before the lookup, so a revocation after it is never missed
    # A token is valid in the catalogue (the VO) that issued it, and only there.
    entry = f"{catalogue_of(session)}:{digest}"
    owner = cache.get(generation, entry)
    if owner is None:
        owner = _lookup(session, digest)
        cache.put(generation, entry, owner)
    return owner


#: The token, its account's status and whether its identity is still mapped: one round trip,
#: built once (SQLAlchemy then reuses its compiled form) and run on the connection, not the ORM.
_LOOKUP = (
    select(
        Token.account,
        Token.identity,
        Token.identity_type,
        Token.expired_at,
        Account.status,
        AccountIdentity.account.label("mapped"),
    )
    .join(Account, Account.account == Token.account)
    .outerjoin(
        AccountIdentity,
        and_(
            AccountIdentity.identity == Token.identity,
            AccountIdentity.identity_type == Token.identity_type,
            AccountIdentity.account == Token.account,
        ),
    )
    .where(Token.token_hash == bindparam("digest"))
)


def _lookup(session: Session, digest: str) -> TokenOwner:
    row = session.connection().execute(_LOOKUP, {"digest": digest}).first()
    if row is None:
        raise CannotAuthenticate("Cannot authenticate with given credentials: unknown token")
    if row.expired_at <= utcnow():
        raise CannotAuthenticate("Cannot authenticate with given credentials: token expired")
    if row.status != AccountStatus.ACTIVE:
        raise CannotAuthenticate(f"Cannot authenticate: account {row.account} is not active")
    if row.identity is not None and row.identity_type is not None and row.mapped is None:
        raise CannotAuthenticate("Cannot authenticate: the identity of this token was removed")
    return TokenOwner(account=row.account, identity=row.identity, expires_at=row.expired_at)


def tokens_revoked(session: Session) -> None:
    """Forget every remembered token validation, in every process, once this session commits.

    Call it from any change that can end a session: an account no longer ACTIVE, an identity
    unmapped, tokens deleted before they expire.  After the commit, not before: a worker that
    validated against the old rows in between stored its answer under the old generation.
    """
    on_next_commit(session, "tokens_revoked", _renew_generation)


def _renew_generation() -> None:
    cache = current_token_cache()
    if cache is not None:
        cache.new_generation()


class TokenCache:
    """Validated tokens of this process, trusted while the shared generation is unchanged.

    Each request reads the generation (one GET on the cache server, or one small file read
    with the memory backend); the owners themselves stay in this process, keyed by the
    token's digest, for at most ``seconds`` and never past the token's expiry.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, generation: Generation, seconds: float) -> None:
        self._generation = generation
        self.seconds = seconds
        self._entries: BoundedDict = BoundedDict(self.MAX_ENTRIES)
        self._lock = threading.Lock()

    def generation(self) -> str:
        return self._generation.current()

    def new_generation(self) -> None:
        self._generation.renew()

    def get(self, generation: str, digest: str) -> TokenOwner | None:
        entry: tuple[str, float, TokenOwner] | None = self._entries.get(digest)
        if entry is None or entry[0] != generation or entry[1] <= time.monotonic():
            return None
        return entry[2]

    def put(self, generation: str, digest: str, owner: TokenOwner) -> None:
        remaining = (owner.expires_at - utcnow()).total_seconds()
        deadline = time.monotonic() + min(self.seconds, remaining)
        with self._lock:
            self._entries[digest] = (generation, deadline, owner)


_cache_lock = threading.Lock()
_cache: tuple[TokenCache | None] | None = None


def current_token_cache() -> TokenCache | None:
    """The process's token cache; None with ``[auth] token_cache_seconds = 0``."""
    global _cache
    held = _cache
    if held is not None:
        return held[0]
    with _cache_lock:
        if _cache is None:
            config = get_config()
            seconds = config.get_int("auth", "token_cache_seconds")
            generation = make_generation("token", make_region("token"), config) if seconds > 0 else None
            _cache = (TokenCache(generation, seconds) if generation is not None else None,)
        return _cache[0]


def set_token_cache(cache: TokenCache | None, *, from_config: bool = False) -> None:
    """Use this token cache (None: none; ``from_config``: rebuild from the configuration on next use)."""
    global _cache
    with _cache_lock:
        _cache = None if from_config else (cache,)


def purge_expired_tokens(session: Session) -> int:
    return rowcount(session.execute(delete(Token).where(Token.expired_at <= utcnow())))
