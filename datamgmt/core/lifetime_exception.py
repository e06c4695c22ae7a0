"""Exceptions to DID lifetimes (Rucio's ``lifetime_except``): ask, approve, and honour them.

An account asks to keep DIDs past their lifetime; an admin approves or rejects the request.
Rucio's atropos daemon then pushes a rule's end of life out to the approved exception's
``expires_at``.  Our lifetime model is the DID's own ``expired_at``, which the undertaker
acts on, so the undertaker is where an APPROVED exception that has not run out holds a DID
back (:func:`held`); once it runs out, the DID goes as its lifetime said.

As in Rucio, only DIDs the lifetime model would remove are *affected* (here: those with a
lifetime, ending before the ``[lifetime_model] cutoff_date`` when one is configured), one
exception id groups the affected DIDs of one scope and ``datatype``, and ``[lifetime_model]
max_extension`` (days) caps ``expires_at``.  Rucio refuses every request while no
``cutoff_date`` is configured; we accept them (docs/rucio-compatibility.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session

from datamgmt.core import runtime_config, validation
from datamgmt.core.db.constants import DIDType, LifetimeExceptionState
from datamgmt.core.db.models import DataIdentifier, DIDMeta, LifetimeException
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.core.keys import chunks, keys_in
from datamgmt.core.metadata_values import parse_date
from datamgmt.exceptions import InputValidationError, LifetimeExceptionNotFound

SECTION = "lifetime_model"
#: A request may name at most this many DIDs.
MAX_DIDS = 10_000


class UnsupportedLifetimeState(InputValidationError):
    """Rucio answers a state other than APPROVED or REJECTED with 400 ``UnsupportedOperation``."""

    rucio_name = "UnsupportedOperation"
    default_message = "An exception can only be APPROVED or REJECTED"


class SubmissionClosed(InputValidationError):
    """A ``cutoff_date`` in the past closes submissions: Rucio's ``UnsupportedOperation``, 409."""

    status = 409
    rucio_name = "UnsupportedOperation"
    default_message = "Cannot submit exception at that date."


def _config_date(session: Session, option: str) -> datetime | None:
    text = runtime_config.get_text(session, SECTION, option)
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError as exc:
        raise SubmissionClosed() from exc


def _capped_expiry(session: Session, expires_at: object) -> datetime | None:
    when: datetime | None = None
    if expires_at is not None:
        when = parse_date(expires_at) if isinstance(expires_at, str) else None
        if when is None:
            raise InputValidationError(f"expires_at must be a date, not {validation.shown(expires_at)}")
    text = runtime_config.get_text(session, SECTION, "max_extension")
    if text is not None and text.strip().isdigit():
        latest = utcnow() + timedelta(days=int(text))
        when = latest if when is None or when > latest else when
    return when


def _keys(dids: object) -> list[tuple[str, str]]:
    if not isinstance(dids, list) or not all(isinstance(did, dict) for did in dids):
        raise InputValidationError("dids must be a list of {scope, name} objects")
    if len(dids) > MAX_DIDS:
        raise InputValidationError(f"a request may name at most {MAX_DIDS} DIDs")
    return list(
        dict.fromkeys(
            (validation.scope_name(did.get("scope")), validation.did_name(did.get("name"))) for did in dids
        )
    )


def add_exception(
    session: Session,
    dids: object,
    account: str,
    pattern: str | None,
    comments: str | None,
    expires_at: object,
) -> dict[str, Any]:
    """Ask for exceptions; returns Rucio's ``{"exceptions": {id: [dids]}, "unknown": [...], "not_affected": [...]}``."""
    keys = _keys(dids)
    cutoff = _config_date(session, "cutoff_date")
    if cutoff is not None and cutoff < utcnow():
        raise SubmissionClosed()
    until = _capped_expiry(session, expires_at)
    found = {}
    for part in chunks(keys):
        query = (
            select(
                DataIdentifier.scope,
                DataIdentifier.name,
                DataIdentifier.did_type,
                DataIdentifier.expired_at,
                DIDMeta.value_str.label("datatype"),
            )
            .outerjoin(
                DIDMeta,
                (DIDMeta.scope == DataIdentifier.scope)
                & (DIDMeta.name == DataIdentifier.name)
                & (DIDMeta.key == "datatype"),
            )
            .where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
        )
        found.update({(row.scope, row.name): row for row in session.execute(query)})
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    not_affected = []
    for key in keys:
        row = found.get(key)
        if row is None:
            continue
        did = {"scope": row.scope, "name": row.name, "did_type": row.did_type}
        if row.expired_at is not None and (cutoff is None or row.expired_at < cutoff):
            groups.setdefault((row.scope, row.datatype or ""), []).append(did)
        else:
            not_affected.append(did)
    now = utcnow()
    exceptions: dict[str, list[dict[str, Any]]] = {}
    for members in groups.values():
        exception_id = new_id()
        session.add_all(
            LifetimeException(
                id=exception_id,
                scope=did["scope"],
                name=did["name"],
                did_type=did["did_type"],
                account=account,
                pattern=pattern,
                comments=comments,
                expires_at=until,
                state=LifetimeExceptionState.WAITING,
                created_at=now,
                updated_at=now,
            )
            for did in members
        )
        exceptions[exception_id] = members
    session.flush()
    unknown = [{"scope": s, "name": n, "did_type": DIDType.DATASET} for s, n in keys if (s, n) not in found]
    return {"exceptions": exceptions, "unknown": unknown, "not_affected": not_affected}


def list_exceptions(session: Session, exception_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every exception row (one per DID), or those of one id (LifetimeExceptionNotFound if none)."""
    query = select(LifetimeException).order_by(
        LifetimeException.created_at, LifetimeException.id, LifetimeException.scope, LifetimeException.name
    )
    if exception_id is not None:
        query = query.where(LifetimeException.id == exception_id)
    seen = False
    for row in session.execute(query).scalars():
        seen = True
        yield {
            "id": row.id,
            "scope": row.scope,
            "name": row.name,
            "did_type": row.did_type,
            "account": row.account,
            "pattern": row.pattern,
            "comments": row.comments,
            "state": row.state,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
        }
    if exception_id is not None and not seen:
        raise LifetimeExceptionNotFound(f"exception {validation.shown(exception_id)} does not exist")


def update_exception(session: Session, exception_id: str, state: object) -> None:
    """Approve or reject every DID of one exception."""
    names = {member.name for member in (LifetimeExceptionState.APPROVED, LifetimeExceptionState.REJECTED)}
    if not isinstance(state, str) or state.upper() not in names:
        raise UnsupportedLifetimeState()
    changed = session.execute(
        update(LifetimeException)
        .where(LifetimeException.id == exception_id)
        .values(state=LifetimeExceptionState[state.upper()], updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not rowcount(changed):
        raise LifetimeExceptionNotFound(f"exception {validation.shown(exception_id)} does not exist")


def held(scope: Any, name: Any) -> ColumnElement[bool]:
    """SQL: the DID ``(scope, name)`` has an APPROVED exception that has not run out."""
    return exists().where(
        LifetimeException.scope == scope,
        LifetimeException.name == name,
        LifetimeException.state == LifetimeExceptionState.APPROVED,
        or_(LifetimeException.expires_at.is_(None), LifetimeException.expires_at > utcnow()),
    )
