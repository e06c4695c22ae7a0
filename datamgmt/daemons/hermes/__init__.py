"""hermes: delivers the outbox (``messages``) to AMQP, STOMP and HTTP webhooks.

Each configured service (:mod:`~datamgmt.daemons.hermes.amqp`,
:mod:`~datamgmt.daemons.hermes.stomp`, :mod:`~datamgmt.daemons.hermes.webhook`) gets the
messages whose ``services`` name it, or every message whose ``services`` is NULL.  Each batch
leases messages (:mod:`datamgmt.core.outbox`), lets each service deliver its share, then, in
one transaction:

* a message every one of its services took is deleted;
* a message some took keeps only the services still owed (so a retry never repeats a
  delivery that succeeded) and goes back to the outbox;
* a message a service refused (a message-level problem: unroutable, HTTP 4xx) waits
  ``[hermes] retry_seconds``, doubling per refusal up to ``[hermes] retry_max_seconds``,
  logged at WARNING; the rest of the batch goes on;
* when a service fails mid-batch (connection lost, timeout, HTTP 5xx) its remaining messages
  go back at once and the worker backs off before the next batch.

Without any service configured hermes refuses to start: an outbox nobody delivers would grow
silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from datamgmt.config import get_config
from datamgmt.core import outbox
from datamgmt.core.db.session import transaction
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons import metrics
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.hermes.amqp import AmqpSink
from datamgmt.daemons.hermes.base import Outcome, Outgoing, Sink
from datamgmt.daemons.hermes.stomp import StompSink
from datamgmt.daemons.hermes.webhook import WebhookSink
from datamgmt.exceptions import ConfigurationError

#: The services hermes knows, by the name messages' ``services`` use.
SERVICES = (AmqpSink, StompSink, WebhookSink)


class Hermes(Daemon):
    name = "hermes"

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        config = get_config()
        self.sinks: dict[str, Sink] = {}
        for service in SERVICES:
            sink = service.from_config(config)
            if sink is not None:
                self.sinks[service.service] = sink
        if not self.sinks:
            self.log.error("no delivery configured: set [hermes] broker_url, stomp_url or webhook_url")
            raise ConfigurationError(
                "[hermes] broker_url (AMQP), stomp_url and webhook_url are all unset: hermes has nowhere to deliver messages"
            )
        self.default_batch = config.get_int("hermes", "bulk")
        self.retry_seconds = config.get_int("hermes", "retry_seconds")
        self.retry_max_seconds = config.get_int("hermes", "retry_max_seconds")
        #: Refusals so far per message id (this process's memory: a restart starts the back-off again).
        self._refusals: dict[int, int] = {}

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            rows = outbox.claim_messages(session, self.worker_id, batch, self.lease_seconds, list(self.sinks))
        if not rows:
            self.idle = True
            return 0
        owed = {row.id: self._owed(row) for row in rows}
        messages = [Outgoing(row.id, row.event_type, row.payload, row.created_at, self.vo) for row in rows]
        taken: dict[int, set[str]] = defaultdict(set)
        refused: set[int] = set()
        failed = False
        for service, sink in self.sinks.items():
            share = [message for message in messages if service in owed[message.id]]
            if not share:
                continue
            outcome = sink.deliver(share)
            for message_id in outcome.delivered:
                taken[message_id].add(service)
            refused.update(outcome.refused)
            failed |= outcome.error is not None
            self._report(service, share, outcome)
        delivered, undelivered, held, narrowed = self._settlement(rows, owed, taken, refused)
        with transaction(self.db_url) as session:
            removed = outbox.settle(session, self.worker_id, delivered, undelivered, held, narrowed)
        metrics.ITEMS_PROCESSED.labels(self.name).inc(removed)
        # After a service failed, back off instead of retrying at once.
        self.idle = failed
        return removed

    def _owed(self, row: Row[Any]) -> frozenset[str]:
        """The services a message is still owed to: those it names, or all of ours for NULL."""
        return outbox.split_services(row.services) or frozenset(self.sinks)

    def _settlement(
        self,
        rows: Sequence[Row[Any]],
        owed: dict[int, frozenset[str]],
        taken: dict[int, set[str]],
        refused: set[int],
    ) -> tuple[list[int], list[int], dict[int, int], dict[int, str]]:
        """Split the batch into delivered everywhere, given back now, held back (id → seconds),
        and the narrowed ``services`` of those some service took."""
        delivered: list[int] = []
        undelivered: list[int] = []
        held: dict[int, int] = {}
        narrowed: dict[int, str] = {}
        for row in rows:
            left = owed[row.id] - taken[row.id]
            if not left:
                delivered.append(row.id)
                self._refusals.pop(row.id, None)
                continue
            if taken[row.id]:
                narrowed[row.id] = outbox.join_services(left)
            if row.id in refused:
                count = self._refusals[row.id] = self._refusals.get(row.id, 0) + 1
                held[row.id] = min(self.retry_seconds * 2 ** (count - 1), self.retry_max_seconds)
            else:
                undelivered.append(row.id)
        return delivered, undelivered, held, narrowed

    def _report(self, service: str, share: Sequence[Outgoing], outcome: Outcome) -> None:
        """Count the service's outcome and log what it did not take."""
        metrics.HERMES_DELIVERIES.labels(service, "delivered").inc(len(outcome.delivered))
        by_id = {row.id: row for row in share}
        for message_id, refusal in outcome.refused.items():
            metrics.HERMES_DELIVERIES.labels(service, "refused").inc()
            metrics.ITEMS_FAILED.labels(self.name).inc()
            self.log.warning(
                "service did not take the message; it stays in the outbox",
                extra={
                    "fields": {
                        "message": message_id,
                        "event_type": by_id[message_id].event_type,
                        "service": service,
                        "error": refusal.reason,
                        "refusals": self._refusals.get(message_id, 0) + 1,
                        **refusal.fields,
                    }
                },
            )
        if outcome.error is not None:
            untaken = len(share) - len(outcome.delivered) - len(outcome.refused)
            metrics.HERMES_DELIVERIES.labels(service, "failed").inc(untaken)
            metrics.ITEMS_FAILED.labels(self.name).inc(untaken)
            self.log.warning(
                "service unavailable; undelivered messages stay in the outbox",
                extra={"fields": {"service": service, "error": outcome.error, "undelivered": untaken}},
            )

    def die(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        super().die()


DAEMON = Hermes
