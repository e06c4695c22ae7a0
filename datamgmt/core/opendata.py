"""Rucio's open-data catalogue (``/opendata``) mapped onto our publishing layer (:mod:`datamgmt.core.pid`).

Rucio keeps open-data entries in a table of their own with three states; we keep them where
published DIDs already live, so a DID published either way is one thing with one PID:

* ``DRAFT``: proposed, not published yet, so without a PID; the one state with its own row
  (:class:`~datamgmt.core.db.models.OpenDataDraft`);
* ``PUBLIC``: a PUBLISHED share, its PID minted by the configured PID service;
* ``SUSPENDED``: a WITHDRAWN share, its PID resolving to a tombstone.

The transitions are Rucio's (nothing goes back to DRAFT, SUSPENDED only from PUBLIC, PUBLIC
only for a closed collection).  ``meta`` updates the DID's metadata, which the share's record is
built from; the ``doi`` is the share's PID, minted by the PID service and never set by hand, so
``doi`` and ``record_id`` updates are refused (docs/rucio-compatibility.md).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Subquery, case, delete, func, literal, select, union_all
from sqlalchemy.orm import Session

from datamgmt.core import pid
from datamgmt.core.db.constants import ShareState
from datamgmt.core.db.models import OpenDataDraft, Share
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS, did_str, get_did_row
from datamgmt.core.did_content import list_files
from datamgmt.core.metadata import key_values, set_metadata_bulk
from datamgmt.core.validation import shown
from datamgmt.exceptions import (
    InputValidationError,
    OpenDataDataIdentifierAlreadyExists,
    OpenDataDataIdentifierNotFound,
    OpenDataError,
    OpenDataInvalidState,
    OpenDataInvalidStateUpdate,
    UnsupportedOperation,
)

STATES = ("DRAFT", "PUBLIC", "SUSPENDED")


def parse_state(state: object) -> str:
    if not isinstance(state, str) or state.upper() not in STATES:
        raise OpenDataError(
            f"Invalid state {shown(state)}. Valid opendata states are: draft, public, suspended"
        )
    return state.upper()


def _entries() -> Subquery:
    """Drafts and shares as one relation: scope, name, state, created_at, updated_at."""
    share_state = case((Share.state == ShareState.PUBLISHED, literal("PUBLIC")), else_=literal("SUSPENDED"))
    drafts = select(
        OpenDataDraft.scope,
        OpenDataDraft.name,
        literal("DRAFT").label("state"),
        OpenDataDraft.created_at,
        OpenDataDraft.updated_at,
    )
    shares = select(Share.scope, Share.name, share_state.label("state"), Share.created_at, Share.updated_at)
    return union_all(drafts, shares).subquery("opendata")


def list_entries(
    session: Session, state: str | None = None, limit: int | None = None, offset: int | None = None
) -> dict[str, Any]:
    """Rucio's ``{"total", "offset", "dids": [...]}``, oldest change first."""
    entries = _entries()
    query = select(entries)
    if state is not None:
        query = query.where(entries.c.state == parse_state(state))
    if (limit is not None and limit < 0) or (offset is not None and offset < 0):
        raise InputValidationError("limit and offset may not be negative")
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(
        query.order_by(entries.c.updated_at, entries.c.scope, entries.c.name).limit(limit).offset(offset)
    )
    return {"total": total, "offset": offset or 0, "dids": [dict(row._mapping) for row in rows]}


def _entry(session: Session, scope: str, name: str) -> dict[str, Any]:
    entries = _entries()
    row = session.execute(select(entries).where(entries.c.scope == scope, entries.c.name == name)).first()
    if row is None:
        raise OpenDataDataIdentifierNotFound(f"OpenData DID {shown(did_str(scope, name), 80)} not found.")
    return dict(row._mapping)


def get_entry(
    session: Session,
    scope: str,
    name: str,
    state: str | None = None,
    files: bool = False,
    meta: bool = False,
    doi: bool = True,
    record_id: bool = True,
) -> dict[str, Any]:
    entry = _entry(session, scope, name)
    if state is not None and entry["state"] != parse_state(state):
        raise OpenDataDataIdentifierNotFound(f"OpenData DID {shown(did_str(scope, name), 80)} not found.")
    share = pid.share_of(session, scope, name)
    if doi:
        entry["doi"] = share.pid if share is not None else None
    if record_id:
        entry["record_id"] = None  # no Invenio-style record numbers here: the PID names the record
    if meta:
        entry["meta"] = key_values(session, [(scope, name)])[(scope, name)]
    if files:
        found = list(list_files(session, scope, name))
        entry["files"] = found
        suffixes = {PurePosixPath(f["name"]).suffix[1:] for f in found} - {""}
        entry["files_summary"] = {
            "length": len(found),
            "bytes": sum(f["bytes"] or 0 for f in found),
            "extensions": sorted(suffixes),
        }
    return entry


def add_draft(session: Session, scope: str, name: str, account: str) -> None:
    did = get_did_row(session, scope, name)
    if did.did_type not in COLLECTIONS:
        raise UnsupportedOperation(
            f"only datasets and containers can be open data, not a {did.did_type.name}"
        )
    if (
        session.get(OpenDataDraft, (scope, name)) is not None
        or pid.share_of(session, scope, name) is not None
    ):
        raise OpenDataDataIdentifierAlreadyExists(
            f"OpenData DID {shown(did_str(scope, name), 80)} already exists."
        )
    now = utcnow()
    session.add(OpenDataDraft(scope=scope, name=name, account=account, created_at=now, updated_at=now))
    session.flush()


def delete_draft(session: Session, scope: str, name: str) -> None:
    entry = _entry(session, scope, name)
    if entry["state"] != "DRAFT":
        raise OpenDataInvalidState(
            f"OpenData entry {shown(did_str(scope, name), 80)} is {entry['state']}; only a DRAFT can go"
        )
    session.execute(delete(OpenDataDraft).where(OpenDataDraft.scope == scope, OpenDataDraft.name == name))


def update_entry(
    session: Session,
    scope: str,
    name: str,
    account: str,
    base_url: str,
    state: object = None,
    meta: object = None,
    doi: object = None,
    record_id: object = None,
) -> dict[str, Any]:
    """Change state and/or metadata; returns Rucio's ``{scope, name, state_old, state_new}`` for a state
    change, with ``doi`` and ``pid_service`` when this published the DID."""
    if state is None and meta is None and doi is None and record_id is None:
        raise InputValidationError(
            "Either 'state', 'meta', 'doi', or 'record_id' must be provided to update the Opendata DID."
        )
    if doi is not None or record_id is not None:
        raise OpenDataError(
            "the DOI is the PID the PID service mints on publication; it and record_id cannot be set"
        )
    before = _entry(session, scope, name)["state"]
    result: dict[str, Any] = {"scope": scope, "name": name}
    if meta is not None:
        if not isinstance(meta, dict):
            raise InputValidationError("meta must be an object")
        set_metadata_bulk(session, scope, name, meta)
        if before == "PUBLIC":
            pid.update_share(session, scope, name, base_url)
    if state is not None:
        after = parse_state(state)
        share = _change_state(session, scope, name, account, base_url, before, after)
        result.update(state_old=before, state_new=after)
        if share is not None:
            result.update(doi=share["pid"], pid_service=share["pid_service"])
    return result


def _change_state(
    session: Session, scope: str, name: str, account: str, base_url: str, before: str, after: str
) -> dict[str, Any] | None:
    """Move between states; returns the share when this published the DID (its PID is new or re-activated)."""
    if after == before:
        return None
    if after == "DRAFT":
        raise OpenDataInvalidStateUpdate(
            "Cannot set state to DRAFT. Once a DID is made public, it cannot be reverted to DRAFT."
        )
    if after == "SUSPENDED":
        if before == "DRAFT":
            raise OpenDataInvalidStateUpdate(
                "Cannot set state to SUSPENDED from DRAFT. First set it to PUBLIC."
            )
        pid.unpublish(session, scope, name, base_url)
        return None
    if get_did_row(session, scope, name).is_open:
        raise OpenDataInvalidStateUpdate("Cannot set state to PUBLIC. The DID must be closed first.")
    session.execute(delete(OpenDataDraft).where(OpenDataDraft.scope == scope, OpenDataDraft.name == name))
    return pid.publish(session, scope, name, account, base_url)
