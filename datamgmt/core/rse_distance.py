"""Distances between RSEs: how far a source is from a destination, which orders a rule's sources
and the conveyor's choice among them (Rucio's ``distances`` table)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session, aliased

from datamgmt.core.db.models import RSE, Distance
from datamgmt.core.db.rows import put
from datamgmt.core.rse import get_rse_id
from datamgmt.exceptions import InputValidationError

#: Distance assumed when no ``distances`` row links a source to a destination.  Both the ranking
#: a rule's sources get when their request is written (:mod:`datamgmt.core.lock`) and the
#: conveyor's choice of source (:mod:`datamgmt.core.transfer`) put such a source after every
#: known one, so it must exceed any distance an operator sets (Rucio's are small integers), yet
#: stay negatable within the 32-bit ``sources.ranking`` column.
UNKNOWN_DISTANCE = 1_000_000


def set_distance(session: Session, source: str, destination: str, distance: object) -> None:
    """Set the distance between two RSEs; ``distance`` is checked here, as it may come straight from
    an imported document."""
    src, dst = get_rse_id(session, source), get_rse_id(session, destination)
    if isinstance(distance, bool) or not isinstance(distance, int):
        raise InputValidationError("distance must be an integer")
    put(session, Distance, (src, dst), distance=max(distance, 0))


def get_distances(session: Session, source: str, destination: str) -> list[dict[str, Any]]:
    src, dst = get_rse_id(session, source), get_rse_id(session, destination)
    row = session.get(Distance, (src, dst))
    if row is None:
        return []
    return [{"src_rse_id": src, "dest_rse_id": dst, "distance": row.distance, "ranking": row.distance}]


def delete_distance(session: Session, source: str, destination: str) -> None:
    src, dst = get_rse_id(session, source), get_rse_id(session, destination)
    session.execute(delete(Distance).where(Distance.src_rse_id == src, Distance.dest_rse_id == dst))


def list_distances(session: Session, rse: str) -> list[dict[str, Any]]:
    """Distances from an RSE to every other (``to``) and back (``from``), by the other RSE's name;
    one query, so an RSE page shows its row and column of the matrix at once."""
    rse_id = get_rse_id(session, rse)
    other = aliased(RSE)
    query = (
        select(Distance.src_rse_id, other.rse, Distance.distance)
        .join(
            other,
            other.id
            == case((Distance.src_rse_id == rse_id, Distance.dest_rse_id), else_=Distance.src_rse_id),
        )
        .where((Distance.src_rse_id == rse_id) | (Distance.dest_rse_id == rse_id))
        .order_by(other.rse)
    )
    return [
        {"direction": "to" if src == rse_id else "from", "rse": name, "distance": distance}
        for src, name, distance in session.execute(query)
    ]
