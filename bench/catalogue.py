"""Register N files with replicas, attach them to a dataset, list them back.

Compares the service's bulk path with a raw ``executemany`` INSERT of the same rows
(dids, replicas, contents) on the same kind of database: the ratio is the price of
validation and bookkeeping on top of the bare writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report  # noqa: E402


def file_rows(n: int) -> list[dict]:
    return [
        {"scope": "bench", "name": f"file.{i:08d}", "bytes": 1000 + i, "adler32": f"{i:08x}"}
        for i in range(n)
    ]


def seed(url: str) -> None:
    from datamgmt.core import rse, scope
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.session import transaction

    with transaction(url) as session:
        bootstrap(session, "root", "bench-password", "21.T99999")
        scope.add_scope(session, "bench", "root")
        rse.add_rse(session, "BENCH-RSE")


def ours(url: str, files: list[dict]) -> tuple[float, float]:
    from datamgmt.core import did, did_content, replica
    from datamgmt.core.db.session import transaction

    start = time.perf_counter()
    with transaction(url) as session:
        replica.add_replicas(session, "BENCH-RSE", files, "root")
        did.add_collection(session, "bench", "dataset", "DATASET", "root")
        did_content.attach(
            session, "bench", "dataset", [{"scope": f["scope"], "name": f["name"]} for f in files]
        )
    write = time.perf_counter() - start
    start = time.perf_counter()
    with transaction(url) as session:
        listed = sum(1 for _ in replica.list_replicas(session, [{"scope": "bench", "name": "dataset"}]))
    assert listed == len(files), listed
    return write, time.perf_counter() - start


def raw(url: str, files: list[dict]) -> float:
    """The same rows through a bare DB-API executemany, no checks at all."""
    from sqlalchemy import text

    from datamgmt.core.db.session import get_engine
    from datamgmt.core.db.types import utcnow

    engine = get_engine(url)
    now = utcnow()
    rse_id = "0" * 32
    dids = [dict(f, account="root", did_type="F", now=now) for f in files]
    replicas = [dict(f, rse_id=rse_id, path=f"{f['scope']}/{f['name']}", now=now) for f in files]
    contents = [dict(f, now=now) for f in files]
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dids (scope, name, account, did_type, monotonic, hidden, obsolete, availability, bytes,"
                " adler32, purge_replicas, created_at, updated_at) VALUES (:scope, :name, :account, :did_type,"
                " false, false, false, 'A', :bytes, :adler32, true, :now, :now)"
            ),
            dids,
        )
        conn.execute(
            text(
                "INSERT INTO replicas (scope, name, rse_id, bytes, adler32, path, state, lock_cnt, delete_failures,"
                " created_at, updated_at) VALUES (:scope, :name, :rse_id, :bytes, :adler32, :path, 'A', 0, 0, :now,"
                " :now)"
            ),
            replicas,
        )
        conn.execute(
            text(
                "INSERT INTO contents (scope, name, child_scope, child_name, did_type, child_type, bytes, adler32,"
                " rule_evaluation, created_at, updated_at) VALUES ('bench', 'rawdataset', :scope, :name, 'D', 'F',"
                " :bytes, :adler32, true, :now, :now)"
            ),
            contents,
        )
    return time.perf_counter() - start


def prepare_raw(url: str) -> None:
    """Foreign keys need the parent rows the raw INSERTs point at."""
    from sqlalchemy import text

    from datamgmt.core.db.session import get_engine
    from datamgmt.core.db.types import utcnow

    now = utcnow()
    with get_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rses (id, rse, rse_type, deterministic, volatile, staging_area, availability_read,"
                " availability_write, availability_delete, deleted, created_at, updated_at) VALUES"
                " (:id, 'RAW-RSE', 'DISK', true, false, false, true, true, true, false, :now, :now)"
            ),
            {"id": "0" * 32, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO dids (scope, name, account, did_type, is_open, monotonic, hidden, obsolete, availability,"
                " purge_replicas, created_at, updated_at) VALUES ('bench', 'rawdataset', 'root', 'D', true, false,"
                " false, false, 'A', true, :now, :now)"
            ),
            {"now": now},
        )


def main() -> None:
    args = arguments(__doc__.splitlines()[0], {"files": 100_000}, {"files": 5_000})
    url = fresh_catalogue(args.db)
    seed(url)
    files = file_rows(args.files)
    write, listing = ours(url, files)
    report("catalogue_register_attach", args.files, write)
    report("catalogue_list_replicas", args.files, listing)
    url = fresh_catalogue(args.db)
    seed(url)
    prepare_raw(url)
    raw_seconds = raw(url, files)
    report("raw_executemany_same_rows", args.files, raw_seconds)
    print(f"ratio ours/raw {write / raw_seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
