"""judge-injector: applies asynchronous rules (state INJECT) once their injection time has come."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamgmt.core import workqueue
from datamgmt.core.rule import apply_injected_rule
from datamgmt.daemons.common import QueueDaemon


class Injector(QueueDaemon):
    name = "judge-injector"
    queue = workqueue.INJECT_RULES
    wakes_on = workqueue.INJECT_RULES
    places_rules = True

    def process(self, session: Session, rule_id: str) -> None:
        apply_injected_rule(session, rule_id)


DAEMON = Injector
