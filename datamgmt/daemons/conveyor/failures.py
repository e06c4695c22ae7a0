"""Transfer failures in the log: one WARNING (retried) or ERROR (given up: lock and rule STUCK)
per failed request, naming its DID, rule, request and RSEs with the tool's error text, so an
operator reading the log alone knows what broke where.  A batch of many failures logs the
first :data:`MAX_LINES` and a count, so a dead storage element cannot flood the log."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState
from datamgmt.core.request_history import failure_details

#: Failures logged one by one per batch; the rest are counted.
MAX_LINES = 50


def log_failures(
    log: logging.LoggerAdapter,  # type: ignore[type-arg]
    session: Session,
    reasons: Mapping[str, str],
    outcome: Mapping[str, RequestState],
) -> None:
    """Log the failures ``requests_failed`` applied (``outcome``: each request's new state)."""
    applied = [request_id for request_id in reasons if request_id in outcome]
    details = failure_details(session, applied[:MAX_LINES])
    for request_id in applied[:MAX_LINES]:
        final = outcome[request_id] is RequestState.FAILED
        log.log(
            logging.ERROR if final else logging.WARNING,
            "transfer failed, retry limit reached: lock and rule STUCK" if final else "transfer failed, retried",
            extra={"fields": {"request": request_id, **details.get(request_id, {}),
                              "error": reasons[request_id][:1000]}},
        )  # fmt: skip
    if len(applied) > MAX_LINES:
        log.warning("more transfer failures in this batch", extra={"fields": {"not_logged": len(applied) - MAX_LINES}})
