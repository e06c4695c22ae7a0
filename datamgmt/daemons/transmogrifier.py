"""transmogrifier: turns subscriptions into replication rules on new datasets and containers.

Each batch is one transaction around :func:`datamgmt.core.subscription.match_new_dids`:
take up to ``batch`` DIDs with ``is_new`` set, create the rules of every active
subscription whose filter they match, clear ``is_new``.  Many instances are safe: on
PostgreSQL a batch is selected ``FOR UPDATE SKIP LOCKED`` (concurrent workers take disjoint
DIDs), on SQLite writers are serialised, and a rule created twice is refused by its unique
key (DuplicateRule), which the core call skips.  ``[transmogrifier] bulk`` sets the batch.
"""

from __future__ import annotations

from datamgmt.config import get_config
from datamgmt.core.db.session import transaction
from datamgmt.core.subscription import match_new_dids
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons import metrics
from datamgmt.daemons.common import Daemon


class Transmogrifier(Daemon):
    name = "transmogrifier"
    places_rules = True

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        self.default_batch = get_config().get_int("transmogrifier", "bulk", 100)

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            report = match_new_dids(session, batch)
        # A short batch means no new DID is left now: back off (and let --run-once finish).
        self.idle = report.dids < batch
        metrics.ITEMS_PROCESSED.labels(self.name).inc(report.dids)
        metrics.ITEMS_FAILED.labels(self.name).inc(len(report.failures))
        for failure in report.failures:
            self.log.warning("subscription rule not created", extra={"fields": {"error": failure}})
        if report.rules or report.deferred:
            self.log.info(
                "rules created",
                extra={"fields": {"rules": len(report.rules), "deferred": len(report.deferred)}},
            )
        return report.dids


DAEMON = Transmogrifier
