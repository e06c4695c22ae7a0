"""Where a replica lives on its RSE: the path stored with every replica row.

Every replica row carries the path, relative to the protocol prefix, that the protocols use for
it, and ``(rse_id, path)`` is unique: two replicas on one RSE can never name one file, so deleting
one can never unlink the other's data.

* On a deterministic RSE the path is always the RSE's lfn2pfn algorithm's (attribute
  ``lfn2pfn_algorithm``). A caller may send a ``path`` or ``pfn`` (Rucio's clients do), but only
  the one the algorithm gives; anything else is refused, never stored.
* On a non-deterministic RSE the path comes from the caller (``path``, or a ``pfn`` below one of
  the RSE's protocols); the permission policy leaves that to admins. One leading slash is read as
  "relative to the prefix", as the protocols read it, and is not stored.
* Replicas created by rules get the algorithm's path on any RSE: it is where transfers write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.models import Replica, RSEAttribute
from datamgmt.core.did import chunks
from datamgmt.core.rse import RSEInfo, protocols_by_rse_id
from datamgmt.exceptions import Duplicate, InputValidationError, InvalidPath
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM, join_path, lfn2path
from datamgmt.rse.protocols import Protocol, create_protocol

ALGORITHM_ATTRIBUTE = "lfn2pfn_algorithm"

DIDKey = tuple[str, str]


def algorithms(session: Session, rse_ids: Iterable[str]) -> dict[str, str]:
    """The lfn2pfn algorithm of each RSE, in one query."""
    ids = set(rse_ids)
    chosen = dict(
        session.execute(
            select(RSEAttribute.rse_id, RSEAttribute.value).where(
                RSEAttribute.rse_id.in_(ids), RSEAttribute.key == ALGORITHM_ATTRIBUTE
            )
        ).tuples().all()
    )
    return {rse_id: chosen.get(rse_id) or DEFAULT_ALGORITHM for rse_id in ids}


def fill_algorithm_paths(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set ``path`` on new replica rows (scope, name, rse_id) from their RSEs' algorithms."""
    by_rse = algorithms(session, {row["rse_id"] for row in rows})
    for row in rows:
        row["path"] = lfn2path(row["scope"], row["name"], by_rse[row["rse_id"]])


def _relative(path: object) -> str:
    """A caller's path read as the protocols read it: one leading slash means "below the prefix"."""
    if not isinstance(path, str) or not path:
        raise InvalidPath("a replica path must be a non-empty string")
    return path[1:] if path.startswith("/") else path


def _stored_form(path: object) -> str:
    """A caller's path as stored on a non-deterministic RSE; refused if it could alias or escape.

    Empty and ``.`` segments, percent-encoding, ``..``, backslashes and control characters are
    refused rather than normalised, so that one file has exactly one spelling in the catalogue
    and the unique index on ``(rse_id, path)`` sees every collision.
    """
    relative = _relative(path)
    if "%" in relative or any(segment in ("", ".") for segment in relative.split("/")):
        raise InvalidPath(f"Path {validation.shown(relative, 120)} has empty, '.' or percent-encoded segments")
    join_path("/", relative)  # raises InvalidPath on '..', backslashes, control characters
    return relative


class _Protocols:
    """The RSE's protocols, built once per registration, to read and check ``pfn`` values."""

    def __init__(self, session: Session, info: RSEInfo, algorithm: str) -> None:
        records = protocols_by_rse_id(session, [info.id])[info.id]
        self.rse = info.rse
        self.protocols: list[Protocol] = [create_protocol(r, lfn2pfn_algorithm=algorithm) for r in records]

    def path_of(self, pfn: str) -> str:
        """The path below a protocol's prefix that ``pfn`` names (not yet checked)."""
        for protocol in self.protocols:
            area = protocol.base_url + protocol.record.prefix
            if pfn.startswith(area):
                return pfn[len(area) :]
        raise InvalidPath(f"PFN {validation.shown(pfn, 120)} is not below any protocol of RSE {self.rse}")

    def pfns_of(self, path: str) -> set[str]:
        return {protocol.path_to_pfn(path) for protocol in self.protocols}


def registration_paths(session: Session, info: RSEInfo, files: Sequence[Mapping[str, Any]]) -> list[str]:
    """The path of each file (scope, name, optional ``path`` or ``pfn``) registered on ``info``.

    Called before anything is written, so a refused path leaves nothing behind.
    """
    algorithm = algorithms(session, [info.id])[info.id]
    protocols: _Protocols | None = None
    paths = []
    for item in files:
        record = {"scope": validation.scope_name(item.get("scope")), "name": validation.did_name(item.get("name"))}
        supplied, pfn = item.get("path"), item.get("pfn")
        if pfn is not None and not isinstance(pfn, str):
            raise InputValidationError("a replica pfn must be a string")
        if pfn and protocols is None:
            protocols = _Protocols(session, info, algorithm)
        if info.deterministic:
            path = lfn2path(record["scope"], record["name"], algorithm)
            if supplied is not None and _relative(supplied) != path:
                raise InputValidationError(_not_computed(record, "path", supplied, info.rse))
            if pfn and protocols is not None and pfn not in protocols.pfns_of(path):
                raise InputValidationError(_not_computed(record, "pfn", pfn, info.rse))
        else:
            if pfn and protocols is not None:
                from_pfn = _stored_form(protocols.path_of(pfn))
                if supplied is not None and _stored_form(supplied) != from_pfn:
                    raise InputValidationError(f"path and pfn of {_did(record)} name different files")
                path = from_pfn
            elif supplied is not None:
                path = _stored_form(supplied)
            else:
                raise InputValidationError(f"RSE {info.rse} is non-deterministic: every replica needs a path or pfn")
        paths.append(path)
    return paths


def _did(record: Mapping[str, Any]) -> str:
    return validation.shown(f"{record['scope']}:{record['name']}", 80)


def _not_computed(record: Mapping[str, Any], what: str, value: str, rse: str) -> str:
    return (f"RSE {rse} is deterministic: the {what} of {_did(record)} comes from its lfn2pfn algorithm, "
            f"and {validation.shown(value, 120)} is not it")  # fmt: skip


def check_paths_free(session: Session, rse_id: str, rse: str, paths: Sequence[str]) -> None:
    """Raise Duplicate if two of ``paths``, or one of them and an existing replica, coincide.

    The unique index enforces the same; checking first names the replica in the way.
    """
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise Duplicate(f"the request registers two replicas at path {validation.shown(path, 120)} on {rse}")
        seen.add(path)
    for part in chunks(list(seen)):
        taken = session.execute(
            select(Replica.scope, Replica.name, Replica.path).where(Replica.rse_id == rse_id, Replica.path.in_(part)).limit(1)
        ).first()
        if taken is not None:
            raise Duplicate(
                f"path {validation.shown(taken.path, 120)} on {rse} is already used by the replica of "
                f"{validation.shown(taken.scope + ':' + taken.name, 80)}"
            )
