"""RSEs: storage endpoints with attributes, protocols, availability, limits and usage (the
distances between them are in core/rse_distance.py).

Anything that changes what an RSE expression can select (the RSE row, its attributes,
its availability, its usage) calls :func:`rse_changed`; listeners such as the
expression cache run once the transaction commits, so no process can cache a state
that was rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, literal, select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.after_commit import is_pending, on_next_commit
from datamgmt.core.db.constants import RSEType
from datamgmt.core.db.models import RSE, AccountUsage, RSEAttribute, RSELimit, RSEProtocol, RSEUsage
from datamgmt.core.db.rows import BuiltWrite, FoundWrite, insert_new, put, rowcount
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.exceptions import (
    Duplicate,
    InputValidationError,
    RSEAttributeNotFound,
    RSENotFound,
    RSEProtocolNotSupported,
)

#: Called with no arguments after a commit that changed any RSE, its attributes or its protocols.
RSE_CHANGE_LISTENERS: list[Callable[[], None]] = []

_CHANGED = "rse_changed"
_OPERATIONS = ("read", "write", "delete")
_WAN_ONLY = ("third_party_copy_read", "third_party_copy_write")


def rse_changed(session: Session) -> None:
    """Run the change listeners after this session's next commit (not after a rollback)."""
    on_next_commit(session, _CHANGED, _notify_listeners)


def has_uncommitted_changes(session: Session) -> bool:
    """Whether this session changed RSEs that other sessions cannot see yet."""
    return is_pending(session, _CHANGED)


def _notify_listeners() -> None:
    for listener in list(RSE_CHANGE_LISTENERS):
        listener()


@dataclass(frozen=True)
class RSEInfo:
    id: str
    rse: str
    rse_type: str
    deterministic: bool
    volatile: bool
    staging_area: bool
    availability_read: bool
    availability_write: bool
    availability_delete: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RSE) -> RSEInfo:
        return cls(
            id=row.id,
            rse=row.rse,
            rse_type=row.rse_type.name,
            deterministic=row.deterministic,
            volatile=row.volatile,
            staging_area=row.staging_area,
            availability_read=row.availability_read,
            availability_write=row.availability_write,
            availability_delete=row.availability_delete,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @property
    def availability(self) -> int:
        """Rucio's legacy bitmask: read=4, write=2, delete=1."""
        return 4 * self.availability_read + 2 * self.availability_write + self.availability_delete


# --- the RSE itself --------------------------------------------------------------------------
def add_rse(
    session: Session,
    rse: str,
    rse_type: str = "DISK",
    deterministic: bool = True,
    volatile: bool = False,
    staging_area: bool = False,
) -> str:
    """Create an RSE and its ``<name>=true`` attribute; returns the new id.

    On PostgreSQL both rows are one statement, so that an admin's unit of one write
    (core/db/plans.py) commits them as it runs it; SQLite has no data-modifying CTE."""
    validation.rse_name(rse)
    rse_id = new_id()
    values = {
        "id": rse_id,
        "rse": rse,
        "rse_type": RSEType.parse(rse_type),
        "deterministic": bool(deterministic),
        "volatile": bool(volatile),
        "staging_area": bool(staging_area),
    }
    if is_postgresql(session):
        added = _ADD_RSE_WITH_ITS_ATTRIBUTE(session, **values)
    elif added := insert_new(session, RSE, values, unique=["rse"]):
        session.connection().execute(
            insert(RSEAttribute.__table__).values(rse_id=rse_id, key=rse, value="true")
        )
    if not added:
        raise Duplicate(f"RSE {validation.shown(rse)} already exists!")
    rse_changed(session)
    return rse_id


def _rse_with_its_attribute(dialect: Any) -> Any:
    """``INSERT`` of a new RSE (nothing if its name is taken) and of its ``<name>=true`` attribute,
    as one statement (PostgreSQL's data-modifying CTE)."""
    rses, attributes = RSE.__table__, RSEAttribute.__table__
    columns = (
        "id",
        "rse",
        "rse_type",
        "deterministic",
        "volatile",
        "staging_area",
        "created_at",
        "updated_at",
    )
    new = (
        dialect.insert(rses)
        .values({name: bindparam(name, type_=rses.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["rse"])
        .returning(rses.c.id, rses.c.rse)
        .cte("new_rse")
    )
    attribute = select(new.c.id, new.c.rse, literal("true"), bindparam("created_at"), bindparam("updated_at"))
    return (
        dialect.insert(attributes)
        .from_select(["rse_id", "key", "value", "created_at", "updated_at"], attribute)
        .returning(attributes.c.rse_id)
    )


_ADD_RSE_WITH_ITS_ATTRIBUTE = BuiltWrite(_rse_with_its_attribute)


def _row(session: Session, rse: str) -> RSE:
    row = (
        session.scalar(select(RSE).where(RSE.rse == rse, RSE.deleted.is_(False)))
        if isinstance(rse, str)
        else None
    )
    if row is None:
        raise RSENotFound(f"RSE {validation.shown(rse)} cannot be found")
    return row


def get_rse(session: Session, rse: str) -> RSEInfo:
    return RSEInfo.of(_row(session, rse))


#: The id of a live RSE by name: built once and run on the connection, because every admin
#: call on an RSE (attribute, protocol, limit) starts with it.
_LIVE_ID = select(RSE.id).where(RSE.rse == bindparam("rse"), RSE.deleted.is_(False))


def get_rse_id(session: Session, rse: str) -> str:
    found = session.connection().scalar(_LIVE_ID, {"rse": rse}) if isinstance(rse, str) else None
    if found is None:
        raise RSENotFound(f"RSE {validation.shown(rse)} cannot be found")
    return found


#: The live RSE named by the parameter ``rse``: what an admin write on an RSE looks up in itself.
LIVE_RSE = and_(RSE.rse == bindparam("rse"), RSE.deleted.is_(False))
_PRIORITY_COLUMNS = (*(f"{op}_{domain}" for domain in ("lan", "wan") for op in _OPERATIONS), *_WAN_ONLY)
_PUT_ATTRIBUTE = FoundWrite(RSEAttribute, LIVE_RSE, {"rse_id": RSE.id}, ("key", "value"), update=("value",))
_ADD_PROTOCOL = FoundWrite(
    RSEProtocol,
    LIVE_RSE,
    {"rse_id": RSE.id},
    ("scheme", "hostname", "port", "prefix", "impl", "extended_attributes", *_PRIORITY_COLUMNS),
)


def rse_names_by_id(session: Session, ids: list[str] | None = None) -> dict[str, str]:
    query = select(RSE.id, RSE.rse)
    if ids is not None:
        query = query.where(RSE.id.in_(set(ids)))
    return dict(session.execute(query).tuples().all())


def list_rses(session: Session) -> list[RSEInfo]:
    rows = session.scalars(select(RSE).where(RSE.deleted.is_(False)).order_by(RSE.rse))
    return [RSEInfo.of(row) for row in rows]


_UPDATABLE = {
    "availability_read",
    "availability_write",
    "availability_delete",
    "deterministic",
    "volatile",
    "staging_area",
    "rse_type",
}


def update_rse(session: Session, rse: str, parameters: dict[str, Any]) -> None:
    """Change flags of an RSE; ``availability`` (the 0-7 bitmask) is accepted as Rucio does."""
    row = _row(session, rse)
    for key, value in parameters.items():
        if key == "availability":
            mask = int(value)
            row.availability_read, row.availability_write, row.availability_delete = (
                bool(mask & 4),
                bool(mask & 2),
                bool(mask & 1),
            )
        elif key == "rse_type":
            row.rse_type = RSEType.parse(value)
        elif key in _UPDATABLE:
            setattr(row, key, _as_bool(value, key))
        else:
            raise InputValidationError(f"RSE parameter {validation.shown(key)} cannot be updated")
    session.flush()
    rse_changed(session)


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputValidationError(f"{what} must be a boolean, not {validation.shown(value)}")


def delete_rse(session: Session, rse: str) -> None:
    """Soft-delete an RSE that holds no replicas."""
    from datamgmt.core.db.models import Replica

    row = _row(session, rse)
    if session.scalar(select(Replica.rse_id).where(Replica.rse_id == row.id).limit(1)) is not None:
        raise InputValidationError(f"RSE {rse} still holds replicas and cannot be deleted")
    row.deleted = True
    row.deleted_at = utcnow()
    # The name is freed for reuse; the row stays for history.
    row.rse = f"{row.rse}-deleted-{row.id[:8]}"
    session.execute(delete(RSEAttribute).where(RSEAttribute.rse_id == row.id))
    session.flush()
    rse_changed(session)


# --- attributes ------------------------------------------------------------------------------
def _attr_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if len(text) > 255:
        raise InputValidationError("attribute values are limited to 255 characters")
    return text


def attr_value(text: str) -> str | bool:
    """Read back a stored value: 'true'/'false' become booleans, as in Rucio."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def add_rse_attribute(session: Session, rse: str, key: str, value: Any) -> None:
    validation.attribute_key(key)
    if not isinstance(rse, str) or not _PUT_ATTRIBUTE(session, rse=rse, key=key, value=_attr_text(value)):
        get_rse_id(session, rse)  # raises RSENotFound
    rse_changed(session)


def del_rse_attribute(session: Session, rse: str, key: str) -> None:
    row = _row(session, rse)
    result = session.execute(
        delete(RSEAttribute).where(RSEAttribute.rse_id == row.id, RSEAttribute.key == key)
    )
    if rowcount(result) == 0:
        raise RSEAttributeNotFound(f"RSE {rse} has no attribute {validation.shown(key)}")
    rse_changed(session)


def list_rse_attributes(session: Session, rse: str) -> dict[str, str | bool]:
    return _attributes(session, _row(session, rse).id)


def _attributes(session: Session, rse_id: str) -> dict[str, str | bool]:
    rows = session.execute(select(RSEAttribute.key, RSEAttribute.value).where(RSEAttribute.rse_id == rse_id))
    return {key: attr_value(value) for key, value in rows}


@dataclass(frozen=True)
class RSEDetail:
    """An RSE with its attributes and protocols, as ``GET /rses/{rse}`` and its pages show it."""

    info: RSEInfo
    attributes: dict[str, str | bool]
    protocols: list[dict[str, Any]]


def get_rse_detail(session: Session, rse: str) -> RSEDetail:
    """The RSE, its attributes and its protocols in three queries: the row is read once, where
    asking for each part by name read it three times (five round trips for a client's
    ``GET /rses/{rse}``, which every upload and download sends)."""
    row = _row(session, rse)
    return RSEDetail(RSEInfo.of(row), _attributes(session, row.id), protocols_of(session, row.id))


def rse_ids_with_attribute(session: Session, key: str, value: Any) -> list[str]:
    """Ids of the live RSEs whose attribute ``key`` is ``value`` (a site's RSEs, say)."""
    ids = list(
        session.scalars(
            select(RSEAttribute.rse_id)
            .join(RSE, RSE.id == RSEAttribute.rse_id)
            .where(RSEAttribute.key == key, RSEAttribute.value == _attr_text(value), RSE.deleted.is_(False))
        )
    )
    if not ids:
        raise RSENotFound(f"No RSE has {validation.shown(key)}={validation.shown(value)}")
    return ids


def get_rse_attribute(session: Session, rse_id: str, key: str) -> str | bool | None:
    value = session.scalar(
        select(RSEAttribute.value).where(RSEAttribute.rse_id == rse_id, RSEAttribute.key == key)
    )
    return None if value is None else attr_value(value)


# --- protocols -------------------------------------------------------------------------------
def _priorities(domains: dict[str, dict[str, int]]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for domain, ops in (domains or {}).items():
        if domain not in ("lan", "wan"):
            raise InputValidationError(f"unknown protocol domain {validation.shown(domain)} (lan, wan)")
        for op, priority in (ops or {}).items():
            column = op if op in _WAN_ONLY else f"{op}_{domain}"
            if op not in _OPERATIONS and op not in _WAN_ONLY:
                raise InputValidationError(f"unknown protocol operation {validation.shown(op)}")
            if op in _WAN_ONLY and domain != "wan":
                raise InputValidationError(f"{op} belongs to the wan domain")
            if (
                priority is None
                or isinstance(priority, bool)
                or not isinstance(priority, int)
                or not 0 <= priority < 2**31
            ):
                raise InputValidationError(f"protocol priority for {column} must be a non-negative integer")
            columns[column] = priority
    return columns


def add_protocol(session: Session, rse: str, parameters: dict[str, Any]) -> None:
    """Register an access protocol, given as Rucio's record (scheme, hostname, port, prefix, impl, domains)."""
    scheme = parameters.get("scheme")
    if not isinstance(scheme, str) or not scheme.isidentifier() and not scheme.replace("-", "").isalnum():
        raise InputValidationError("protocol needs a scheme such as root, davs, https, s3, file or mock")
    hostname = str(parameters.get("hostname") or "")
    try:
        port = int(parameters.get("port") or 0)
    except (TypeError, ValueError) as exc:
        raise InputValidationError("protocol port must be an integer") from exc
    if not 0 <= port <= 65535:
        raise InputValidationError("protocol port must be between 0 and 65535")
    extended = parameters.get("extended_attributes")
    values = {
        "scheme": scheme,
        "hostname": hostname,
        "port": port,
        "prefix": str(parameters.get("prefix") or ""),
        "impl": str(parameters.get("impl") or _default_impl(scheme)),
        "extended_attributes": json.dumps(extended) if extended is not None else None,
        **dict.fromkeys(_PRIORITY_COLUMNS, 0),  # operations the domains leave out
        **_priorities(parameters.get("domains") or _default_domains()),
    }
    if not isinstance(rse, str) or not _ADD_PROTOCOL(session, rse=rse, **values):
        get_rse_id(session, rse)  # raises RSENotFound; else the protocol was there
        raise Duplicate(f"RSE {rse} already has protocol {scheme}://{hostname}:{port}")
    rse_changed(session)


def _default_impl(scheme: str) -> str:
    return {"file": "posix", "s3": "s3"}.get(scheme, "gfal2")


def _default_domains() -> dict[str, dict[str, int]]:
    return {
        "lan": {"read": 1, "write": 1, "delete": 1},
        "wan": {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 1, "third_party_copy_write": 1},
    }


def protocol_record(row: RSEProtocol) -> dict[str, Any]:
    """The protocol as Rucio serialises it, with per-domain operation priorities."""
    return {
        "scheme": row.scheme,
        "hostname": row.hostname,
        "port": row.port,
        "prefix": row.prefix or "",
        "impl": row.impl,
        "domains": {
            "lan": {op: getattr(row, f"{op}_lan") for op in _OPERATIONS},
            "wan": {
                **{op: getattr(row, f"{op}_wan") for op in _OPERATIONS},
                **{op: getattr(row, op) for op in _WAN_ONLY},
            },
        },
        "extended_attributes": json.loads(row.extended_attributes) if row.extended_attributes else None,
    }


def list_protocols(session: Session, rse: str) -> list[dict[str, Any]]:
    return protocols_of(session, _row(session, rse).id)


def protocols_of(session: Session, rse_id: str) -> list[dict[str, Any]]:
    """The protocols of the RSE with this id, by scheme, as :func:`protocol_record` shows them."""
    rows = session.scalars(
        select(RSEProtocol).where(RSEProtocol.rse_id == rse_id).order_by(RSEProtocol.scheme)
    )
    return [protocol_record(p) for p in rows]


def protocols_by_rse_id(session: Session, rse_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Protocols of many RSEs in one query, for PFN building in bulk."""
    result: dict[str, list[dict[str, Any]]] = {rse_id: [] for rse_id in rse_ids}
    for row in session.scalars(select(RSEProtocol).where(RSEProtocol.rse_id.in_(set(rse_ids)))):
        result[row.rse_id].append(protocol_record(row))
    return result


def update_protocol(
    session: Session,
    rse: str,
    scheme: str,
    hostname: str | None,
    port: int | None,
    parameters: dict[str, Any],
) -> None:
    """Change the protocols of a scheme (optionally one host and port), as Rucio's ``update_protocols``.

    Any of ``hostname``, ``port``, ``prefix``, ``impl``, ``domains`` and ``extended_attributes`` may
    change; a move onto another protocol's (scheme, hostname, port) is a Duplicate.
    """
    row = _row(session, rse)
    targets = list(session.scalars(select(RSEProtocol).where(*_protocols_of(row.id, scheme, hostname, port))))
    if not targets:
        raise RSEProtocolNotSupported(f"RSE {rse} has no protocol {validation.shown(scheme)}")
    values = _protocol_changes(parameters)
    for target in targets:
        new_key = (row.id, scheme, values.get("hostname", target.hostname), values.get("port", target.port))
        if (
            new_key != (target.rse_id, target.scheme, target.hostname, target.port)
            and session.get(RSEProtocol, new_key) is not None
        ):
            raise Duplicate(f"RSE {rse} already has protocol {scheme}://{new_key[2]}:{new_key[3]}")
        for column, value in values.items():
            setattr(target, column, value)
    session.flush()
    rse_changed(session)


def _protocol_changes(parameters: dict[str, Any]) -> dict[str, Any]:
    """Column values for an update; unknown keys are refused rather than silently ignored."""
    unknown = set(parameters) - {
        "hostname",
        "port",
        "prefix",
        "impl",
        "domains",
        "extended_attributes",
        "scheme",
    }
    if unknown:
        raise InputValidationError(f"protocol has no field {validation.shown(sorted(unknown)[0])}")
    values: dict[str, Any] = {}
    if "hostname" in parameters:
        values["hostname"] = str(parameters["hostname"] or "")
    if "port" in parameters:
        try:
            values["port"] = int(parameters["port"] or 0)
        except (TypeError, ValueError) as exc:
            raise InputValidationError("protocol port must be an integer") from exc
        if not 0 <= values["port"] <= 65535:
            raise InputValidationError("protocol port must be between 0 and 65535")
    for column in ("prefix", "impl"):
        if column in parameters:
            values[column] = str(parameters[column] or "")
    if "extended_attributes" in parameters:
        extended = parameters["extended_attributes"]
        values["extended_attributes"] = json.dumps(extended) if extended is not None else None
    if parameters.get("domains") is not None:
        values.update(_priorities(parameters["domains"]))
    return values


def _protocols_of(
    rse_id: str, scheme: str, hostname: str | None, port: int | None
) -> list[ColumnElement[bool]]:
    """Conditions for an RSE's protocols of a scheme, optionally of one host and port (Rucio's paths)."""
    conditions = [RSEProtocol.rse_id == rse_id, RSEProtocol.scheme == scheme]
    if hostname is not None:
        conditions.append(RSEProtocol.hostname == hostname)
    if port is not None:
        conditions.append(RSEProtocol.port == int(port))
    return conditions


def del_protocol(
    session: Session, rse: str, scheme: str, hostname: str | None = None, port: int | None = None
) -> None:
    row = _row(session, rse)
    if (
        rowcount(session.execute(delete(RSEProtocol).where(*_protocols_of(row.id, scheme, hostname, port))))
        == 0
    ):
        raise RSEProtocolNotSupported(f"RSE {rse} has no protocol {validation.shown(scheme)}")
    rse_changed(session)


# --- limits and usage -----------------------------------------------------------------------


def set_rse_limits(session: Session, rse: str, name: str, value: int) -> None:
    rse_id = get_rse_id(session, rse)
    validation.attribute_key(name)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise InputValidationError(f"limit {name} must be an integer") from exc
    put(session, RSELimit, (rse_id, name), value=number)
    rse_changed(session)


def delete_rse_limits(session: Session, rse: str, name: str) -> None:
    row = _row(session, rse)
    session.execute(delete(RSELimit).where(RSELimit.rse_id == row.id, RSELimit.name == name))
    rse_changed(session)


def get_rse_limits(session: Session, rse: str) -> dict[str, int]:
    row = _row(session, rse)
    return dict(
        session.execute(select(RSELimit.name, RSELimit.value).where(RSELimit.rse_id == row.id)).tuples().all()
    )


def set_rse_usage(
    session: Session, rse: str, source: str, used: int, free: int | None, files: int | None = None
) -> None:
    row = _row(session, rse)
    put(session, RSEUsage, (row.id, source), used=int(used), free=free, files=int(files or 0))
    rse_changed(session)


def get_rse_usage(
    session: Session, rse: str, source: str | None = None, per_account: bool = False
) -> list[dict[str, Any]]:
    """The RSE's usage rows; with ``per_account`` the ``rucio`` row also lists account shares.

    Shares are Rucio's: accounts with non-zero bytes, largest first, with the percentage of
    the RSE's total.  Like account usage, they are open to every account.
    """
    row = _row(session, rse)
    query = select(RSEUsage).where(RSEUsage.rse_id == row.id)
    if source:
        query = query.where(RSEUsage.source == source)
    usages = []
    for u in session.scalars(query):
        total = None if u.free is None else u.used + u.free
        usage = {
            "rse_id": u.rse_id,
            "rse": row.rse,
            "source": u.source,
            "used": u.used,
            "free": u.free,
            "total": total,
            "files": u.files,
            "updated_at": u.updated_at,
        }
        if per_account and u.source == "rucio":
            usage["account_usages"] = _account_shares(session, row.id, total or u.used)
        usages.append(usage)
    return usages


def _account_shares(session: Session, rse_id: str, total: int) -> list[dict[str, Any]]:
    query = (
        select(AccountUsage.account, AccountUsage.bytes)
        .where(AccountUsage.rse_id == rse_id, AccountUsage.bytes != 0)
        .order_by(AccountUsage.bytes.desc(), AccountUsage.account)
    )
    return [
        {"account": name, "used": used, "percentage": round(used / total * 100, 2) if total else 0}
        for name, used in session.execute(query)
    ]
