"""Load: N concurrent clients on the REST API under gunicorn on PostgreSQL, with every daemon running.

The service is the fault campaign's cluster (``tests/faults/cluster.py``): gunicorn, each daemon
as its own process (two of each judge and conveyor daemon) and the FTS3 double copying between
posix RSEs.  ``--clients`` threads, each its own authenticated client, mix reads (replica lists,
rules), registrations (verified uploads to SRC, registered and attached), rule changes (added,
deleted) and downloads for ``--seconds``; then the daemons drain and ``datamgmt-admin check
--storage`` must find nothing.

Prints ``name size seconds rate peak_rss`` per operation (size = calls), then p50/p99 latency,
errors and the count of 5xx answers.  Exits 1 on any 5xx, a failed drain or a violation; without a PostgreSQL server it says so
and exits 0.
``--quick`` runs 2 clients for 20 seconds.  The catalogue is a private database on the server
of ``--db`` (default ``$DATAMGMT_BENCH_DB_URL`` or ``$DATAMGMT_TEST_DB_URL``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamgmt.config import reset_config  # noqa: E402
from datamgmt.core.db.migrate import upgrade  # noqa: E402
from datamgmt.core.db.session import dispose_engines  # noqa: E402
from tests.conftest import _drop_postgresql, _private_postgresql  # noqa: E402
from tests.faults.checks import finish  # noqa: E402
from tests.faults.cluster import running  # noqa: E402
from tests.faults.site import populate  # noqa: E402
from tests.faults.workload import WEIGHTS, Workload, summary  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 clients for 20 seconds (CI)")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=None, help="how long they run (default 600)")
    parser.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--file-size", type=int, default=4096, help="bytes per uploaded file")
    parser.add_argument(
        "--db",
        default=os.environ.get("DATAMGMT_BENCH_DB_URL") or os.environ.get("DATAMGMT_TEST_DB_URL"),
        help="a PostgreSQL server URL; the run uses a private database on it",
    )
    args = parser.parse_args()
    args.clients = args.clients or (2 if args.quick else 8)
    args.seconds = args.seconds or (20 if args.quick else 600)
    return args


def main() -> int:
    args = arguments()
    if not args.db or not args.db.startswith("postgresql"):
        print("load: skipped, it needs a PostgreSQL server (--db or DATAMGMT_BENCH_DB_URL)")
        return 0
    url = _private_postgresql(args.db)
    os.environ["DATAMGMT_DATABASE_URL"] = url
    reset_config()
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory(prefix="datamgmt-load-") as tmp:
            site = populate(url, Path(tmp) / "storage")
            with running(url, Path(tmp) / "cluster", api_workers=args.api_workers) as cluster:
                workload = Workload(
                    site,
                    cluster.api_url,
                    Path(tmp) / "clients",
                    threads=args.clients,
                    file_size=args.file_size,
                    weights={**WEIGHTS, "download": 2},
                ).start()
                started = time.perf_counter()
                time.sleep(args.seconds)
                outcome = finish(cluster, workload)
                seconds = time.perf_counter() - started
        dispose_engines()
    finally:
        _drop_postgresql(args.db, url)
    return report(args, outcome, seconds)


def report(args: argparse.Namespace, outcome, seconds: float) -> int:  # type: ignore[no-untyped-def]
    stats = outcome.workload
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"# {args.clients} clients, {args.seconds:.0f} s of load ({seconds:.0f} s with the drain), "
        f"{args.api_workers} gunicorn workers, {os.cpu_count()} CPUs, files of {args.file_size} bytes"
    )
    print("name size seconds rate peak_rss")
    for op in sorted(stats.latencies):
        calls = len(stats.latencies[op])
        print(f"load_{op} {calls} {args.seconds:.1f} {calls / args.seconds:.1f}/s {peak:.0f}MiB")
    print("\n".join(summary(stats, args.seconds)))
    server_errors = sum(stats.server_errors.values())
    print(f"errors={dict(stats.errors)} failed_calls={dict(stats.failed)} 5xx={server_errors}")
    print(
        f"drain left={outcome.left} checker violations={len(outcome.violations)} "
        f"FTS submitted twice={len(outcome.submitted_twice)} daemons dead={outcome.dead_daemons}"
    )
    for violation in outcome.violations:
        print(f"VIOLATION {violation}")
    clean = not (
        server_errors or outcome.left or outcome.violations or outcome.submitted_twice or outcome.dead_daemons
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
