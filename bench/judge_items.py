"""The judge's cost per item: N one-file rules through the injector, then through the repairer.

A daemon works one item per transaction (``daemons/common.QueueDaemon``), so on a backlog of
small rules its throughput is the fixed cost of an item: claiming, the lease, the rule's read,
settling its state, its history, the commit.  Both steps run one worker in this process:

* ``injector``: N asynchronous rules, one per file, to an RSE where no file has a replica
  and no source exists: each becomes one STUCK lock on a new replica;
* ``repairer``: a source replica of every file appears, and the repairer turns each of the
  N STUCK rules REPLICATING with one queued transfer.

Prints ``name size seconds rate peak_rss`` per step (rate = items/s), then the statements
per item.  ``python bench/judge_items.py [--db URL] [--items N] [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report  # noqa: E402


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], {"items": 2000}, {"items": 200})
    url = fresh_catalogue(args.db)

    from sqlalchemy import event, func, select

    from datamgmt.core import did, replica, rse, rule, scope
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.models import Rule
    from datamgmt.core.db.session import get_engine, transaction
    from datamgmt.daemons.common import QueueDaemon
    from datamgmt.daemons.judge.injector import Injector
    from datamgmt.daemons.judge.repairer import Repairer

    files = [
        {"scope": "bench", "name": f"f{i:07d}", "bytes": 1000, "adler32": "0000000a"}
        for i in range(args.items)
    ]
    with transaction(url) as session:
        bootstrap(session, "root", "bench-password", "21.T99999")
        scope.add_scope(session, "bench", "root")
        for name in ("SOURCE", "TARGET"):
            rse.add_rse(session, name)
        did.add_files(session, files, "root")
        keys = [{"scope": f["scope"], "name": f["name"]} for f in files]
        rule.add_rule(session, keys, "root", 1, "TARGET", asynchronous=True)

    statements = [0]
    event.listen(
        get_engine(url), "before_cursor_execute", lambda *_: statements.__setitem__(0, statements[0] + 1)
    )

    def drain(name: str, daemon: QueueDaemon) -> None:
        statements[0] = 0
        started, done = time.perf_counter(), 0
        while True:
            done += daemon.run_once(100)
            if daemon.idle:
                break
        report(name, done, time.perf_counter() - started)
        print(f"#   {name}: {statements[0] / max(done, 1):.1f} statements per item", flush=True)
        if done != args.items:
            raise SystemExit(f"{name}: {done} items processed, expected {args.items}")

    drain("injector", Injector("bench-injector", url))
    with transaction(url) as session:
        replica.add_replicas(session, "SOURCE", files, "root")
    drain("repairer", Repairer("bench-repairer", url))
    with transaction(url, read_only=True) as session:
        states = session.execute(select(Rule.state, func.count()).group_by(Rule.state)).all()
    if [(state.name, count) for state, count in states] != [("REPLICATING", args.items)]:
        raise SystemExit(f"rules after the repairer: {states}")


if __name__ == "__main__":
    main()
