"""Matching a batch of replica keys: a row comparison ``(scope, name) IN ((…), …)`` against
:func:`datamgmt.core.keys.keys_in` (``scope = ? AND name IN (…)`` on SQLite, a semi-join on
arrays on PostgreSQL), in the statement the rule injector runs most, raising ``lock_cnt`` on
one RSE's replicas.

``files`` replicas on each of two RSEs are loaded with bulk INSERTs; the first two figures are
one UPDATE over ``batch`` keys, the chunk size the catalogue uses
(:data:`datamgmt.core.keys.CHUNK`).  PostgreSQL plans the row comparison as one index scan per
key, which is what they show.  The third raises every replica of the RSE, chunk by chunk in one
transaction, as a rule in place does: a chunk that reads the whole RSE shows up there as a
rate that falls with ``files`` (issue 17).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy import insert, tuple_, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report
from datamgmt.core.db.constants import DIDType, ReplicaState
from datamgmt.core.db.models import RSE, Account, DataIdentifier, Replica, Scope
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import new_id
from datamgmt.core.keys import CHUNK, chunks, keys_in

SCOPE = "bench"


def load(url: str, files: int) -> list[str]:
    """Two RSEs holding ``files`` replicas each; returns the RSE ids."""
    rse_ids = [new_id(), new_id()]
    with transaction(url) as session:
        session.execute(insert(Account), [{"account": "bench", "account_type": "USER", "status": "ACTIVE"}])
        session.execute(insert(Scope), [{"scope": SCOPE, "account": "bench"}])
        session.execute(insert(RSE), [{"id": rse_id, "rse": f"SITE-{i}"} for i, rse_id in enumerate(rse_ids)])
    for part in chunks(range(files), 10_000):
        with transaction(url) as session:
            session.execute(
                insert(DataIdentifier),
                [
                    {
                        "scope": SCOPE,
                        "name": f"f{i}",
                        "did_type": DIDType.FILE,
                        "account": "bench",
                        "bytes": 1,
                    }
                    for i in part
                ],
            )
            session.execute(
                insert(Replica),
                [
                    {
                        "scope": SCOPE,
                        "name": f"f{i}",
                        "rse_id": rse_id,
                        "bytes": 1,
                        "state": ReplicaState.AVAILABLE,
                        "path": f"{rse_id}/f{i}",
                    }
                    for rse_id in rse_ids
                    for i in part
                ],
            )
    return rse_ids


def main() -> None:
    args = arguments(__doc__ or "", {"files": 100_000, "batch": CHUNK}, {"files": 10_000, "batch": 1_000})
    url = fresh_catalogue(args.db)
    rse_id = load(url, args.files)[0]
    keys = [(SCOPE, f"f{i}") for i in range(args.batch)]
    for name, condition in (
        ("lock_count_update_row_comparison", tuple_(Replica.scope, Replica.name).in_(keys)),
        ("lock_count_update_keys_in", keys_in((Replica.scope, Replica.name), keys)),
    ):
        with transaction(url) as session:
            started = time.perf_counter()
            session.execute(
                update(Replica)
                .where(Replica.rse_id == rse_id, condition)
                .values(lock_cnt=Replica.lock_cnt + 1)
            )
            report(name, args.batch, time.perf_counter() - started)
    replicas = (Replica.scope, Replica.name, Replica.rse_id)
    with transaction(url) as session:
        started = time.perf_counter()
        for part in chunks([(SCOPE, f"f{i}", rse_id) for i in range(args.files)], args.batch):
            session.execute(
                update(Replica).where(keys_in(replicas, part)).values(lock_cnt=Replica.lock_cnt + 1)
            )
        report("lock_count_update_keys_in_every_chunk", args.files, time.perf_counter() - started)


if __name__ == "__main__":
    main()
