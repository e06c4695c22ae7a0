"""Conveyor throughput: N requests through submitter and poller against an instant FTS3 double.

Prints ``name size seconds rate peak_rss`` per stage (rate = requests/s) and the catalogue
statements per request each stage issued (counted with a ``before_cursor_execute`` listener).
The catalogue is a fresh SQLite file unless ``--db`` names another; ``--quick`` uses 500 requests.
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

from sqlalchemy import event, insert  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", help="catalogue URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    size = 500 if args.quick else args.size
    workdir = tempfile.mkdtemp(prefix="bench-conveyor-")
    url = args.db or f"sqlite:///{workdir}/catalogue.db"
    os.environ["DATAMGMT_DATABASE_URL"] = url
    os.environ.update(
        DATAMGMT_CONVEYOR_TRANSFERTOOL="fts3",
        DATAMGMT_CONVEYOR_POLL_INTERVAL="0",
        DATAMGMT_CONVEYOR_MAX_ACTIVE_PER_RSE="0",
        DATAMGMT_CONVEYOR_FILES_PER_JOB="200",
    )

    from datamgmt.config import reset_config
    from datamgmt.core import replica, rse, scope
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.constants import RequestState
    from datamgmt.core.db.migrate import upgrade
    from datamgmt.core.db.models import Request
    from datamgmt.core.db.session import get_engine, transaction
    from datamgmt.core.db.types import new_id, utcnow
    from tests.fts3_double import Fts3Double, Fts3DoubleServer

    with Fts3DoubleServer(Fts3Double(instant=True)) as server:
        os.environ["DATAMGMT_CONVEYOR_FTS_HOST"] = server.url
        reset_config()
        upgrade(url)
        with transaction(url) as session:
            bootstrap(session, "root", "bench-password", "21.T99999")
            for name in ("SRC", "DEST"):
                rse.add_rse(session, name)
                rse.add_protocol(
                    session, name, {"scheme": "file", "prefix": f"{workdir}/{name}", "impl": "posix"}
                )
            scope.add_scope(session, "bench", "root")
            files = [
                {"scope": "bench", "name": f"f{i:06d}", "bytes": 1, "adler32": "00000001"}
                for i in range(size)
            ]
            replica.add_replicas(session, "SRC", files, "root")
            replica.add_replicas(session, "DEST", files, "root", state=replica.ReplicaState.COPYING)
            dest_id = rse.get_rse_id(session, "DEST")
            now = utcnow()
            session.execute(
                insert(Request),
                [
                    {
                        "id": new_id(),
                        "scope": "bench",
                        "name": f["name"],
                        "dest_rse_id": dest_id,
                        "bytes": 1,
                        "adler32": "00000001",
                        "state": RequestState.QUEUED,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for f in files
                ],
            )

        from datamgmt.daemons.conveyor.poller import Poller
        from datamgmt.daemons.conveyor.submitter import Submitter

        statements = [0]

        @event.listens_for(get_engine(url), "before_cursor_execute")
        def count(*_args: object) -> None:
            statements[0] += 1

        for label, daemon in (("submitter", Submitter(db_url=url)), ("poller+finish", Poller(db_url=url))):
            statements[0] = 0
            started = time.perf_counter()
            while daemon.run_once(1000):
                pass
            seconds = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            print(f"conveyor.{label} {size} {seconds:.3f} {size / seconds:.1f} {peak}")
            print(f"conveyor.{label}.statements_per_request {size} {statements[0] / size:.2f}")
        with transaction(url) as session:
            done = session.query(Request).filter(Request.state == RequestState.DONE).count()
        if done != size:
            raise SystemExit(f"only {done} of {size} requests DONE")


if __name__ == "__main__":
    main()
