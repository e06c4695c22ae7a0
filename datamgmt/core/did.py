"""Data identifiers: files, datasets and containers: look-up, creation, status and lifetime.

Everything here is set-based: a call that adds N DIDs issues a fixed number of statements
(existence checks in chunks, one bulk INSERT per table), never one query per DID.  The
contents graph between DIDs (attach, detach, listing content, files and parents) is
:mod:`datamgmt.core.did_content`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.bulk import insert_rows
from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import Content, DataIdentifier, Scope
from datamgmt.core.db.point_reads import PointRead
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import DIDKey, chunks, keys_in, probe_each_key
from datamgmt.exceptions import (
    DataIdentifierAlreadyExists,
    DataIdentifierNotFound,
    FileConsistencyMismatch,
    InputValidationError,
    ScopeNotFound,
    UnsupportedOperation,
)

COLLECTIONS = (DIDType.DATASET, DIDType.CONTAINER)
DELETED_TYPES = (DIDType.DELETED_FILE, DIDType.DELETED_DATASET, DIDType.DELETED_CONTAINER)


def did_str(scope: str, name: str) -> str:
    return f"{scope}:{name}"


def not_found(scope: str, name: str) -> DataIdentifierNotFound:
    return DataIdentifierNotFound(f"Data identifier {validation.shown(did_str(scope, name), 80)} not found")


def did_dict(row: DataIdentifier) -> dict[str, Any]:
    """A DID as the REST API shows it (Rucio's field names)."""
    return {
        "scope": row.scope,
        "name": row.name,
        "type": row.did_type.name,
        "account": row.account,
        "bytes": row.bytes,
        "length": row.length,
        "md5": row.md5,
        "adler32": row.adler32,
        "guid": row.guid,
        "open": row.is_open,
        "monotonic": row.monotonic,
        "obsolete": row.obsolete,
        "hidden": row.hidden,
        "availability": row.availability.name,
        "expired_at": row.expired_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "closed_at": row.closed_at,
        "purge_replicas": row.purge_replicas,
    }


def check_scopes(session: Session, scopes: Iterable[str]) -> None:
    """Raise ScopeNotFound unless every scope exists (one query)."""
    wanted = set(scopes)
    for scope in wanted:
        validation.scope_name(scope)
    found = set(session.scalars(select(Scope.scope).where(Scope.scope.in_(wanted))))
    missing = wanted - found
    if missing:
        raise ScopeNotFound(f"Scope {validation.shown(sorted(missing)[0])} does not exist")


#: The columns bulk operations need; plain rows load far faster than ORM entities.
_BRIEF = (
    DataIdentifier.scope,
    DataIdentifier.name,
    DataIdentifier.did_type,
    DataIdentifier.bytes,
    DataIdentifier.adler32,
    DataIdentifier.md5,
    DataIdentifier.guid,
    DataIdentifier.events,
    DataIdentifier.availability,
)


#: The key columns of ``dids``, for :func:`~datamgmt.core.keys.keys_in`.
#: The key columns of a DID, for ``keys_in``.
DID_KEY = (DataIdentifier.scope, DataIdentifier.name)


#: One DID by its key, bound as the parameters ``scope`` and ``name`` (statements built once).
DID_BY_KEY = (DataIdentifier.scope == bindparam("scope"), DataIdentifier.name == bindparam("name"))
#: :func:`existing_dids` of one DID (most calls name one), built once: building a statement and
#: its cache key costs more than running it.
_ONE_BRIEF = select(*_BRIEF).where(*DID_BY_KEY)


def _probed_brief() -> Select[Any]:
    joined, row = probe_each_key(DataIdentifier.__table__, ("scopes", "names"))
    return select(*(row.c[column.expression.name] for column in _BRIEF)).select_from(joined)


#: A chunk of DIDs looked up on PostgreSQL, the keys bound as two arrays.
_PROBED_BRIEF = _probed_brief()


def existing_dids(session: Session, keys: Sequence[DIDKey]) -> dict[DIDKey, Row[Any]]:
    """The DIDs among ``keys`` that exist, as light rows (``_BRIEF`` columns), fetched in chunks.

    Keys are matched as ``name IN (…)`` per scope on SQLite (:func:`~datamgmt.core.keys.keys_in`)
    and by one index probe each on PostgreSQL (:func:`~datamgmt.core.keys.probe_each_key`),
    which its planner would otherwise trade for a scan of every DID up to some 100,000 of them."""
    connection = session.connection()
    found: dict[DIDKey, Row[Any]] = {}
    for part in chunks(list(dict.fromkeys(keys))):
        if len(part) == 1:
            rows = connection.execute(_ONE_BRIEF, {"scope": part[0][0], "name": part[0][1]})
        elif connection.dialect.name == "postgresql":
            rows = connection.execute(
                _PROBED_BRIEF, {"scopes": [k[0] for k in part], "names": [k[1] for k in part]}
            )
        else:
            rows = connection.execute(select(*_BRIEF).where(keys_in(DID_KEY, part)))
        found.update({(row.scope, row.name): row for row in rows})
    return found


def get_did_row(session: Session, scope: str, name: str) -> DataIdentifier:
    row = (
        session.get(DataIdentifier, (scope, name))
        if isinstance(scope, str) and isinstance(name, str)
        else None
    )
    if row is None or row.did_type in DELETED_TYPES:
        raise not_found(scope, name)
    return row


#: What :func:`did_dict` shows of one DID: built once and run without the ORM, on a bare
#: cursor where it can (core/db/point_reads.py), because ``GET /dids/{scope}/{name}`` is the
#: commonest call of all.
_ONE_DID = PointRead(
    select(
        *(
            getattr(DataIdentifier, column)
            for column in (
                "scope",
                "name",
                "did_type",
                "account",
                "bytes",
                "length",
                "md5",
                "adler32",
                "guid",
                "is_open",
                "monotonic",
                "obsolete",
                "hidden",
                "availability",
                "expired_at",
                "created_at",
                "updated_at",
                "closed_at",
                "purge_replicas",
            )
        )
    ).where(*DID_BY_KEY)
)


#: Every column of one DID, for the reads that show them all (metadata's ``DID_COLUMN``): a
#: row, not an ORM entity, which cost 0.4 ms to load.
_WHOLE_DID = PointRead(select(*DataIdentifier.__table__.columns).where(*DID_BY_KEY))


def did_columns(session: Session, scope: str, name: str) -> Any:
    """Every column of a live DID, as a read-only row named as the columns (not found:
    DataIdentifierNotFound, as :func:`get_did_row`)."""
    return _live(_WHOLE_DID, session, scope, name)


def _live(read: PointRead, session: Session, scope: str, name: str) -> Any:
    """``read``'s row of the live DID ``scope:name``, or DataIdentifierNotFound."""
    found = isinstance(scope, str) and isinstance(name, str)
    row = read.first(session, scope=scope, name=name) if found else None
    if row is None or row.did_type in DELETED_TYPES:
        raise not_found(scope, name)
    return row


def get_did(session: Session, scope: str, name: str, dynamic: bool = False) -> dict[str, Any]:
    """A DID; with ``dynamic`` an open collection's bytes and length are computed now."""
    row = _live(_ONE_DID, session, scope, name)
    result = did_dict(row)
    if dynamic and row.did_type in COLLECTIONS and row.is_open:
        length, size = session.execute(
            select(func.count(), func.coalesce(func.sum(Content.bytes), 0)).where(
                Content.scope == scope, Content.name == name
            )
        ).one()
        result.update(length=int(length), bytes=int(size))
    return result


# --- creation --------------------------------------------------------------------------------
def _lifetime_to_expiry(lifetime: int | None) -> datetime | None:
    if lifetime is None:
        return None
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 0:
        raise InputValidationError("lifetime must be a non-negative number of seconds")
    return utcnow() + timedelta(seconds=lifetime)


def add_collections(session: Session, dids: Sequence[dict[str, Any]], account: str) -> None:
    """Register datasets and containers in bulk.

    Each item: scope, name, type (DATASET or CONTAINER), optional lifetime, monotonic,
    open (default True).  Files are created by registering replicas, as in Rucio.
    """
    rows: list[dict[str, Any]] = []
    for did in dids:
        scope, name = validation.scope_name(did.get("scope")), validation.did_name(did.get("name"))
        kind = DIDType.parse(did.get("type") or did.get("did_type") or "DATASET")
        if kind not in COLLECTIONS:
            raise UnsupportedOperation(
                "Only collections (DATASET, CONTAINER) can be registered; files come with replicas"
            )
        rows.append(
            {
                "scope": scope,
                "name": name,
                "account": account,
                "did_type": kind,
                "is_open": bool(did.get("open", True)),
                "monotonic": bool(did.get("monotonic", False)),
                "expired_at": _lifetime_to_expiry(did.get("lifetime")),
                "bytes": 0,
                "length": 0,
            }
        )
    _insert_new_dids(session, rows)


def add_collection(
    session: Session,
    scope: str,
    name: str,
    did_type: str,
    account: str,
    lifetime: int | None = None,
    monotonic: bool = False,
) -> None:
    add_collections(
        session,
        [{"scope": scope, "name": name, "type": did_type, "lifetime": lifetime, "monotonic": monotonic}],
        account,
    )


def _insert_new_dids(session: Session, rows: list[dict[str, Any]]) -> None:
    keys = [(row["scope"], row["name"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise DataIdentifierAlreadyExists("the request names the same DID twice")
    check_scopes(session, {scope for scope, _ in keys})
    clash = existing_dids(session, keys)
    if clash:
        scope, name = next(iter(clash))
        raise DataIdentifierAlreadyExists(
            f"Data identifier {validation.shown(did_str(scope, name), 80)} already exists"
        )
    if rows:
        now = utcnow()
        session.execute(
            insert(DataIdentifier.__table__), [{**r, "created_at": now, "updated_at": now} for r in rows]
        )


def add_files(
    session: Session, files: Sequence[dict[str, Any]], account: str
) -> tuple[list[dict[str, Any]], set[DIDKey]]:
    """Create the file DIDs that do not exist yet; check the others' checksums match.

    Returns the validated file records (scope, name, bytes, adler32, md5, guid) in input
    order and the keys of the files that existed before.  Used by replica registration,
    which is how files enter the catalogue.
    """
    records = [_file_record(f) for f in files]
    keys = [(r["scope"], r["name"]) for r in records]
    check_scopes(session, {scope for scope, _ in keys})
    known = existing_dids(session, keys)
    now = utcnow()
    new_rows: dict[DIDKey, dict[str, Any]] = {}
    for record, key in zip(records, keys, strict=True):
        row = known.get(key)
        if row is None:
            new_rows.setdefault(
                key,
                {
                    **record,
                    "account": account,
                    "did_type": DIDType.FILE,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            continue
        if row.did_type != DIDType.FILE:
            raise UnsupportedOperation(
                f"{validation.shown(did_str(*key), 80)} is a {row.did_type.name}, not a file"
            )
        _check_consistency(row, record)
    if new_rows:
        insert_rows(session, DataIdentifier, list(new_rows.values()))
    return records, set(known)


def _file_record(item: dict[str, Any]) -> dict[str, Any]:
    scope, name = validation.scope_name(item.get("scope")), validation.did_name(item.get("name"))
    size = item.get("bytes")
    validation.non_negative_int(size, "bytes")
    adler = item.get("adler32")
    md5 = item.get("md5")
    if adler is None and md5 is None:
        raise InputValidationError(
            f"file {validation.shown(did_str(scope, name), 80)} needs an adler32 or md5"
        )
    guid = item.get("guid")
    return {
        "scope": scope,
        "name": name,
        "bytes": size,
        "adler32": None if adler is None else validation.adler32(adler),
        "md5": None if md5 is None else validation.md5(md5),
        "guid": guid.replace("-", "").lower() if isinstance(guid, str) else None,
    }


def _check_consistency(row: Row[Any], record: dict[str, Any]) -> None:
    for field in ("bytes", "adler32", "md5"):
        ours, theirs = getattr(row, field), record.get(field)
        if ours is not None and theirs is not None and ours != theirs:
            raise FileConsistencyMismatch(
                f"{field} of {validation.shown(did_str(row.scope, row.name), 80)} differs from the catalogue"
            )


# --- status and lifetime ---------------------------------------------------------------------
def set_status(session: Session, scope: str, name: str, is_open: bool, is_admin: bool = False) -> None:
    """Close a collection (freezing its bytes and length) or, as an admin, reopen it."""
    row = get_did_row(session, scope, name)
    if row.did_type not in COLLECTIONS:
        raise UnsupportedOperation("only collections can be opened or closed")
    if is_open and not row.is_open and not is_admin:
        raise UnsupportedOperation("only an admin can reopen a closed collection")
    if not is_open and row.is_open:
        length, size = session.execute(
            select(func.count(), func.coalesce(func.sum(Content.bytes), 0)).where(
                Content.scope == scope, Content.name == name
            )
        ).one()
        row.length, row.bytes, row.closed_at = int(length), int(size), utcnow()
    row.is_open = bool(is_open)
    session.flush()
