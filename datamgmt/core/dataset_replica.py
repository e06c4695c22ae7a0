"""Dataset-level replica summaries: how much of each dataset each RSE holds.

Rucio serves these from ``collection_replicas``, a cache its abacus refreshes; its "deep"
mode computes them from the file replicas instead.  We always compute them, with one
grouped query over contents and replicas per chunk of datasets (or per RSE), so the answer
is never stale and no daemon has to keep a second copy of the catalogue in step.
A dataset replica is AVAILABLE when the RSE holds every file of the dataset AVAILABLE.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from datamgmt.core.db import listing
from datamgmt.core.db.constants import DIDType, ReplicaState
from datamgmt.core.db.models import RSE, Content, DataIdentifier, Replica
from datamgmt.core.keys import DIDKey, chunks, keys_in


def _grouped(*conditions: Any) -> Select[Any]:
    """Per (dataset, RSE): the dataset's totals and what the RSE holds of it AVAILABLE."""
    return (
        select(
            Content.scope,
            Content.name,
            Replica.rse_id,
            RSE.rse,
            DataIdentifier.bytes,
            DataIdentifier.length,
            func.coalesce(func.sum(Replica.bytes), 0).label("available_bytes"),
            func.count().label("available_length"),
            func.min(Replica.created_at).label("created_at"),
            func.max(Replica.updated_at).label("updated_at"),
            func.max(Replica.accessed_at).label("accessed_at"),
        )
        .join(Replica, (Replica.scope == Content.child_scope) & (Replica.name == Content.child_name))
        .join(RSE, RSE.id == Replica.rse_id)
        .join(DataIdentifier, (DataIdentifier.scope == Content.scope) & (DataIdentifier.name == Content.name))
        .where(
            Content.did_type == DIDType.DATASET,
            Replica.state == ReplicaState.AVAILABLE,
            RSE.deleted.is_(False),
            *conditions,
        )
        .group_by(
            Content.scope, Content.name, Replica.rse_id, RSE.rse, DataIdentifier.bytes, DataIdentifier.length
        )
        .order_by(Content.scope, Content.name, RSE.rse)
    )


def _row(row: Any) -> dict[str, Any]:
    length, available = row.length or 0, row.available_length
    return {
        "scope": row.scope,
        "name": row.name,
        "rse": row.rse,
        "rse_id": row.rse_id,
        "bytes": row.bytes or 0,
        "length": length,
        "available_bytes": int(row.available_bytes),
        "available_length": int(available),
        "state": (ReplicaState.AVAILABLE if available >= length else ReplicaState.UNAVAILABLE).name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "accessed_at": row.accessed_at,
    }


def dataset_replicas(session: Session, keys: Sequence[DIDKey]) -> Iterator[dict[str, Any]]:
    """The replicas of the datasets ``keys`` (unknown ones, and containers, have none)."""
    for part in chunks(list(dict.fromkeys(keys))):
        for row in session.execute(_grouped(keys_in((Content.scope, Content.name), part))):
            yield _row(row)


def datasets_on_rse(session: Session, rse_id: str) -> Iterator[dict[str, Any]]:
    """Every dataset with at least one file AVAILABLE on the RSE, streamed."""
    for row in listing.rows(session, _grouped(Replica.rse_id == rse_id)):
        yield _row(row)
