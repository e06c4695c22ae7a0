"""Transfer outcomes in the log and the metrics.

Every failed request gets one WARNING (retried) or ERROR (given up: lock and rule STUCK) line
naming its DID, rule, request and RSEs with the tool's error text, so an operator reading the
log alone knows what broke where; a batch of many failures logs the first :data:`MAX_LINES`
and a count, so a dead storage element cannot flood the log.  Every outcome also counts in
``datamgmt_transfers_total`` by outcome and RSE pair (bytes of arrivals in
``datamgmt_transferred_bytes_total``), which the dashboards and alerts in etc/ read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState
from datamgmt.core.request_history import request_endpoints
from datamgmt.daemons import metrics

#: Failures logged one by one per batch; the rest are counted.
MAX_LINES = 50


def report_outcomes(
    log: logging.LoggerAdapter,  # type: ignore[type-arg]
    session: Session,
    done: Sequence[str],
    reasons: Mapping[str, str],
    outcome: Mapping[str, RequestState],
) -> None:
    """Count the arrivals ``done`` (as applied by ``requests_done``) and the failures
    ``requests_failed`` applied (``outcome``: each request's new state), and log the failures."""
    failed = [request_id for request_id in reasons if request_id in outcome]
    if not done and not failed:
        return
    details = request_endpoints(session, [*done, *failed])
    for request_id in done:
        entry = details.get(request_id, {})
        pair = (entry.get("source_rse") or "unknown", entry.get("rse") or "unknown")
        metrics.TRANSFERS.labels("done", *pair).inc()
        metrics.TRANSFERRED_BYTES.labels(*pair).inc(entry.get("bytes") or 0)
    for index, request_id in enumerate(failed):
        entry = details.get(request_id, {})
        final = outcome[request_id] is RequestState.FAILED
        metrics.TRANSFERS.labels(
            "failed" if final else "retried",
            entry.get("source_rse") or "unknown",
            entry.get("rse") or "unknown",
        ).inc()
        if index < MAX_LINES:
            log.log(
                logging.ERROR if final else logging.WARNING,
                "transfer failed, retry limit reached: lock and rule STUCK"
                if final
                else "transfer failed, retried",
                extra={"fields": {"request": request_id, **entry, "error": reasons[request_id][:1000]}},
            )
    if len(failed) > MAX_LINES:
        log.warning(
            "more transfer failures in this batch", extra={"fields": {"not_logged": len(failed) - MAX_LINES}}
        )
