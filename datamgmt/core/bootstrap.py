"""First start of a catalogue: the root account and the default PID service."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamgmt.core.account import account_exists, add_account, add_account_attribute
from datamgmt.core.db.constants import IdentityType, PIDServiceType
from datamgmt.core.db.models import AccountIdentity, Identity, PIDService
from datamgmt.core.identity import add_account_identity, set_password


def bootstrap(
    session: Session, username: str, password: str, local_pid_prefix: str, reset_password: bool = False
) -> bool:
    """Create ``root`` (SERVICE, admin) with a userpass identity; safe to run again.

    Running it again never changes an existing password (a restart with a default or
    mistyped one must not open or lock the admin account) unless ``reset_password`` says
    so, which is how an operator recovers a lost one; a reset ends root's sessions.
    Returns whether the password given is now root's.
    """
    ensure_root(session)
    identity = session.get(Identity, (username, IdentityType.USERPASS))
    mapped = session.get(AccountIdentity, (username, IdentityType.USERPASS, "root"))
    changed = True
    if identity is None or identity.deleted or mapped is None:
        add_account_identity(session, username, "USERPASS", "root", password=password, default=True)
    elif reset_password:
        set_password(session, username, password)
    else:
        changed = False
    ensure_local_pid_service(session, local_pid_prefix)
    return changed


def ensure_root(session: Session, email: str | None = None) -> None:
    """The ``root`` account (SERVICE), an admin, whether it existed or not."""
    if not account_exists(session, "root"):
        add_account(session, "root", "SERVICE", email)
    add_account_attribute(session, "root", "admin", True)


def ensure_local_pid_service(session: Session, prefix: str) -> None:
    """The default ``local`` PID service, unless there is one already."""
    if session.get(PIDService, "local") is None:
        session.add(
            PIDService(name="local", service_type=PIDServiceType.LOCAL, prefix=prefix, is_default=True)
        )
    session.flush()
