"""Identities (userpass, X.509 DN, OIDC ``sub@issuer``, SSH key) and their accounts.

Passwords are stored as salted scrypt hashes; a stolen database yields no password.  Checking
one is deliberately slow, so callers check it outside any write transaction (see api/v1/auth.py).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import validation
from datamgmt.core.account import get_account
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import AccountIdentity, Identity, Token
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import chunks
from datamgmt.core.token import tokens_revoked
from datamgmt.exceptions import Duplicate, IdentityNotFound, InputValidationError

#: scrypt's block size and parallelism (OWASP: r=8, p=1); the cost N is ``[auth] scrypt_n``,
#: 2**17 by default (OWASP's minimum: 128 MiB and ~0.3 s per check on a server core).
_SCRYPT_R, _SCRYPT_P = 8, 1
#: A stored hash names its own parameters; refuse ones that would let a corrupt row exhaust memory.
_SCRYPT_MAX_N = 2**20


def _scrypt_n() -> int:
    return get_config().get_int("auth", "scrypt_n")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    n = _scrypt_n()
    digest = _scrypt(password, salt, n, _SCRYPT_R, _SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


@functools.cache
def _dummy_hash(n: int) -> str:
    """A hash of a random password at cost ``n``, checked in place of an unknown user's."""
    salt = base64.b64encode(secrets.token_bytes(16)).decode()
    digest = base64.b64encode(secrets.token_bytes(64)).decode()
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${salt}${digest}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; as slow for no or a broken hash as for a real one,
    so response times do not tell which usernames exist."""
    parts = stored.split("$") if stored else []
    valid = len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])
    if not valid or not 1 < int(parts[1]) <= _SCRYPT_MAX_N or int(parts[2]) * int(parts[3]) > 64:
        parts, valid = _dummy_hash(_scrypt_n()).split("$"), False
    _, n, r, p, salt, digest = parts
    candidate = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest)) and valid


def needs_rehash(stored: str) -> bool:
    """Whether a verified hash was made with other parameters than the configured ones."""
    return stored.split("$")[1:4] != [str(_scrypt_n()), str(_SCRYPT_R), str(_SCRYPT_P)]


def add_identity(
    session: Session,
    identity: str,
    identity_type: str,
    email: str | None = None,
    password: str | None = None,
) -> None:
    kind = IdentityType.parse(identity_type)
    if not isinstance(identity, str) or not identity or len(identity) > 2048:
        raise InputValidationError("identity must be a non-empty string of at most 2048 characters")
    if kind == IdentityType.USERPASS:
        if not password:
            raise InputValidationError("a USERPASS identity needs a password")
        if len(password) < 8:
            raise InputValidationError("the password must have at least 8 characters")
    row = session.get(Identity, (identity, kind))
    if row is not None and not row.deleted:
        raise Duplicate(f"Identity {validation.shown(identity)} of type {kind.name} already exists")
    hashed = hash_password(password) if kind == IdentityType.USERPASS and password else None
    if row is None:
        session.add(Identity(identity=identity, identity_type=kind, email=email, password=hashed))
    else:
        row.deleted, row.deleted_at, row.password, row.email = False, None, hashed, email
    session.flush()


def add_account_identity(
    session: Session,
    identity: str,
    identity_type: str,
    account: str,
    email: str | None = None,
    password: str | None = None,
    default: bool = False,
) -> None:
    """Map an identity to an account, creating the identity if it is new."""
    get_account(session, account)
    kind = IdentityType.parse(identity_type)
    row = session.get(Identity, (identity, kind))
    if row is None or row.deleted:
        add_identity(session, identity, kind.name, email=email, password=password)
    elif password and kind == IdentityType.USERPASS:
        set_password(session, identity, password)
    if session.get(AccountIdentity, (identity, kind, account)) is not None:
        raise Duplicate(f"Identity {validation.shown(identity)} is already mapped to account {account}")
    session.add(AccountIdentity(identity=identity, identity_type=kind, account=account, is_default=default))
    session.flush()


def del_account_identity(session: Session, identity: str, identity_type: str, account: str) -> None:
    """Unmap an identity; its tokens for that account die with it."""
    kind = IdentityType.parse(identity_type)
    result = session.execute(
        delete(AccountIdentity).where(
            AccountIdentity.identity == identity,
            AccountIdentity.identity_type == kind,
            AccountIdentity.account == account,
        )
    )
    if rowcount(result) == 0:
        raise IdentityNotFound(f"Identity {validation.shown(identity)} is not mapped to account {account}")
    session.execute(
        delete(Token).where(Token.account == account, Token.identity == identity, Token.identity_type == kind)
    )
    tokens_revoked(session)
    still_mapped = session.scalar(
        select(AccountIdentity.account).where(
            AccountIdentity.identity == identity, AccountIdentity.identity_type == kind
        )
    )
    if still_mapped is None:
        session.execute(
            update(Identity)
            .where(Identity.identity == identity, Identity.identity_type == kind)
            .values(deleted=True, deleted_at=utcnow(), password=None)
        )


def list_identities(session: Session, account: str) -> list[dict[str, str | None]]:
    get_account(session, account)
    rows = session.execute(
        select(AccountIdentity.identity, AccountIdentity.identity_type, Identity.email)
        .join(
            Identity,
            (Identity.identity == AccountIdentity.identity)
            & (Identity.identity_type == AccountIdentity.identity_type),
        )
        .where(AccountIdentity.account == account)
        .order_by(AccountIdentity.identity)
    )
    return [{"identity": i, "type": t.name, "email": e} for i, t, e in rows]


def account_has_identity(session: Session, account: str, identity: str, identity_type: IdentityType) -> bool:
    return (
        session.get(AccountIdentity, (identity, identity_type, account)) is not None
        and _live_identity(session, identity, identity_type) is not None
    )


def _live_identity(session: Session, identity: str, kind: IdentityType) -> Identity | None:
    row = session.get(Identity, (identity, kind))
    return None if row is None or row.deleted else row


def userpass_hash(session: Session, username: str) -> str | None:
    """The stored hash of a live USERPASS identity, None when there is none (one read, no lock)."""
    row = _live_identity(session, username, IdentityType.USERPASS)
    return row.password if row is not None else None


def set_password(
    session: Session, username: str, password: str | None = None, hashed: str | None = None
) -> None:
    """Give a USERPASS identity a new password and end every session it opened.

    ``hashed`` stores an already computed hash of the *same* password (a login re-hashing
    with new parameters), which keeps the identity's sessions.
    """
    if hashed is None:
        if not password or len(password) < 8:
            raise InputValidationError("the password must have at least 8 characters")
        hashed = hash_password(password)
        session.execute(
            delete(Token).where(Token.identity == username, Token.identity_type == IdentityType.USERPASS)
        )
        tokens_revoked(session)
    session.execute(
        update(Identity)
        .where(Identity.identity == username, Identity.identity_type == IdentityType.USERPASS)
        .values(password=hashed)
    )


def list_accounts_for_identity(session: Session, identity: str, identity_type: str) -> list[str]:
    """The accounts an identity is mapped to (Rucio's ``list_accounts_for_identity``)."""
    kind = IdentityType.parse(identity_type)
    return list(
        session.scalars(
            select(AccountIdentity.account)
            .where(AccountIdentity.identity == identity, AccountIdentity.identity_type == kind)
            .order_by(AccountIdentity.account)
        )
    )


def identities_by_account(
    session: Session, accounts: Sequence[str]
) -> dict[str, list[dict[str, str | None]]]:
    """The identities of many accounts at once (one query per chunk), for an accounts listing."""
    found: dict[str, list[dict[str, str | None]]] = {account: [] for account in accounts}
    for part in chunks(list(found), 1000):
        rows = session.execute(
            select(
                AccountIdentity.account,
                AccountIdentity.identity,
                AccountIdentity.identity_type,
                Identity.email,
            )
            .join(
                Identity,
                (Identity.identity == AccountIdentity.identity)
                & (Identity.identity_type == AccountIdentity.identity_type),
            )
            .where(AccountIdentity.account.in_(part))
            .order_by(AccountIdentity.account, AccountIdentity.identity)
        )
        for account, identity, kind, email in rows:
            found[account].append({"identity": identity, "type": kind.name, "email": email})
    return found
