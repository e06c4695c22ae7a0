"""Benchmark of the judge-evaluator: one pass over a dataset that just received N files.

A dataset under one rule (one target RSE, every file with a source replica elsewhere) gets N
files attached; the timed part is one ``Evaluator.run_once``, which creates N locks, N
replicas and N transfer requests set-based.  Prints ``name size seconds rate peak_rss``
(rate = files/s, peak_rss in MiB) for SQLite and, when a URL is given, PostgreSQL.

    python bench/judge.py                       # 10^5 files, SQLite
    python bench/judge.py --quick               # 10^3 files, for CI
    python bench/judge.py --postgresql URL      # also on PostgreSQL (its public schema is DROPPED)

``DATAMGMT_BENCH_PG_URL`` is read when ``--postgresql`` is not given.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datamgmt.config import reset_config  # noqa: E402
from datamgmt.core import did, did_content, replica, rse, rule, scope  # noqa: E402
from datamgmt.core.bootstrap import bootstrap  # noqa: E402
from datamgmt.core.db.migrate import upgrade  # noqa: E402
from datamgmt.core.db.models import Lock, Request  # noqa: E402
from datamgmt.core.db.session import dispose_engines, transaction  # noqa: E402
from datamgmt.daemons.judge.evaluator import Evaluator  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_catalogue(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    os.environ["DATAMGMT_DATABASE_URL"] = url
    os.environ["DATAMGMT_JUDGE_ASYNC_LOCK_THRESHOLD"] = str(10**9)
    reset_config()
    dispose_engines()
    upgrade(url)


def populate(url: str, n_files: int) -> None:
    files = [
        {"scope": "bench", "name": f"file{i:07d}", "bytes": 1000, "adler32": "0000000a"}
        for i in range(n_files)
    ]
    with transaction(url) as session:
        bootstrap(session, "root", "bench-password", "21.T99999")
        scope.add_scope(session, "bench", "root")
        rse.add_rse(session, "SOURCE")
        rse.add_rse(session, "TARGET")
        did.add_collections(session, [{"scope": "bench", "name": "dataset", "type": "DATASET"}], "root")
        rule.add_rule(session, [{"scope": "bench", "name": "dataset"}], "root", 1, "TARGET")
    for start in range(0, n_files, 10_000):
        part = files[start : start + 10_000]
        with transaction(url) as session:
            did.add_files(session, part, "root")
            replica.add_replicas(session, "SOURCE", part, "root")
            did_content.attach(
                session, "bench", "dataset", [{"scope": f["scope"], "name": f["name"]} for f in part]
            )


def measure(backend: str, url: str, n_files: int) -> None:
    fresh_catalogue(url)
    populate(url, n_files)
    evaluator = Evaluator("bench", url)
    started = time.perf_counter()
    evaluator.run_once(100)
    seconds = time.perf_counter() - started
    with transaction(url) as session:
        locks = session.scalar(select(func.count()).select_from(Lock))
        requests = session.scalar(select(func.count()).select_from(Request))
    if locks != n_files or requests != n_files:
        raise SystemExit(f"{backend}: expected {n_files} locks and requests, got {locks} and {requests}")
    print(
        f"judge-evaluator-{backend} {n_files} {seconds:.3f} {n_files / seconds:.0f} {peak_rss_mib():.0f}",
        flush=True,
    )
    dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10^3 files")
    parser.add_argument("--files", type=int, help="files attached (default 10^5)")
    parser.add_argument(
        "--postgresql", default=os.environ.get("DATAMGMT_BENCH_PG_URL"), help="PostgreSQL URL"
    )
    args = parser.parse_args()
    n_files = args.files or (1_000 if args.quick else 100_000)
    print("name size seconds rate peak_rss")
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{tmp}/bench.db", n_files)
    if args.postgresql:
        measure("postgresql", args.postgresql, n_files)


if __name__ == "__main__":
    main()
