"""necromancer: BAD replicas are copied again from a good replica, or their file declared lost.

Each pass first returns replicas whose TEMPORARY_UNAVAILABLE declaration has expired to
reads, then takes a batch of BAD replicas and decides each in one transaction
(:mod:`datamgmt.core.necromancer`): re-copy where rules hold it and another copy exists,
reaper where nobody holds it, LOST where no other copy exists.  Decisions are conditional
updates from BAD, so many instances never act on one replica twice.
"""

from __future__ import annotations

from datamgmt.core import bad_replica, necromancer
from datamgmt.core.db.session import transaction
from datamgmt.daemons.common import Daemon


class Necromancer(Daemon):
    name = "necromancer"

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            restored = bad_replica.expire_unavailability(session, batch)
        with transaction(self.db_url) as session:
            keys = necromancer.bad_replicas(session, batch)
            outcome = necromancer.revive(session, keys) if keys else {}
        if outcome:
            self.log.info("bad replicas", extra={"fields": outcome})
        done = sum(outcome.values())
        for _ in range(done):
            self.record_item(True)
        self.idle = not keys and not restored
        return done + restored


DAEMON = Necromancer
