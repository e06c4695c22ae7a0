"""undertaker: removes DIDs whose lifetime has passed (rules, content, the DID itself).

Each batch is picked and buried in one transaction (:mod:`datamgmt.core.undertaker`), so a
failure leaves the whole batch for the next cycle and concurrent instances never bury the
same DID twice.
"""

from __future__ import annotations

from datamgmt.core import undertaker
from datamgmt.core.db.session import transaction
from datamgmt.daemons.common import Daemon


class Undertaker(Daemon):
    name = "undertaker"

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            buried = undertaker.bury(session, undertaker.claim_expired(session, batch))
        self.idle = buried == 0
        return buried


DAEMON = Undertaker
