"""judge-evaluator: applies the rules of collections whose content changed.

It consumes ``updated_dids``.  Rows of one collection claimed in the same batch become one
item, so a collection is evaluated once per batch however many attaches queued it; the
core call walks up to every rule on every parent and works set-based, per rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from datamgmt.core import workqueue
from datamgmt.core.rule import evaluate_did_changes
from datamgmt.daemons.common import Item, QueueDaemon


class Evaluator(QueueDaemon):
    name = "judge-evaluator"
    queue = workqueue.UPDATED_DIDS
    places_rules = True
    consume = True

    def items(self, rows: Sequence[Row[Any]]) -> list[Item]:
        by_did: dict[tuple[str, str], Item] = {}
        for row_id, scope, name in rows:
            by_did.setdefault((scope, name), Item([], (scope, name))).keys.append((row_id,))
        return list(by_did.values())

    def process(self, session: Session, payload: tuple[str, str]) -> None:
        evaluate_did_changes(session, *payload)


DAEMON = Evaluator
