"""A copies=2 rule on one dataset of N files over R RSEs: time until its locks, replicas,
requests and sources are written (committed), against a raw executemany INSERT of the very
same rows into the same tables.  The ratio is the price of planning (one solver call),
reading files and replicas, and bookkeeping (counters, quota) on top of the bare writes.

The files sit on a source RSE outside the rule's expression, so every lock needs a
transfer: the worst case (2N locks, 2N replicas, 2N requests, 2N sources).  Then a rule on
the source RSE itself, where the data already is (N locks raising N replicas' ``lock_cnt``),
in locks/s against the transfers rule's: issue 17 wants it no slower, and linear in N.  Last,
both rules are removed (their locks released, ``lock_cnt`` lowered, the queued transfers
cancelled), each in its own transaction as the API does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report  # noqa: E402


def seed(url: str, n_files: int, n_rses: int) -> None:
    from datamgmt.core import did, did_content, replica, rse, scope
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.session import transaction

    with transaction(url) as session:
        bootstrap(session, "root", "bench-password", "21.T99999")
        scope.add_scope(session, "bench", "root")
        rse.add_rse(session, "SOURCE")
        for i in range(n_rses):
            rse.add_rse(session, f"DISK{i:04d}")
            rse.add_rse_attribute(session, f"DISK{i:04d}", "bench", True)
    files = [
        {"scope": "bench", "name": f"file.{i:08d}", "bytes": 1000 + i, "adler32": f"{i:08x}"}
        for i in range(n_files)
    ]
    with transaction(url) as session:
        replica.add_replicas(session, "SOURCE", files, "root")
        did.add_collection(session, "bench", "dataset", "DATASET", "root")
        did_content.attach(
            session, "bench", "dataset", [{"scope": f["scope"], "name": f["name"]} for f in files]
        )


def ours(url: str, copies: int = 2, expression: str = "bench") -> float:
    """add_rule, then (a rule over ``[judge] async_lock_threshold`` locks starts INJECT) the
    judge-injector's ``apply_injected_rule``, each in its own transaction, as in service."""
    from datamgmt.core.db.constants import RuleState
    from datamgmt.core.db.session import transaction
    from datamgmt.core.rule import add_rule, apply_injected_rule

    start = time.perf_counter()
    with transaction(url) as session:
        (rule_id,) = add_rule(session, [{"scope": "bench", "name": "dataset"}], "root", copies, expression)
    with transaction(url) as session:
        state = apply_injected_rule(session, rule_id)
    in_place = expression == "SOURCE"
    assert state == (RuleState.OK if in_place else RuleState.REPLICATING), state
    return time.perf_counter() - start


def raw(url: str) -> tuple[float, int]:
    """Read back what the rule wrote, delete it, and time a bare INSERT of the same rows."""
    from sqlalchemy import delete, insert, select

    from datamgmt.core.db.constants import ReplicaState
    from datamgmt.core.db.models import Lock, Replica, Request, Source
    from datamgmt.core.db.session import get_engine

    engine = get_engine(url)
    tables = [Lock.__table__, Replica.__table__, Request.__table__, Source.__table__]
    with engine.begin() as conn:
        rows = {
            Lock.__table__: [dict(r) for r in conn.execute(select(Lock.__table__)).mappings()],
            Replica.__table__: [
                dict(r)
                for r in conn.execute(
                    select(Replica.__table__).where(Replica.state == ReplicaState.COPYING)
                ).mappings()
            ],
            Request.__table__: [dict(r) for r in conn.execute(select(Request.__table__)).mappings()],
            Source.__table__: [dict(r) for r in conn.execute(select(Source.__table__)).mappings()],
        }
        conn.execute(delete(Source.__table__))
        conn.execute(delete(Request.__table__))
        conn.execute(delete(Lock.__table__))
        conn.execute(delete(Replica.__table__).where(Replica.state == ReplicaState.COPYING))
    start = time.perf_counter()
    with engine.begin() as conn:
        for table in (Replica.__table__, Lock.__table__, Request.__table__, Source.__table__):
            conn.execute(insert(table), rows[table])
    return time.perf_counter() - start, sum(len(rows[t]) for t in tables)


def removal(url: str) -> float:
    """Remove every rule, one transaction each; the seconds taken."""
    from sqlalchemy import select

    from datamgmt.core.db.models import Rule
    from datamgmt.core.db.session import transaction
    from datamgmt.core.rule_update import delete_rule

    with transaction(url, read_only=True) as session:
        rule_ids = session.scalars(select(Rule.id)).all()
    start = time.perf_counter()
    for rule_id in rule_ids:
        with transaction(url) as session:
            delete_rule(session, rule_id)
    return time.perf_counter() - start


def main() -> None:
    args = arguments(__doc__.splitlines()[0], {"files": 100_000, "rses": 100}, {"files": 2_000, "rses": 20})
    url = fresh_catalogue(args.db)
    seed(url, args.files, args.rses)
    seconds = ours(url)
    raw_seconds, rows = raw(url)
    in_place = ours(url, copies=1, expression="SOURCE")
    report(f"rule_copies2_{args.rses}rses", args.files, seconds)
    report("raw_insert_same_rows", rows, raw_seconds)
    report("rule_transfers_locks", 2 * args.files, seconds)
    report("rule_in_place_locks", args.files, in_place)
    report("rule_removal_locks", 3 * args.files, removal(url))
    print(f"# ratio rule/raw {seconds / raw_seconds:.2f}", flush=True)
    print(f"# ratio locks/s in place / with transfers {seconds / (2 * in_place):.2f}", flush=True)


if __name__ == "__main__":
    main()
