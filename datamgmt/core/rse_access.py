"""An RSE as clients reach it (its row, attributes and protocols), without a query per call.

``GET /rses/{rse}`` comes before every upload and download, and every replica listing
(``rucio download``, ``rucio list-file-replicas``) needs the same facts for each RSE it
names: three queries each time, more than listing one file's replicas itself.  They change
only when an RSE, its attributes or its protocols change, and each such change renews the RSE
generation after its commit (``core.rse.rse_changed``).  So they come from the per-generation
snapshot that RSE expressions already keep in every process (core/expression.py); the
protocols of an RSE are read once per generation and kept beside that snapshot.

A session holding uncommitted RSE changes, or an RSE the snapshot does not hold (one created
after it was loaded), is read from the catalogue as before, so an answer is never older than
the generation it was asked in.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any

from sqlalchemy.orm import Session

from datamgmt.core.expression import Snapshot, held_snapshot
from datamgmt.core.rse import RSEDetail, RSEInfo, attr_value, get_rse_detail, protocols_of

_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(RSEInfo))

#: What this process has built per snapshot, by RSE id: a new generation's snapshot starts
#: with none, and an old one's go with it.  Shared by every caller: never mutate them.
_built: weakref.WeakKeyDictionary[Snapshot, dict[str, RSEDetail]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def rse_detail(session: Session, rse: str, rse_id: str | None = None) -> RSEDetail:
    """The RSE named ``rse`` (whose id is ``rse_id`` when the caller knows it) with its
    attributes and protocols: from this generation's snapshot where it can, else from the
    catalogue (RSENotFound for an RSE that does not exist).

    Attributes from the snapshot omit keys named like an RSE column (``rse_type``,
    ``deterministic`` ...), which expressions read from the columns instead; read a key
    other than those.
    """
    held = held_snapshot(session)
    record = None
    if held is not None:
        record = held.rses.get(rse_id) if rse_id is not None else held.record_named(rse)
    if held is None or record is None or record["rse"] != rse:
        return get_rse_detail(session, rse)
    with _lock:
        known = _built.setdefault(held, {}).get(record["id"])
    if known is None:
        # Built outside the lock: two threads may both build it once, and either answer is right.
        known = _from_snapshot(session, held, record)
        with _lock:
            _built.setdefault(held, {})[record["id"]] = known
    return known


def _from_snapshot(session: Session, snapshot: Snapshot, record: dict[str, Any]) -> RSEDetail:
    rse_id = record["id"]
    return RSEDetail(
        RSEInfo(**{name: record[name] for name in _INFO_FIELDS}),
        {key: attr_value(value) for key, value in snapshot.attributes_of(rse_id).items()},
        protocols_of(session, rse_id),
    )
