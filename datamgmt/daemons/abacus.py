"""abacus: folds the queued usage deltas into ``rse_usage`` (source ``rucio``) and ``account_usage``,
then snapshots the usage rows that changed into their history tables (:mod:`datamgmt.core.usage_history`).

Rucio runs abacus-rse and abacus-account separately; here one worker does both, each fold
in its own short transaction (:mod:`datamgmt.core.accounting`), so the usage tables lag
the catalogue by at most one batch cycle.  Many instances are safe: each fold takes
disjoint delta rows.
"""

from __future__ import annotations

from datamgmt.core import accounting, usage_history
from datamgmt.core.db.session import transaction
from datamgmt.daemons.common import Daemon


class Abacus(Daemon):
    name = "abacus"
    default_batch = 1000

    def run_once(self, batch: int) -> int:
        folded = 0
        for fold in (accounting.RSE_FOLD, accounting.ACCOUNT_FOLD):
            with transaction(self.db_url) as session:
                folded += accounting.fold_counters(session, fold, batch)
        with transaction(self.db_url) as session:
            usage_history.snapshot(session)
        self.idle = folded == 0
        return folded


DAEMON = Abacus
