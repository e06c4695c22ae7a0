"""judge-repairer: gives STUCK rules another chance.

The core call re-selects RSEs with the placement solver for locks that cannot succeed,
requeues failed requests and suspends rules stuck too long.  A rule still STUCK afterwards
is held back for ``[judge] repair_backoff_seconds`` before it is claimed again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import workqueue
from datamgmt.core.rule import repair_rule
from datamgmt.daemons.common import QueueDaemon


class Repairer(QueueDaemon):
    name = "judge-repairer"
    queue = workqueue.STUCK_RULES
    places_rules = True

    def hold_after_success(self) -> int:
        return get_config().get_int("judge", "repair_backoff_seconds")

    def process(self, session: Session, rule_id: str) -> None:
        repair_rule(session, rule_id)


DAEMON = Repairer
