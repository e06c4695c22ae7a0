"""Gauges read from the catalogue at scrape time: queue depths, rules by state, daemons alive,
RSE space (docs/metrics.md).

They describe the service, not one worker, so they are computed by whichever worker answers
the scrape (a few grouped counts, :mod:`datamgmt.core.status`) and never summed across
workers.  A catalogue that cannot be read makes the scrape show ``datamgmt_catalogue_up 0``
rather than fail, so the alert says what is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from datamgmt.config import get_config
from datamgmt.core import status
from datamgmt.core.db.session import transaction

log = logging.getLogger(__name__)


class CatalogueCollector(Collector):
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("datamgmt_catalogue_up", "1 when the catalogue answered this scrape")
        try:
            with transaction(self.database_url, read_only=True) as session:
                queues = status.queues(session)
                rules = status.rules_by_state(session)
                daemons = status.daemons(session, get_config().get_int("daemons", "heartbeat_timeout"))
                rses = status.rse_usage(session)
        except SQLAlchemyError:
            log.warning("catalogue unreadable for /metrics", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "datamgmt_queue_depth", "Items waiting in a daemon's queue", labels=["queue"]
        )
        for name, value in queues.items():
            depth.add_metric([name], value)
        yield depth
        by_state = GaugeMetricFamily("datamgmt_rules", "Replication rules by state", labels=["state"])
        for state, count in rules.items():
            by_state.add_metric([state], count)
        yield by_state
        alive = GaugeMetricFamily(
            "datamgmt_daemon_instances_alive", "Instances with a fresh heartbeat", labels=["daemon"]
        )
        last = GaugeMetricFamily(
            "datamgmt_daemon_last_heartbeat_timestamp_seconds",
            "Unix time of a daemon's newest heartbeat",
            labels=["daemon"],
        )
        for name, entry in daemons.items():
            alive.add_metric([name], entry["alive"])
            last.add_metric([name], entry["last_beat"].timestamp())
        yield alive
        yield last
        space = GaugeMetricFamily(
            "datamgmt_rse_bytes",
            "RSE space: catalogue bytes, storage used and free, MinFreeSpace",
            labels=["rse", "kind"],
        )
        for entry in rses:
            storage = entry.get("storage") or {}
            for kind, amount in (
                ("catalogue", (entry.get("rucio") or {}).get("used")),
                ("used", storage.get("used")),
                ("free", storage.get("free")),
                ("min_free", entry.get("MinFreeSpace")),
            ):
                if amount is not None:
                    space.add_metric([entry["rse"], kind], amount)
        yield space
