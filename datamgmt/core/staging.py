"""Staging buffers, as Rucio has them: a disk RSE with ``staging_area`` set, in front of tape.

A tape RSE names its buffer in its ``staging_buffer`` attribute.  A rule on the buffer (which
needs a lifetime) asks for its files to be recalled there: a missing replica whose file is on
such a tape RSE gets a STAGEIN request from that tape (Rucio's EnforceStagingBuffer: only the
tape RSEs that name this buffer serve it), staged and copied by the tool, with the rule's
remaining lifetime as pin.  The conveyor-stager submits STAGEIN requests apart from the
submitter's transfers when ``[conveyor] separate_stager`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import RSE, RSEAttribute


def staging_buffers(session: Session, dest_rse_ids: Iterable[str]) -> dict[str, set[str]]:
    """For each of ``dest_rse_ids`` that is a staging area: the RSEs whose ``staging_buffer``
    attribute names it (the tape RSEs it may recall from)."""
    ids = sorted(set(dest_rse_ids))
    if not ids:
        return {}
    areas = dict(
        session.execute(
            select(RSE.rse, RSE.id).where(RSE.id.in_(ids), RSE.staging_area.is_(True), RSE.deleted.is_(False))
        )
        .tuples()
        .all()
    )
    if not areas:
        return {}
    buffers: dict[str, set[str]] = {rse_id: set() for rse_id in areas.values()}
    rows = session.execute(
        select(RSEAttribute.rse_id, RSEAttribute.value).where(
            RSEAttribute.key == "staging_buffer", RSEAttribute.value.in_(list(areas))
        )
    )
    for source_id, name in rows:
        buffers[areas[str(name)]].add(source_id)
    return buffers
