"""Replicas: which RSE holds a copy of which file, and in what state.

Registration is bulk: one chunked existence check and one INSERT per table for any
number of files.  Every replica row stores its storage path, unique per RSE
(:mod:`datamgmt.core.replica_path`).  Listing streams from a server-side cursor grouped by file, so a
caller can serve 10^6 replicas with flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamgmt.core import bad_replica, validation
from datamgmt.core.db.bulk import insert_rows
from datamgmt.core.db.constants import OBSOLETE, BadFilesStatus, DIDType, ReplicaState
from datamgmt.core.db.models import RSE, DataIdentifier, QuarantinedReplica, Replica, UpdatedRSECounter
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS, DID_BY_KEY, add_files, existing_dids, not_found
from datamgmt.core.did_content import file_keys_query
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.replica_path import (
    paths_on_rse,
    refuse_repeated_paths,
    refuse_used_paths,
    registration_paths,
)
from datamgmt.core.rse import get_rse, get_rse_id
from datamgmt.exceptions import (
    Duplicate,
    ReplicaIsLocked,
    ReplicaNotFound,
    ResourceTemporaryUnavailable,
    UnsupportedOperation,
)


def add_replicas(
    session: Session,
    rse: str,
    files: Sequence[dict[str, Any]],
    account: str,
    state: ReplicaState = ReplicaState.AVAILABLE,
    tombstone: datetime | None = None,
) -> int:
    """Register replicas on one RSE, creating missing file DIDs; returns how many.

    Each file: scope, name, bytes, adler32 and/or md5, optional guid, optional ``state``, and
    ``path`` or ``pfn``: required on non-deterministic RSEs, and on deterministic ones accepted
    only when it is the RSE's algorithm's (see :mod:`datamgmt.core.replica_path`).  A path that
    another replica on the RSE already uses is a Duplicate.
    """
    info = get_rse(session, rse)
    paths = registration_paths(session, info, files)
    records, known = add_files(session, files, account)
    keys = [(r["scope"], r["name"]) for r in records]
    if len(set(keys)) != len(keys):
        raise Duplicate("the request names the same file twice")
    # A replica needs its file DID: only files that existed before can already have one.
    clash = _existing_replica_keys(session, info.id, [key for key in keys if key in known])
    if clash:
        raise Duplicate(f"File replica {validation.shown(':'.join(clash[0]), 80)} already exists on {rse}")
    refuse_repeated_paths(rse, paths)
    now = utcnow()
    rows = [
        {
            "scope": record["scope"],
            "name": record["name"],
            "rse_id": info.id,
            "bytes": record["bytes"],
            "adler32": record["adler32"],
            "md5": record["md5"],
            "path": path,
            "state": ReplicaState.parse(item.get("state") or state),
            "lock_cnt": 0,
            "tombstone": item.get("tombstone", tombstone),
            "accessed_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for record, item, path in zip(records, files, paths, strict=True)
    ]
    if rows:
        _insert_replicas(session, info.id, rse, rows)
        record_rse_delta(session, info.id, len(rows), sum(r["bytes"] for r in rows))
    return len(rows)


def _insert_replicas(session: Session, rse_id: str, rse: str, rows: list[dict[str, Any]]) -> None:
    """Insert the rows; when the unique (rse_id, path) index refuses one, name the replica
    that holds its path (:func:`refuse_used_paths`).  The insert runs in a savepoint so that
    the transaction can still look it up; any other refusal is raised as it came."""
    try:
        with session.begin_nested():
            insert_rows(session, Replica, rows)
    except IntegrityError:
        refuse_used_paths(session, rse_id, rse, [row["path"] for row in rows])
        raise


def record_rse_delta(session: Session, rse_id: str, files: int, size: int) -> None:
    """Queue a change of an RSE's catalogue usage for abacus."""
    session.execute(insert(UpdatedRSECounter).values(rse_id=rse_id, files=files, bytes=size))


def _existing_replica_keys(session: Session, rse_id: str, keys: Sequence[DIDKey]) -> list[DIDKey]:
    found: list[DIDKey] = []
    for part in chunks(list(keys)):
        found.extend(
            session.execute(
                select(Replica.scope, Replica.name).where(
                    Replica.rse_id == rse_id, keys_in((Replica.scope, Replica.name), part)
                )
            ).tuples()
        )
    return found


def get_replica(session: Session, rse: str, scope: str, name: str) -> dict[str, Any]:
    rse_id = get_rse_id(session, rse)
    row = session.get(Replica, (scope, name, rse_id))
    if row is None:
        raise ReplicaNotFound(f"Replica {validation.shown(scope + ':' + name, 80)} not found on {rse}")
    return _replica_dict(row, rse)


_FILE_COLUMNS = (
    DataIdentifier.scope,
    DataIdentifier.name,
    DataIdentifier.bytes,
    DataIdentifier.adler32,
    DataIdentifier.md5,
)
_REPLICA_COLUMNS = (
    Replica.rse_id,
    Replica.path,
    Replica.state,
    Replica.lock_cnt,
    Replica.tombstone,
    Replica.accessed_at,
    Replica.created_at,
    Replica.updated_at,
)


def _replica_dict(row: Any, rse: str) -> dict[str, Any]:
    """A replica as the API shows it, from an entity or a row with the same attribute names."""
    return {
        "scope": row.scope,
        "name": row.name,
        "rse_id": row.rse_id,
        "rse": rse,
        "bytes": row.bytes,
        "adler32": row.adler32,
        "md5": row.md5,
        "path": row.path,
        "state": row.state.name,
        "lock_cnt": row.lock_cnt,
        "tombstone": row.tombstone,
        "accessed_at": row.accessed_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def expand_to_files(session: Session, dids: Sequence[dict[str, Any]]) -> dict[DIDKey, list[str]]:
    """The files named by ``dids``: files as they are, collections resolved recursively.

    Each file maps to the requested collections it was found under (``scope:name``), which
    is what a client needs to tell which of its requests a file answers."""
    keys = [(validation.scope_name(d.get("scope")), validation.did_name(d.get("name"))) for d in dids]
    found = existing_dids(session, keys)
    files: dict[DIDKey, list[str]] = {}
    for key in keys:
        row = found.get(key)
        if row is None:
            raise not_found(*key)
        if row.did_type == DIDType.FILE:
            files.setdefault(key, [])
        elif row.did_type in COLLECTIONS:
            for file_key in session.execute(file_keys_query(key[0], key[1], row.did_type)).tuples():
                files.setdefault(file_key, []).append(f"{key[0]}:{key[1]}")
    return files


#: Files of a listing read whole rather than streamed: their rows are bounded by the files
#: times the RSEs, and a server-side cursor's own round trips (BEGIN, DECLARE, FETCH, CLOSE and
#: COMMIT on PostgreSQL) cost more than listing one file's replicas.
_READ_WHOLE_UP_TO = 16


def _replicas_of(files: ColumnElement[bool]) -> Select[Any]:
    """Each of ``files`` with its replicas (none: one row of NULLs) and their RSEs' names."""
    return (
        select(*_FILE_COLUMNS, *_REPLICA_COLUMNS, RSE.rse)
        .outerjoin(
            Replica,
            and_(Replica.scope == DataIdentifier.scope, Replica.name == DataIdentifier.name),
        )
        .outerjoin(RSE, RSE.id == Replica.rse_id)
        .where(files)
        .order_by(DataIdentifier.scope, DataIdentifier.name)
    )


#: One file's replicas (``rucio download`` of a file, ``GET /replicas/{scope}/{name}``), built
#: once: building the statement and its cache key cost more than running it.
_ONE_FILES_REPLICAS = _replicas_of(and_(*DID_BY_KEY))


def list_replicas(
    session: Session,
    dids: Sequence[dict[str, Any]],
    rse_ids: set[str] | None = None,
    all_states: bool = False,
) -> Iterator[dict[str, Any]]:
    """Replicas of the files under ``dids``, one dict per file with its replicas.

    Files without a (matching) replica are yielded with an empty ``replicas`` list,
    because clients (and Rucio's) show them so.  ``parents`` names the requested collections
    each file was found under (see :func:`expand_to_files`).
    """
    files = expand_to_files(session, dids)
    for part in chunks(list(files)):
        if len(part) == 1:
            query, values = _ONE_FILES_REPLICAS, {"scope": part[0][0], "name": part[0][1]}
        else:
            query, values = _replicas_of(keys_in((DataIdentifier.scope, DataIdentifier.name), part)), {}
            if len(part) > _READ_WHOLE_UP_TO:
                query = query.execution_options(yield_per=1000)
        rows = session.execute(query, values)
        for (scope, name), group in groupby(rows, key=lambda r: (r.scope, r.name)):
            entries = list(group)
            first = entries[0]
            replicas = [
                _replica_dict(row, row.rse)
                for row in entries
                if row.rse_id is not None
                and (rse_ids is None or row.rse_id in rse_ids)
                and (all_states or row.state == ReplicaState.AVAILABLE)
            ]
            yield {
                "scope": scope,
                "name": name,
                "bytes": first.bytes,
                "adler32": first.adler32,
                "md5": first.md5,
                "replicas": replicas,
                "parents": files[(scope, name)],
            }


def update_replica_states(session: Session, rse: str, updates: Sequence[dict[str, Any]]) -> None:
    """Set the state of replicas on one RSE; each update: scope, name, state.

    A replica the reaper is deleting (BEING_DELETED) keeps that state, and the call fails
    whole: its file is going, or gone, from storage.  The update itself refuses it (a compare
    and set), not a look before: a client that read the replica AVAILABLE just before the
    reaper's confirmation committed would otherwise write its state over BEING_DELETED, and
    the reaper, finding the row no longer BEING_DELETED, kept it after deleting the file.
    """
    rse_id = get_rse_id(session, rse)
    by_state: dict[ReplicaState, list[DIDKey]] = {}
    for item in updates:
        key = (validation.scope_name(item.get("scope")), validation.did_name(item.get("name")))
        by_state.setdefault(ReplicaState.parse(item.get("state", "")), []).append(key)
    for state, keys in by_state.items():
        if state == ReplicaState.BEING_DELETED:
            raise UnsupportedOperation("BEING_DELETED is set by the reaper only")
        present = _existing_replica_keys(session, rse_id, keys)
        if len(present) != len(set(keys)):
            missing = sorted(set(keys) - set(present))[0]
            raise ReplicaNotFound(f"Replica {validation.shown(':'.join(missing), 80)} not found on {rse}")
        _set_state_unless_deleted(session, rse_id, present, state)


def _set_state_unless_deleted(
    session: Session, rse_id: str, keys: Sequence[DIDKey], state: ReplicaState
) -> None:
    for part in chunks(list(keys)):
        on_part = [Replica.rse_id == rse_id, keys_in((Replica.scope, Replica.name), part)]
        changed = session.execute(
            update(Replica)
            .where(*on_part, Replica.state != ReplicaState.BEING_DELETED)
            .values(state=state)
            .execution_options(synchronize_session=False)
        )
        if rowcount(changed) != len(part):
            taken = session.execute(
                select(Replica.scope, Replica.name)
                .where(*on_part, Replica.state == ReplicaState.BEING_DELETED)
                .limit(1)
            ).first()
            shown = validation.shown(":".join(taken), 80) if taken else "of the request"
            raise UnsupportedOperation(f"Replica {shown} is being deleted; its state cannot change")


def touch_replicas(session: Session, rse_id: str, keys: Sequence[DIDKey]) -> None:
    """Record access, which the reaper's least-recently-used order reads."""
    _update_on_rse(session, rse_id, keys, accessed_at=utcnow())


def _update_on_rse(session: Session, rse_id: str, keys: Sequence[DIDKey], **values: Any) -> None:
    """Set ``values`` on the replicas of ``keys`` on one RSE, one UPDATE per chunk of keys."""
    for part in chunks(list(keys)):
        session.execute(
            update(Replica)
            .where(Replica.rse_id == rse_id, keys_in((Replica.scope, Replica.name), part))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def set_tombstone(session: Session, rse: str, keys: Sequence[DIDKey]) -> None:
    """Give unlocked replicas an OBSOLETE tombstone, so the reaper deletes them first (Rucio's
    ``set_tombstone``); all or nothing: a locked replica is ReplicaIsLocked, a missing one
    ReplicaNotFound."""
    rse_id = get_rse_id(session, rse)
    wanted = list(dict.fromkeys(keys))
    present = dict.fromkeys(_existing_replica_keys(session, rse_id, wanted))
    missing = [key for key in wanted if key not in present]
    if missing:
        raise ReplicaNotFound(
            f"Replica {validation.shown(':'.join(missing[0]), 80)} on RSE {rse} could not be found"
        )
    marked: set[DIDKey] = set()
    for part in chunks(wanted):
        marked.update(
            session.execute(
                update(Replica)
                .where(
                    Replica.rse_id == rse_id,
                    keys_in((Replica.scope, Replica.name), part),
                    Replica.lock_cnt == 0,
                )
                .values(tombstone=OBSOLETE)
                .returning(Replica.scope, Replica.name)
            ).tuples()
        )
    locked = [key for key in wanted if key not in marked]
    if locked:
        holds = session.scalar(
            select(Replica.lock_cnt).where(
                Replica.rse_id == rse_id, Replica.scope == locked[0][0], Replica.name == locked[0][1]
            )
        )
        others = f" (and {len(locked) - 1} more)" if len(locked) > 1 else ""
        raise ReplicaIsLocked(
            f"Replica {validation.shown(':'.join(locked[0]), 80)} on RSE {rse} is locked by "
            f"{holds} rule lock(s){others}; it can be removed once no rule holds it there"
        )


def quarantine(session: Session, rse_id: str, found: Sequence[dict[str, Any]]) -> int:
    """Record files on storage that no replica names (Rucio's quarantined replicas); returns how
    many were new.  A file that is a registered replica is never quarantined, and one already
    recorded is left as it is."""
    named = [
        (item["scope"], item["name"])
        for item in found
        if isinstance(item.get("scope"), str) and isinstance(item.get("name"), str)
    ]
    registered = set(_existing_replica_keys(session, rse_id, named))
    paths = {item["path"]: item for item in found if (item.get("scope"), item.get("name")) not in registered}
    known: set[str] = set()
    for part in chunks(list(paths)):
        known.update(
            session.scalars(
                select(QuarantinedReplica.path).where(paths_on_rse(QuarantinedReplica, rse_id, part))
            )
        )
        known.update(session.scalars(select(Replica.path).where(paths_on_rse(Replica, rse_id, part))))
    now = utcnow()
    rows = [
        {
            "rse_id": rse_id,
            "path": path[:1024],
            "scope": item.get("scope"),
            "name": item.get("name"),
            "created_at": now,
            "updated_at": now,
        }
        for path, item in paths.items()
        if path not in known
    ]
    if rows:
        session.execute(insert(QuarantinedReplica), rows)
    return len(rows)


def delete_replicas(
    session: Session, rse: str, keys: Sequence[DIDKey], ignore_availability: bool = False
) -> int:
    """Forget replicas on one RSE, catalogue only (Rucio's ``delete_replicas``: the caller has
    removed the files or will).  Stricter than Rucio where data is at stake: a replica that a
    rule locks, or that the reaper is deleting, is refused (ReplicaIsLocked), never dropped
    under its rule.  Refused on an RSE closed for deletion unless ``ignore_availability``."""
    info = get_rse(session, rse)
    if not info.availability_delete and not ignore_availability:
        raise ResourceTemporaryUnavailable(f"{rse} is temporary unavailable for deleting")
    wanted = list(dict.fromkeys(keys))
    present = set(_existing_replica_keys(session, info.id, wanted))
    missing = [key for key in wanted if key not in present]
    if missing:
        raise ReplicaNotFound(f"Replica {validation.shown(':'.join(missing[0]), 80)} not found on {rse}")
    gone: dict[DIDKey, int] = {}
    for part in chunks(wanted):
        gone.update(
            ((s, n), b or 0)
            for s, n, b in session.execute(
                delete(Replica)
                .where(
                    Replica.rse_id == info.id,
                    keys_in((Replica.scope, Replica.name), part),
                    Replica.lock_cnt == 0,
                    Replica.state != ReplicaState.BEING_DELETED,
                )
                .returning(Replica.scope, Replica.name, Replica.bytes)
                .execution_options(synchronize_session=False)
            )
        )
    held = [key for key in wanted if key not in gone]
    if held:
        raise ReplicaIsLocked(
            f"Replica {validation.shown(':'.join(held[0]), 80)} on {rse} is locked or being deleted"
        )
    record_rse_delta(session, info.id, -len(gone), -sum(gone.values()))
    bad_replica.resolve(
        session, [(s, n, info.id) for s, n in gone], BadFilesStatus.BAD, BadFilesStatus.DELETED
    )
    return len(gone)
