"""The web dashboard's transfer section over a busy day: counts per hour and day, failures by
RSE pair, and the hourly rate chart (``datamgmt/core/transfer_stats.py``): the two calls a
refresh makes.

``requests_history`` is loaded with bulk INSERTs: ``attempts`` rows spread over the last two
days between ``rses`` RSEs, a fifth of them failed.  Each figure is the time of one call, as
one dashboard refresh makes it; the rate is history rows per second.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report
from datamgmt.core import transfer_stats
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import RSE, RequestHistory
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import new_id, utcnow

BATCH = 10_000


def load(url: str, attempts: int, rses: int) -> None:
    now, pick = utcnow(), random.Random(7)
    ids = [new_id() for _ in range(rses)]
    with transaction(url) as session:
        session.execute(insert(RSE), [{"id": rse_id, "rse": f"SITE-{i}"} for i, rse_id in enumerate(ids)])
    for start in range(0, attempts, BATCH):
        rows = []
        for i in range(start, min(attempts, start + BATCH)):
            failed = pick.random() < 0.2
            rows.append(
                {
                    "request_id": new_id(),
                    "scope": "bench",
                    "name": f"f{i}",
                    "dest_rse_id": pick.choice(ids),
                    "source_rse_id": pick.choice(ids),
                    "state": RequestState.FAILED if failed else RequestState.DONE,
                    "err_msg": f"error {i % 50}" if failed else None,
                    "created_at": now - timedelta(seconds=pick.uniform(0, 2 * 86400)),
                }
            )
        with transaction(url) as session:
            session.execute(insert(RequestHistory), rows)


def main() -> None:
    args = arguments(__doc__ or "", {"attempts": 1_000_000, "rses": 100}, {"attempts": 20_000, "rses": 20})
    url = fresh_catalogue(args.db)
    load(url, args.attempts, args.rses)
    for name, call in (
        ("dashboard_transfer_counts_and_rate", transfer_stats.transfer_counts),
        (
            "dashboard_failures_by_pair",
            lambda s: transfer_stats.failures_by_pair(s, utcnow() - timedelta(days=1)),
        ),
    ):
        with transaction(url) as session:
            started = time.perf_counter()
            call(session)
            report(name, args.attempts, time.perf_counter() - started)


if __name__ == "__main__":
    main()
