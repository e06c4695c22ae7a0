"""Multi-VO: several communities on one instance, each in a catalogue of its own.

Rucio serves several VOs from one set of tables by suffixing every account and scope with
its VO internally (``root@abc``).  Here a VO is a *catalogue*: the default VO ``def`` is the
configured ``[database] url``; every other VO has the same tables in a schema ``vo_<vo>``
of the same PostgreSQL database, or in a SQLite file beside the default one.  Every query,
key, lock, rule, daemon lease and cached answer then belongs to exactly one VO by
construction: two VOs may both have an account ``root``, a scope ``user.jdoe`` and an RSE
``SITE_DISK`` without any name being rewritten, and no statement of one VO can match a row
of another.

The registry of VOs (table ``vos``) lives in the default VO's catalogue.  A VO is never
removed (Rucio has no such operation), so processes may remember that one exists.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core.bootstrap import ensure_local_pid_service, ensure_root
from datamgmt.core.db.models import RSE, VO, AccountIdentity, Identity, RSEProtocol
from datamgmt.core.db.session import get_engine, transaction
from datamgmt.core.identity import add_account_identity
from datamgmt.exceptions import (
    AccountNotFound,
    ConfigurationError,
    Duplicate,
    InputValidationError,
    UnsupportedOperation,
    VONotFound,
)

#: Rucio's default VO: the configured catalogue itself.
DEFAULT_VO = "def"
#: The characters Rucio accepts in a VO name (``rucio.core.vo.map_vo``).
_VO_CHARACTERS = re.compile(r"[a-zA-Z0-9.\-]+")
#: A VO tag: Rucio's three characters, here lower-case letters and digits, since the tag also
#: names the VO's PostgreSQL schema and SQLite file.
_VO_TAG = re.compile(r"[a-z0-9]{3}")

_known_lock = threading.Lock()
#: (base URL, VO) pairs seen registered: a VO, once added, exists for good.
_known: set[tuple[str, str]] = set()


def multi_vo() -> bool:
    """Whether this instance serves several VOs (``[common] multi_vo``)."""
    return get_config().get_bool("common", "multi_vo")


def require_multi_vo(enabled: bool) -> None:
    """Rucio's refusal of every VO operation on a single-VO instance."""
    if not enabled:
        raise UnsupportedOperation("VO operations cannot be performed in single VO mode.")


def vo_name(vo: str) -> str:
    """``vo`` if it is a VO tag, else InputValidationError with Rucio's wording."""
    if not _VO_CHARACTERS.fullmatch(vo):
        raise InputValidationError("Invalid characters in VO name.")
    if vo != DEFAULT_VO and not _VO_TAG.fullmatch(vo):
        raise InputValidationError("Invalid VO tag, must be 3 lower-case letters or digits.")
    return vo


def base_url(url: str | None = None) -> str:
    return url or get_config().get("database", "url")


def catalogue_url(url: str | None, vo: str) -> str:
    """The database URL of ``vo``'s catalogue, given the default VO's (None: the configured one)."""
    url = base_url(url)
    if vo == DEFAULT_VO:
        return url
    vo_name(vo)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError("multi-VO needs a SQLite catalogue in a file, not in memory")
        path = Path(parsed.database)
        vo_path = path.with_name(f"{path.stem}.vo-{vo}{path.suffix}")
        return parsed.set(database=str(vo_path)).render_as_string(hide_password=False)
    if backend == "postgresql":
        # Only the VO's schema is searched: a table missing there is an error, never another VO's.
        options = f"-csearch_path={schema(vo)}"
        existing = parsed.query.get("options")
        if existing:
            options = f"{existing} {options}"
        return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
    raise ConfigurationError(f"multi-VO is built for SQLite and PostgreSQL, not {backend}")


def schema(vo: str) -> str:
    """The PostgreSQL schema holding ``vo``'s catalogue (a VO tag is a safe identifier)."""
    return f"vo_{vo_name(vo)}"


# --- the registry (in the default VO's catalogue) ----------------------------------------------
def is_registered(vo: str, url: str | None = None) -> bool:
    """Whether ``vo`` is served here; a registered VO is remembered by this process."""
    if vo == DEFAULT_VO:
        return True
    key = (base_url(url), vo)
    if key in _known:
        return True
    if not _VO_TAG.fullmatch(vo):
        return False
    with transaction(key[0], read_only=True) as session:
        found = session.get(VO, vo) is not None
    if found:
        with _known_lock:
            _known.add(key)
    return found


def registered_vos(url: str | None = None) -> list[str]:
    """Every VO served here, the default first (only the default in single-VO mode)."""
    if not multi_vo():
        return [DEFAULT_VO]
    with transaction(base_url(url), read_only=True) as session:
        others = session.scalars(select(VO.vo).order_by(VO.vo)).all()
    return [DEFAULT_VO, *others]


def list_vos(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(VO).order_by(VO.vo)).all()
    return [
        {
            "vo": row.vo,
            "description": row.description,
            "email": row.email,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
        for row in rows
    ]


def update_vo(session: Session, vo: str, parameters: dict[str, Any]) -> None:
    row = session.get(VO, vo_name(vo))
    if row is None:
        raise VONotFound(f"VO {vo} not found")
    for key in ("email", "description"):
        if key in parameters:
            setattr(row, key, _text(parameters[key], key))
    session.flush()


def _text(value: Any, key: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise InputValidationError(f"{key} must be a string of at most 255 characters")
    return value


def add_vo(
    session: Session, vo: str, description: str | None, email: str | None, issuer: str, url: str | None = None
) -> None:
    """Register ``vo`` and build its catalogue, with a ``root`` account the issuer can log in to.

    ``session`` is the default VO's unit of work; the registry row is written first, so a
    concurrent add of the same VO waits on it and fails as a duplicate.  The new catalogue is
    migrated and its root created in transactions of its own before this unit commits: if
    they fail, the VO is not registered, and adding it again finishes the catalogue (every
    step is idempotent).  Root's identities are the issuer's (Rucio maps super_root's), so
    no default password exists (Rucio sets ``password``); ``/vos/<vo>/recover`` adds others.
    """
    if vo == DEFAULT_VO or session.get(VO, vo_name(vo)) is not None:
        raise Duplicate(f"VO {vo} already exists!")
    session.add(VO(vo=vo, description=_text(description, "description"), email=_text(email, "email")))
    session.flush()
    identities = _identities_of(session, issuer)
    create_catalogue(vo, url)
    with transaction(catalogue_url(url, vo)) as vo_session:
        _bootstrap_root(vo_session, email, identities)


def create_catalogue(vo: str, url: str | None = None) -> None:
    """Create ``vo``'s catalogue if needed and migrate it to the newest schema."""
    from datamgmt.core.db import migrate

    engine = get_engine(base_url(url))
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # schema() admits only a VO tag: three lower-case letters or digits after "vo_".
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema(vo)}"))
    migrate.upgrade(catalogue_url(url, vo))


def _identities_of(session: Session, account: str) -> list[Identity]:
    rows = session.scalars(
        select(Identity)
        .join(
            AccountIdentity,
            (AccountIdentity.identity == Identity.identity)
            & (AccountIdentity.identity_type == Identity.identity_type),
        )
        .where(AccountIdentity.account == account, Identity.deleted.is_(False))
    ).all()
    return list(rows)


def _bootstrap_root(session: Session, email: str | None, identities: list[Identity]) -> None:
    ensure_root(session, email)
    for source in identities:
        if session.get(Identity, (source.identity, source.identity_type)) is None:
            session.add(
                Identity(
                    identity=source.identity,
                    identity_type=source.identity_type,
                    password=source.password,  # the scrypt hash, never a password
                    email=source.email,
                )
            )
            session.flush()  # the mapping's foreign key needs the identity first
        if session.get(AccountIdentity, (source.identity, source.identity_type, "root")) is None:
            session.add(
                AccountIdentity(identity=source.identity, identity_type=source.identity_type, account="root")
            )
    ensure_local_pid_service(session, get_config().get("pid", "local_prefix"))


def recover_root_identity(
    session: Session,
    vo: str,
    identity: dict[str, Any],
    url: str | None = None,
) -> None:
    """Map an identity to ``vo``'s root account (Rucio's ``recover_vo_root_identity``).

    ``session`` is the default VO's unit of work; another VO's root is changed in a
    transaction on its own catalogue.  ``identity`` holds ``identity``, ``authtype``,
    ``email``, ``password`` and ``default``.
    """
    arguments = (
        identity["identity"],
        identity["authtype"],
        "root",
        identity["email"],
        identity.get("password"),
        bool(identity.get("default", False)),
    )
    if vo == DEFAULT_VO:
        add_account_identity(session, *arguments)
        return
    if not is_registered(vo_name(vo), url):
        raise AccountNotFound("Account 'root' does not exist.")
    with transaction(catalogue_url(url, vo)) as vo_session:
        add_account_identity(vo_session, *arguments)


# --- storage kept apart -------------------------------------------------------------------------
def check_storage_apart(session: Session, rse: str, vo: str, url: str | None = None) -> None:
    """Refuse protocols of ``rse`` (in ``vo``'s catalogue, through ``session``) that reach into
    storage another VO's protocols reach.

    Paths are deterministic per scope and name, and two VOs may own the same scope and name:
    on a shared storage area one VO's upload could overwrite, and its reaper delete, the
    other's files.  A VO's admin may add RSEs freely, so the instance keeps VOs' storage areas
    apart: same host (any scheme or port: one host may serve one disk by several protocols)
    and nested prefixes are refused.  Nothing about the other VO is told.
    """
    mine = session.execute(
        select(RSEProtocol.hostname, RSEProtocol.prefix)
        .join(RSE, RSE.id == RSEProtocol.rse_id)
        .where(RSE.rse == rse)
    ).all()
    if not mine:
        return
    for other in registered_vos(url):
        if other == vo:
            continue
        with transaction(catalogue_url(url, other), read_only=True) as theirs:
            areas = theirs.execute(select(RSEProtocol.hostname, RSEProtocol.prefix)).all()
        for hostname, prefix in mine:
            if any(_same_area(hostname, prefix, *area) for area in areas):
                raise InputValidationError(
                    f"the storage area of a protocol of RSE {rse} is used by another VO: "
                    "each VO's storage must lie apart (another host or a prefix outside theirs)"
                )


def _same_area(host: str, prefix: str, other_host: str, other_prefix: str) -> bool:
    """Whether the two (host, prefix) areas can hold the same file: one host, nested prefixes."""
    if _host(host) != _host(other_host):
        return False
    mine, theirs = _path(prefix), _path(other_prefix)
    return mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/")


def _host(hostname: str | None) -> str:
    name = (hostname or "").strip().lower()
    return "localhost" if name in ("", "127.0.0.1", "::1") else name


def _path(prefix: str | None) -> str:
    """A prefix as an absolute path without a trailing slash ("" for the root)."""
    parts = [part for part in (prefix or "").split("/") if part and part != "."]
    return "/" + "/".join(parts) if parts else ""
