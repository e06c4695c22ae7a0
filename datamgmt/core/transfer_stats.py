"""Transfers at a glance for the dashboard: how many wait, run, succeeded and failed, where they
fail, and how the rate went over the last day.

Live counts come from ``requests`` (one grouped count), outcomes from ``requests_history``
(what :mod:`datamgmt.core.request_history` keeps of every attempt).  Each answer is one or
two grouped queries whatever the number of transfers: the rate buckets attempts with a
``CASE`` over the bucket boundaries in SQL, so a busy day is never loaded row by row, and the
hour's and day's totals are read off the same buckets.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import RSE, Request, RequestHistory
from datamgmt.core.db.types import utcnow
from datamgmt.core.request_history import FAILED_STATES

#: Live request states the dashboard calls "queued" and "in flight".
QUEUED_STATES = (RequestState.QUEUED, RequestState.WAITING, RequestState.PREPARING)
IN_FLIGHT_STATES = (RequestState.SUBMITTING, RequestState.SUBMITTED)
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def _outcome() -> Any:
    """1 for a successful attempt, 0 for a failed one (only those two are ever selected)."""
    return case((RequestHistory.state == RequestState.DONE, 1), else_=0)


def transfer_counts(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """``queued`` and ``in_flight`` now; ``done`` and ``failed`` attempts in the last hour and day,
    and ``rate``, the day's attempts per hour (:func:`transfer_rate`): the hour is the rate's last
    bucket and the day their sum, so the history is read once."""
    live = dict(session.execute(select(Request.state, func.count()).group_by(Request.state)).tuples().all())
    rate = transfer_rate(session, WINDOWS["day"], 24, now)
    return {
        "queued": sum(live.get(state, 0) for state in QUEUED_STATES),
        "in_flight": sum(live.get(state, 0) for state in IN_FLIGHT_STATES),
        "done": {"hour": rate[-1]["done"], "day": sum(bucket["done"] for bucket in rate)},
        "failed": {"hour": rate[-1]["failed"], "day": sum(bucket["failed"] for bucket in rate)},
        "rate": rate,
    }


def failures_by_pair(session: Session, since: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """Failed attempts since ``since`` per source → destination RSE, most failures first, each
    with the newest failure's error text."""
    grouped = (
        select(
            RequestHistory.source_rse_id,
            RequestHistory.dest_rse_id,
            func.count(),
            func.max(RequestHistory.id),
        )
        .where(RequestHistory.created_at >= since, RequestHistory.state.in_(FAILED_STATES))
        .group_by(RequestHistory.source_rse_id, RequestHistory.dest_rse_id)
        .order_by(func.count().desc(), func.max(RequestHistory.id).desc())
        .limit(limit)
    )
    pairs = session.execute(grouped).all()
    latest = [row[3] for row in pairs]
    errors = (
        dict(
            session.execute(
                select(RequestHistory.id, RequestHistory.err_msg).where(RequestHistory.id.in_(latest))
            )
            .tuples()
            .all()
        )
        if latest
        else {}
    )
    ids = sorted({rse_id for row in pairs for rse_id in row[:2] if rse_id})
    names = (
        dict(session.execute(select(RSE.id, RSE.rse).where(RSE.id.in_(ids))).tuples().all()) if ids else {}
    )
    return [
        {
            "source": names.get(src or "", "(no source)"),
            "destination": names.get(dst, dst),
            "failures": count,
            "last_error": errors.get(last),
        }
        for src, dst, count, last in pairs
    ]


def transfer_rate(
    session: Session, span: timedelta = WINDOWS["day"], buckets: int = 24, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Attempts done and failed per equal time bucket over ``span`` up to now, oldest first."""
    now = now or utcnow()
    width = span / buckets
    starts = [now - span + width * index for index in range(buckets)]
    bucket = case(
        *((RequestHistory.created_at < start + width, index) for index, start in enumerate(starts)),
        else_=buckets - 1,
    )
    rows = session.execute(
        select(bucket, func.coalesce(func.sum(_outcome()), 0), func.count())
        .where(
            RequestHistory.created_at >= starts[0],
            RequestHistory.state.in_((RequestState.DONE, *FAILED_STATES)),
        )
        .group_by(bucket)
    ).all()
    counted = {int(index): (int(done), int(total)) for index, done, total in rows}
    return [
        {
            "start": start,
            "done": counted.get(index, (0, 0))[0],
            "failed": counted.get(index, (0, 0))[1] - counted.get(index, (0, 0))[0],
        }
        for index, start in enumerate(starts)
    ]
