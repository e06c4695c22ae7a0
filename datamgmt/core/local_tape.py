"""Tape for the ``local`` transfer tool: staging, archiving and pins, kept in the catalogue.

A TAPE RSE served by local storage has no tape library behind it, so the local tool models what
FTS reports of one, with the same states and the same meaning for the conveyor:

* **staging** — a transfer whose source is on tape (``bring_online`` in its spec) first waits
  ``staging_seconds`` in STAGING, unless its source is already online (a live pin in
  ``local_pins``, the "staged" marker).  At its end the source is pinned for the spec's
  ``copy_pin_lifetime`` and the copy is QUEUED; a STAGEIN in place (source = destination) is
  DONE there, nothing copied.  A source that no longer exists fails the bring-online.
* **archiving** — a copy to tape (``archive_timeout`` in its spec) is not DONE when its bytes
  arrive: it waits ``archive_seconds`` in ARCHIVING (the tape system writing it from its
  buffer), and fails as FTS does when ``archive_timeout`` passes first.

These phases hold no lease: they end by time, through conditional UPDATEs (``state`` is still
the phase) that any process may run, so two processes advancing the same rows change each row
once.  Every function is a fixed number of set-based statements per batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import case, delete, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamgmt.core.db.models import LocalPin, LocalTransfer
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import CASE_CHUNK, QUEUE_CHUNK, chunks
from datamgmt.transfertool.base import CANCELED_REASON

STAGING, ARCHIVING = "STAGING", "ARCHIVING"
#: Pin kept when a spec names no ``copy_pin_lifetime`` (FTS's default).
DEFAULT_PIN_SECONDS = 172800
STAGING_FAILURE = "STAGING [2] Bring-online failed: the file is not on tape ({path})"


def archive_timeout_reason(seconds: int) -> str:
    """FTS's wording for a file not confirmed on tape within ``archive_timeout``."""
    return f"TRANSFER [62] Archiving timeout of {seconds} seconds exceeded: file not on tape"


def online(session: Session, urls: Iterable[str]) -> set[str]:
    """The ``urls`` pinned online now (their staged marker is live)."""
    now = utcnow()
    found: set[str] = set()
    for chunk in chunks(sorted(set(urls)), QUEUE_CHUNK):
        found.update(
            session.scalars(select(LocalPin.url).where(LocalPin.url.in_(chunk), LocalPin.pinned_until > now))
        )
    return found


def entry_phase(
    spec: dict[str, Any], hop_index: int, pinned: set[str], staging_seconds: float
) -> dict[str, Any]:
    """The columns a new transfer starts with: STAGING for a tape source not online, else QUEUED."""
    if hop_index != 0 or not spec.get("bring_online") or spec["sources"][0] in pinned:
        return {"state": "QUEUED"}
    now = utcnow()
    return {
        "state": STAGING,
        "staging_started_at": now,
        "phase_until": now + timedelta(seconds=staging_seconds),
    }


def _local_path(url: str) -> str | None:
    parts = urlsplit(url)
    return unquote(parts.path) if parts.scheme == "file" else None


def _pin(session: Session, urls: dict[str, datetime]) -> None:
    """Set or extend the staged marker of ``urls`` (url → until), never shortening a live pin."""
    if not urls:
        return
    dialect = postgresql if is_postgresql(session) else sqlite
    now = utcnow()
    for chunk in chunks(sorted(urls), QUEUE_CHUNK):
        statement = dialect.insert(LocalPin).values(
            [{"url": url, "pinned_until": urls[url], "created_at": now} for url in chunk]
        )
        greater = statement.excluded.pinned_until > LocalPin.pinned_until
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[LocalPin.url],
                set_={"pinned_until": statement.excluded.pinned_until},
                where=greater,
            )
        )


def release(session: Session, urls: Sequence[str]) -> int:
    """Drop the staged markers of ``urls`` (a released pin); the files are not touched."""
    released = 0
    for chunk in chunks(sorted(set(urls)), QUEUE_CHUNK):
        released += rowcount(session.execute(delete(LocalPin).where(LocalPin.url.in_(chunk))))
    return released


def _end_staging(session: Session, now: datetime) -> int:
    """STAGING transfers whose bring-online is over: QUEUED for their copy (DONE for a STAGEIN in
    place), or FAILED when the file is gone or the recall was cancelled; the others are pinned."""
    due = session.execute(
        select(LocalTransfer.id, LocalTransfer.spec, LocalTransfer.destination, LocalTransfer.canceled).where(
            LocalTransfer.state == STAGING, LocalTransfer.phase_until <= now
        )
    ).all()
    specs = {row.id: json.loads(row.spec) for row in due}
    outcome: dict[str, tuple[str, str | None]] = {}
    for row in due:
        source = specs[row.id]["sources"][0]
        path = _local_path(source)
        if row.canceled:
            outcome[row.id] = ("FAILED", CANCELED_REASON)
        elif path is not None and not os.path.exists(path):
            outcome[row.id] = ("FAILED", STAGING_FAILURE.format(path=path))
        else:  # online; a STAGEIN in place asked for nothing more
            outcome[row.id] = ("DONE" if source == row.destination else "QUEUED", None)
    changed: list[str] = []
    for chunk in chunks(list(outcome), CASE_CHUNK):
        state = case({i: outcome[i][0] for i in chunk}, value=LocalTransfer.id)
        reason = (
            case({i: outcome[i][1] for i in chunk if outcome[i][1]}, value=LocalTransfer.id, else_=None)
            if any(outcome[i][1] for i in chunk)
            else null()
        )
        ended = [i for i in chunk if outcome[i][0] != "QUEUED"]
        changed += session.scalars(
            update(LocalTransfer)
            .where(LocalTransfer.id.in_(chunk), LocalTransfer.state == STAGING)
            .values(
                state=state,
                reason=reason,
                staging_finished_at=now,
                phase_until=None,
                updated_at=now,
                finished_at=case((LocalTransfer.id.in_(ended), now), else_=None) if ended else null(),
            )
            .returning(LocalTransfer.id)
            .execution_options(synchronize_session=False)
        ).all()
    pins: dict[str, datetime] = {}
    for i in changed:
        if outcome[i][0] != "FAILED":
            until = now + timedelta(seconds=specs[i].get("copy_pin_lifetime") or DEFAULT_PIN_SECONDS)
            url = specs[i]["sources"][0]
            pins[url] = max(until, pins.get(url, until))  # two recalls of one file: the longer pin
    _pin(session, pins)
    return len(changed)


def _end_archiving(session: Session, now: datetime) -> int:
    """ARCHIVING transfers whose phase is over: DONE (on tape), or FAILED with the timeout
    reason recorded when the phase began."""
    changed = 0
    for failed in (False, True):
        reason = LocalTransfer.reason.is_not(None) if failed else LocalTransfer.reason.is_(None)
        changed += rowcount(
            session.execute(
                update(LocalTransfer)
                .where(LocalTransfer.state == ARCHIVING, LocalTransfer.phase_until <= now, reason)
                .values(
                    state="FAILED" if failed else "DONE",
                    finished_at=now,
                    phase_until=None,
                    updated_at=now,
                    **({} if failed else {"archive_finished_at": now}),
                )
                .execution_options(synchronize_session=False)
            )
        )
    return changed


def advance(session: Session) -> int:
    """End the tape phases that are due; returns how many transfers moved on.  A reader with
    nothing due (the common case: a poller's every query) writes nothing, so it takes no write
    lock on SQLite."""
    now = utcnow()
    due = (
        select(LocalTransfer.id)
        .where(LocalTransfer.state.in_((STAGING, ARCHIVING)), LocalTransfer.phase_until <= now)
        .limit(1)
    )
    if session.scalar(due) is None:
        return 0
    return _end_staging(session, now) + _end_archiving(session, now)


def archiving_values(spec: dict[str, Any], archive_seconds: float, now: datetime) -> dict[str, Any] | None:
    """The columns of a copy to tape that just arrived on the buffer (None: not to tape):
    ARCHIVING until the tape system has it, or until ``archive_timeout`` fails it first."""
    timeout = spec.get("archive_timeout")
    if not timeout:
        return None
    if archive_seconds < timeout:
        return {
            "state": ARCHIVING,
            "archive_started_at": now,
            "phase_until": now + timedelta(seconds=archive_seconds),
            "reason": None,
        }
    return {
        "state": ARCHIVING,
        "archive_started_at": now,
        "phase_until": now + timedelta(seconds=timeout),
        "reason": archive_timeout_reason(int(timeout)),
    }


def purge_pins(session: Session) -> int:
    """Forget pins whose lifetime is over (their files went offline by themselves)."""
    return rowcount(session.execute(delete(LocalPin).where(LocalPin.pinned_until <= utcnow())))
