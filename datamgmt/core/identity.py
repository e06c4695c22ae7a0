"""Identities (userpass, X.509 DN, OIDC ``sub@issuer``, SSH key) and their accounts.

Passwords are stored as salted scrypt hashes; a stolen database yields no password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.account import get_account
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.db.models import AccountIdentity, Identity, Token
from datamgmt.core.db.types import utcnow
from datamgmt.core.token import tokens_revoked
from datamgmt.exceptions import CannotAuthenticate, Duplicate, IdentityNotFound, InputValidationError

# scrypt work factors: ~50 ms per check on a server core, which rate-limits guessing.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


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
        row.password = hash_password(password)
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
    if result.rowcount == 0:
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
            (Identity.identity == AccountIdentity.identity) & (Identity.identity_type == AccountIdentity.identity_type),
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


def check_userpass(session: Session, account: str, username: str, password: str) -> None:
    """Raise CannotAuthenticate unless ``username``/``password`` is a live identity of ``account``."""
    row = _live_identity(session, username, IdentityType.USERPASS)
    ok = (
        row is not None
        and session.get(AccountIdentity, (username, IdentityType.USERPASS, account)) is not None
        and verify_password(password, row.password)
    )
    if not ok:
        raise CannotAuthenticate(f"Cannot authenticate to account {account} with given credentials")
