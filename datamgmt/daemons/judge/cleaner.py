"""judge-cleaner: hard-deletes expired, unlocked rules with the effects of ``delete_rule``,
re-checking under the rule's row lock that it is still due (its owner may have extended it)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamgmt.core import workqueue
from datamgmt.core.rule_update import delete_expired_rule
from datamgmt.daemons.common import QueueDaemon


class Cleaner(QueueDaemon):
    name = "judge-cleaner"
    queue = workqueue.EXPIRED_RULES

    def process(self, session: Session, rule_id: str) -> None:
        delete_expired_rule(session, rule_id)


DAEMON = Cleaner
