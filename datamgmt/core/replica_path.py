"""Where a replica lives on its RSE: the path stored with every replica row.

Every replica row carries the path, relative to the protocol prefix, that the protocols use for
it, and ``(rse_id, path)`` is unique: two replicas on one RSE can never name one file, so deleting
one can never unlink the other's data.

* On a deterministic RSE the path is always the RSE's lfn2pfn algorithm's (attribute
  ``lfn2pfn_algorithm``), stored as the algorithm spells it (that is what uploads and transfers
  use). A caller may send a ``path`` or ``pfn``, but only the algorithm's; anything else is
  refused, never stored.
* On a non-deterministic RSE the path comes from the caller (``path``, or a ``pfn`` below one of
  the RSE's protocols); the permission policy leaves that to admins. One leading slash is read as
  "relative to the prefix", as the protocols read it, and is not stored.
* Replicas created by rules get the algorithm's path on any RSE: it is where transfers write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.models import RSE, QuarantinedReplica, Replica, RSEAttribute
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.rse import RSEInfo, protocols_by_rse_id
from datamgmt.exceptions import DatamgmtError, Duplicate, InputValidationError, InvalidPath
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM, join_path, lfn2path, path_below_prefix
from datamgmt.rse.protocols import Protocol, create_protocol

ALGORITHM_ATTRIBUTE = "lfn2pfn_algorithm"


def algorithms(session: Session, rse_ids: Iterable[str]) -> dict[str, str]:
    """The lfn2pfn algorithm of each RSE, in one query."""
    ids = set(rse_ids)
    chosen = dict(
        session.execute(
            select(RSEAttribute.rse_id, RSEAttribute.value).where(
                RSEAttribute.rse_id.in_(ids), RSEAttribute.key == ALGORITHM_ATTRIBUTE
            )
        )
        .tuples()
        .all()
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
        raise InvalidPath(
            f"Path {validation.shown(relative, 120)} has empty, '.' or percent-encoded segments"
        )
    join_path("/", relative)  # raises InvalidPath on '..', backslashes, control characters
    return relative


def _shown(did: DIDKey) -> str:
    return validation.shown(":".join(did), 80)


class _Registration:
    """The paths of one registration on one RSE; its protocols are built only if a ``pfn`` comes."""

    def __init__(self, session: Session, info: RSEInfo) -> None:
        self.session = session
        self.info = info
        self.algorithm = algorithms(session, [info.id])[info.id]
        self._protocols: list[Protocol] | None = None

    @property
    def protocols(self) -> list[Protocol]:
        if self._protocols is None:
            records = protocols_by_rse_id(self.session, [self.info.id])[self.info.id]
            self._protocols = [create_protocol(r, lfn2pfn_algorithm=self.algorithm) for r in records]
        return self._protocols

    def path(self, item: Mapping[str, Any]) -> str:
        did = (validation.scope_name(item.get("scope")), validation.did_name(item.get("name")))
        supplied, pfn = item.get("path"), item.get("pfn")
        if pfn is not None and not isinstance(pfn, str):
            raise InputValidationError("a replica pfn must be a string")
        if self.info.deterministic:
            return self._computed(did, supplied, pfn)
        return self._chosen(did, supplied, pfn)

    def _computed(self, did: DIDKey, supplied: object, pfn: str | None) -> str:
        """The algorithm's path; a supplied path or pfn must name exactly it."""
        path = lfn2path(*did, self.algorithm)
        if supplied is not None and _relative(supplied) != path:
            raise InputValidationError(self._not_computed(did, "path", supplied))
        if pfn and pfn not in {protocol.path_to_pfn(path) for protocol in self.protocols}:
            raise InputValidationError(self._not_computed(did, "pfn", pfn))
        return path

    def _chosen(self, did: DIDKey, supplied: object, pfn: str | None) -> str:
        """The caller's path on a non-deterministic RSE, from ``path`` or ``pfn`` (both: the same)."""
        if pfn:
            path = _stored_form(self._below_prefix(pfn))
            if supplied is not None and _stored_form(supplied) != path:
                raise InputValidationError(f"path and pfn of {_shown(did)} name different files")
            return path
        if supplied is None:
            raise InputValidationError(
                f"RSE {self.info.rse} is non-deterministic: every replica needs a path or pfn"
            )
        return _stored_form(supplied)

    def _below_prefix(self, pfn: str) -> str:
        """The part of ``pfn`` below the prefix of the protocol whose PFNs it is spelled like."""
        for protocol in self.protocols:
            area = protocol.base_url + protocol.record.prefix
            if pfn.startswith(area):
                return pfn[len(area) :]
        raise InvalidPath(
            f"PFN {validation.shown(pfn, 120)} is not below any protocol of RSE {self.info.rse}"
        )

    def _not_computed(self, did: DIDKey, what: str, value: object) -> str:
        return (
            f"RSE {self.info.rse} is deterministic: the {what} of {_shown(did)} comes from its "
            f"lfn2pfn algorithm, and {validation.shown(value, 120)} is not it"
        )


def registration_paths(session: Session, info: RSEInfo, files: Sequence[Mapping[str, Any]]) -> list[str]:
    """The path of each file (scope, name, optional ``path`` or ``pfn``) registered on ``info``.

    Called before anything is written, so a refused path leaves nothing behind.
    """
    registration = _Registration(session, info)
    return [registration.path(item) for item in files]


def paths_on_rse(
    model: type[Replica] | type[QuarantinedReplica], rse_id: str, paths: Sequence[str]
) -> ColumnElement[bool]:
    """``model``'s rows at ``paths`` on one RSE, looked up by the (rse_id, path) key: PostgreSQL
    plans ``rse_id = ? AND path IN (…)`` as a read of every row of the RSE (see
    :func:`refuse_used_paths`)."""
    return keys_in((model.rse_id, model.path), [(rse_id, path) for path in paths])


def refuse_repeated_paths(rse: str, paths: Sequence[str]) -> None:
    """Raise Duplicate if two of ``paths`` coincide: one request cannot register both."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise Duplicate(
                f"the request registers two replicas at path {validation.shown(path, 120)} on {rse}"
            )
        seen.add(path)


def refuse_used_paths(session: Session, rse_id: str, rse: str, paths: Sequence[str]) -> None:
    """Raise Duplicate naming the replica that already uses one of ``paths`` on the RSE, if any.

    A registration asks only after the unique (rse_id, path) index has refused its rows, to
    name the replica in the way: asked first, the lookup cost every chunk a query, and on a
    catalogue that PostgreSQL had not analyzed yet a read of every replica of the RSE (30
    chunks of 500 files: 36 ms a chunk growing to 490 ms).  The paths are looked up as keys
    (:func:`~datamgmt.core.keys.keys_in`), never as ``rse_id = ? AND path IN (…)``, which
    PostgreSQL plans as a read of the whole RSE even when it has statistics.
    """
    for part in chunks(list(paths)):
        taken = session.execute(
            select(Replica.scope, Replica.name, Replica.path)
            .where(paths_on_rse(Replica, rse_id, part))
            .limit(1)
        ).first()
        if taken is not None:
            raise Duplicate(
                f"path {validation.shown(taken.path, 120)} on {rse} is already used by the replica of "
                f"{validation.shown(taken.scope + ':' + taken.name, 80)}"
            )


def replicas_at_pfns(
    session: Session, pfns: Sequence[str]
) -> tuple[dict[str, list[tuple[str, str, str]]], list[str]]:
    """The replicas that PFNs name: ``{rse_id: [(scope, name, pfn)]}``, and the PFNs that name none.

    A PFN names the replica whose stored path it spells below the prefix of one of the RSE's
    protocols (Rucio's ``get_pfn_to_rse`` followed by its path lookup).  One query per RSE
    concerned, whatever the number of PFNs."""
    rse_ids = list(session.scalars(select(RSE.id).where(RSE.deleted.is_(False))))
    areas: list[tuple[str, str, str]] = []
    for rse_id, records in protocols_by_rse_id(session, rse_ids).items():
        for record in records:
            try:
                protocol = create_protocol(record)
            except DatamgmtError:
                continue  # a protocol this server cannot speak names no PFN it could check
            areas.append((protocol.base_url, protocol.record.prefix, rse_id))
    wanted: dict[str, dict[str, str]] = {}
    for pfn in dict.fromkeys(pfns):
        for base_url, prefix, rse_id in areas:
            if isinstance(pfn, str) and pfn.startswith(base_url):
                try:
                    wanted.setdefault(rse_id, {})[path_below_prefix(prefix, pfn[len(base_url) :])] = pfn
                except InvalidPath:
                    continue
    found: dict[str, list[tuple[str, str, str]]] = {}
    named: set[str] = set()
    for rse_id, by_path in wanted.items():
        for part in chunks(list(by_path)):
            for scope, name, path in session.execute(
                select(Replica.scope, Replica.name, Replica.path).where(
                    Replica.rse_id == rse_id, Replica.path.in_(part)
                )
            ):
                found.setdefault(rse_id, []).append((scope, name, by_path[path]))
                named.add(by_path[path])
    return found, [pfn for pfn in dict.fromkeys(pfns) if pfn not in named]
