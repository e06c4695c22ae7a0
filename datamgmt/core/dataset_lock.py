"""Dataset locks, as Rucio lists them: by RSE, by dataset, and below containers.

A read side apart from :mod:`datamgmt.core.lock`, which writes file locks; the dataset locks
themselves are written with a rule's placement (``rule_placement.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import RSE, DatasetLock
from datamgmt.core.did import existing_dids
from datamgmt.core.did_content import descendants_cte
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.exceptions import InputValidationError


def _dataset_lock_rows(session: Session, *conditions: ColumnElement[bool]) -> Iterator[dict[str, Any]]:
    query = (
        select(DatasetLock, RSE.rse)
        .join(RSE, RSE.id == DatasetLock.rse_id)
        .where(*conditions)
        .order_by(DatasetLock.scope, DatasetLock.name, DatasetLock.rule_id, RSE.rse)
    )
    for lock, rse in session.execute(query).tuples():
        yield {
            "rse_id": lock.rse_id,
            "rse": rse,
            "scope": lock.scope,
            "name": lock.name,
            "rule_id": lock.rule_id,
            "account": lock.account,
            "state": lock.state.name,
            "length": lock.length,
            "bytes": lock.bytes,
            "accessed_at": lock.accessed_at,
        }


def dataset_locks_on_rse(session: Session, rse_id: str) -> Iterator[dict[str, Any]]:
    """Every dataset lock on one RSE (Rucio's ``get_dataset_locks_by_rse_id``)."""
    return _dataset_lock_rows(session, DatasetLock.rse_id == rse_id)


def dataset_locks_of(session: Session, keys: Sequence[DIDKey]) -> Iterator[dict[str, Any]]:
    """The dataset locks of these datasets, in chunks of keys."""
    for part in chunks(list(dict.fromkeys(keys))):
        yield from _dataset_lock_rows(session, keys_in((DatasetLock.scope, DatasetLock.name), part))


def dataset_locks_for_dids(session: Session, dids: Sequence[DIDKey]) -> Iterator[dict[str, Any]]:
    """Dataset locks of datasets, and of every dataset below containers (Rucio's bulk listing).

    Unknown DIDs are skipped, as Rucio does; a file is an error, since files have no dataset locks.
    """
    found = existing_dids(session, list(dict.fromkeys(dids)))
    datasets: list[DIDKey] = []
    for key, row in found.items():
        if row.did_type == DIDType.FILE:
            raise InputValidationError(
                f"{key[0]}:{key[1]} is a file: only datasets and containers have dataset locks"
            )
        if row.did_type == DIDType.DATASET:
            datasets.append(key)
        else:
            tree = descendants_cte(*key)
            datasets += session.execute(
                select(tree.c.scope, tree.c.name).where(tree.c.type == DIDType.DATASET)
            ).tuples()
    return dataset_locks_of(session, datasets)
