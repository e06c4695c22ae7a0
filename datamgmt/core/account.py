"""Accounts: who owns data and quota, and their attributes (``admin`` among them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.constants import AccountStatus, AccountType
from datamgmt.core.db.models import Account, AccountAttribute, AccountIdentity, Token
from datamgmt.core.db.rows import put, rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.token import tokens_revoked
from datamgmt.exceptions import AccountNotFound, Duplicate, InputValidationError


@dataclass(frozen=True)
class AccountInfo:
    account: str
    account_type: str
    status: str
    email: str | None
    created_at: datetime
    updated_at: datetime
    suspended_at: datetime | None

    @classmethod
    def of(cls, row: Account) -> AccountInfo:
        return cls(
            account=row.account,
            account_type=row.account_type.name,
            status=row.status.name,
            email=row.email,
            created_at=row.created_at,
            updated_at=row.updated_at,
            suspended_at=row.suspended_at,
        )


def add_account(session: Session, account: str, account_type: str, email: str | None = None) -> None:
    validation.account_name(account)
    kind = AccountType.parse(account_type)
    if session.get(Account, account) is not None:
        raise Duplicate(f"Account ID {validation.shown(account)} already exists")
    session.add(Account(account=account, account_type=kind, email=email, status=AccountStatus.ACTIVE))
    session.flush()


def _get(session: Session, account: str) -> Account:
    row = session.get(Account, account) if isinstance(account, str) else None
    if row is None or row.status == AccountStatus.DELETED:
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")
    return row


def get_account(session: Session, account: str) -> AccountInfo:
    return AccountInfo.of(_get(session, account))


#: An account's status by name, run on the connection: admin calls that name an account check it first.
_STATUS = select(Account.status).where(Account.account == bindparam("account"))


def require_account(session: Session, account: str) -> None:
    """Raise AccountNotFound unless the account exists and is not deleted (one Core query)."""
    status = session.connection().scalar(_STATUS, {"account": account}) if isinstance(account, str) else None
    if status is None or status == AccountStatus.DELETED:
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")


#: Whether the account named by the parameter ``account`` exists and is not deleted: what a
#: write for an account (a limit, a scope) checks in the same statement.
LIVE_ACCOUNT = (
    select(Account.account)
    .where(Account.account == bindparam("account"), Account.status != AccountStatus.DELETED)
    .exists()
)


def account_exists(session: Session, account: str) -> bool:
    row = session.get(Account, account)
    return row is not None and row.status != AccountStatus.DELETED


def list_accounts(
    session: Session, account_type: str | None = None, identity: str | None = None
) -> Iterator[AccountInfo]:
    query = select(Account).where(Account.status != AccountStatus.DELETED).order_by(Account.account)
    if account_type:
        query = query.where(Account.account_type == AccountType.parse(account_type))
    if identity:
        query = query.join(AccountIdentity, AccountIdentity.account == Account.account).where(
            AccountIdentity.identity == identity
        )
    for row in session.scalars(query):
        yield AccountInfo.of(row)


def update_account(session: Session, account: str, key: str, value: str) -> None:
    """Change ``email`` or ``status``; suspension kills the account's tokens at once."""
    row = _get(session, account)
    if key == "email":
        row.email = value
    elif key == "status":
        status = AccountStatus.parse(value)
        row.status = status
        row.suspended_at = utcnow() if status == AccountStatus.SUSPENDED else None
        if status != AccountStatus.ACTIVE:
            session.execute(delete(Token).where(Token.account == account))
            tokens_revoked(session)
    else:
        raise InputValidationError(f"key {validation.shown(key)} cannot be updated (email, status)")
    session.flush()


def suspend_account(session: Session, account: str) -> None:
    update_account(session, account, "status", "SUSPENDED")


def delete_account(session: Session, account: str) -> None:
    row = _get(session, account)
    row.status = AccountStatus.DELETED
    row.deleted_at = utcnow()
    session.execute(delete(Token).where(Token.account == account))
    tokens_revoked(session)
    session.flush()


# --- attributes ------------------------------------------------------------------------------
def add_account_attribute(session: Session, account: str, key: str, value: str | bool) -> None:
    _get(session, account)
    validation.attribute_key(key)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    put(session, AccountAttribute, (account, key), value=text)


def delete_account_attribute(session: Session, account: str, key: str) -> None:
    result = session.execute(
        delete(AccountAttribute).where(AccountAttribute.account == account, AccountAttribute.key == key)
    )
    if rowcount(result) == 0:
        raise InputValidationError(
            f"account {validation.shown(account)} has no attribute {validation.shown(key)}"
        )


def list_account_attributes(session: Session, account: str) -> list[dict[str, str]]:
    _get(session, account)
    rows = session.scalars(
        select(AccountAttribute).where(AccountAttribute.account == account).order_by(AccountAttribute.key)
    )
    return [{"key": row.key, "value": row.value} for row in rows]


def has_true_attribute(session: Session, account: str, key: str) -> bool:
    """Whether the account carries ``key=true`` (Rucio's boolean account attributes)."""
    value = session.scalar(
        select(AccountAttribute.value).where(AccountAttribute.account == account, AccountAttribute.key == key)
    )
    return value is not None and value.lower() == "true"


def is_admin(session: Session, account: str) -> bool:
    """Root and accounts with ``admin=true`` may do everything."""
    return account == "root" or has_true_attribute(session, account, "admin")


def touch_status(session: Session, account: str) -> AccountStatus:
    """The account's status, for authentication checks on every request."""
    status = session.scalar(select(Account.status).where(Account.account == account))
    if status is None:
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")
    return status
