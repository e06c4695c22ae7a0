"""Transfer attempts kept after the fact: Rucio's ``requests_history``, and what it answers.

A request row only shows its *current* attempt: a failure is overwritten by the retry, and a
request that gave up is eventually dropped with its lock.  So every outcome the conveyor
applies (:mod:`datamgmt.core.request`) is copied here first, one ``INSERT … SELECT`` per
chunk of requests, with the source, destination, tool, external id, timestamps, bytes and
the tool's own error text.  Operators read it through ``/requests/history``, ``/requests/
metrics``, ``datamgmt rule show`` and ``datamgmt-admin transfers list``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, literal, null, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import RSE, Distance, Request, RequestHistory, RSEAttribute
from datamgmt.core.db.types import utcnow
from datamgmt.core.keys import CASE_CHUNK, chunks
from datamgmt.exceptions import RequestNotFound

#: Live request states that mean "the tool was running it": their failure is recorded as FAILED.
_IN_TOOL = (RequestState.QUEUED, RequestState.SUBMITTING, RequestState.SUBMITTED)
#: States an attempt can end in that count as failures.
FAILED_STATES = (
    RequestState.FAILED,
    RequestState.LOST,
    RequestState.NO_SOURCES,
    RequestState.SUBMISSION_FAILED,
    RequestState.MISMATCH_SCHEME,
)
#: A request's tape times: staging its source, archiving at its destination.
TAPE_TIMES = (
    Request.staging_started_at,
    Request.staging_finished_at,
    Request.archive_started_at,
    Request.archive_finished_at,
)
_TAPE_TIME_NAMES = tuple(column.key for column in TAPE_TIMES)
_COPIED = (
    "request_type",
    "scope",
    "name",
    "dest_rse_id",
    "source_rse_id",
    "external_id",
    "external_host",
    "retry_count",
    "rule_id",
    "activity",
    "bytes",
    "dest_url",
    "transfertool",
    "account",
    "priority",
    "submitted_at",
    *_TAPE_TIME_NAMES,
)


def _copy(session: Session, where: Any, state: Any, err_msg: Any, transferred_at: Any) -> None:
    columns = [getattr(Request, name) for name in _COPIED]
    source = select(
        Request.id, *columns, Request.created_at, state, err_msg, transferred_at, literal(utcnow())
    ).where(where)
    target = ["request_id", *_COPIED, "requested_at", "state", "err_msg", "transferred_at", "created_at"]
    session.execute(insert(RequestHistory).from_select(target, source))


def record_done(session: Session, request_ids: Sequence[str]) -> None:
    """Keep the successful attempts of ``request_ids`` (already moved to DONE)."""
    done = literal(RequestState.DONE, Request.state.type)
    for part in chunks(list(request_ids)):
        _copy(session, Request.id.in_(part), done, null(), Request.transferred_at)


def record_failed(session: Session, reasons: Mapping[str, str], pending: Any) -> None:
    """Keep the failed attempts of the requests in ``reasons`` that ``pending`` still selects,
    *before* the retry clears their external id: a failure reported while the tool ran it is
    FAILED, one the finisher hands over keeps its own state (LOST, NO_SOURCES, …)."""
    failed = literal(RequestState.FAILED, Request.state.type)
    for part in chunks(list(reasons), CASE_CHUNK):
        state = case((Request.state.in_(_IN_TOOL), failed), else_=Request.state)
        err_msg = case({request_id: reasons[request_id] for request_id in part}, value=Request.id)
        _copy(session, Request.id.in_(part) & pending, state, err_msg, null())


# --- reading -------------------------------------------------------------------------------------
def _names(session: Session, rse_ids: set[str | None]) -> dict[str, str]:
    ids = sorted(i for i in rse_ids if i)
    return dict(session.execute(select(RSE.id, RSE.rse).where(RSE.id.in_(ids))).tuples().all()) if ids else {}


def history_dict(row: RequestHistory, names: Mapping[str, str]) -> dict[str, Any]:
    """An attempt with Rucio's field names (``id`` is the request's id, as in Rucio)."""
    return {
        "id": row.request_id,
        "attempt_id": row.id,
        "request_type": row.request_type.name,
        "scope": row.scope,
        "name": row.name,
        "dest_rse_id": row.dest_rse_id,
        "source_rse_id": row.source_rse_id,
        "dest_rse": names.get(row.dest_rse_id),
        "source_rse": names.get(row.source_rse_id or ""),
        "state": row.state.name,
        "external_id": row.external_id,
        "external_host": row.external_host,
        "retry_count": row.retry_count,
        "err_msg": row.err_msg,
        "rule_id": row.rule_id,
        "activity": row.activity,
        "bytes": row.bytes,
        "dest_url": row.dest_url,
        "transfertool": row.transfertool,
        "account": row.account,
        "priority": row.priority,
        "requested_at": row.requested_at,
        "submitted_at": row.submitted_at,
        "transferred_at": row.transferred_at,
        "created_at": row.created_at,
        "updated_at": row.created_at,
        "staging_started_at": row.staging_started_at,
        "staging_finished_at": row.staging_finished_at,
        "archive_started_at": row.archive_started_at,
        "archive_finished_at": row.archive_finished_at,
    }


def _dicts(session: Session, rows: Sequence[RequestHistory]) -> list[dict[str, Any]]:
    names = _names(session, {rse_id for r in rows for rse_id in (r.dest_rse_id, r.source_rse_id)})
    return [history_dict(row, names) for row in rows]


def history_by_did(session: Session, scope: str, name: str, dest_rse_id: str) -> dict[str, Any]:
    """The newest attempt of a file towards an RSE (Rucio's ``get_request_history_by_did``)."""
    row = session.scalars(
        select(RequestHistory)
        .where(
            RequestHistory.scope == scope,
            RequestHistory.name == name,
            RequestHistory.dest_rse_id == dest_rse_id,
        )
        .order_by(RequestHistory.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise RequestNotFound(f"No request found for DID {scope}:{name} at this RSE")
    return _dicts(session, [row])[0]


def list_history(
    session: Session,
    source_rse_ids: Sequence[str],
    dest_rse_ids: Sequence[str],
    states: Sequence[RequestState],
    offset: int = 0,
    limit: int | None = 100,
) -> Iterator[dict[str, Any]]:
    """Attempts between these RSEs ending in these states, oldest first (Rucio's ``list_requests_history``)."""
    query = (
        select(RequestHistory)
        .where(
            RequestHistory.source_rse_id.in_(source_rse_ids),
            RequestHistory.dest_rse_id.in_(dest_rse_ids),
            RequestHistory.state.in_(states),
        )
        .order_by(RequestHistory.id)
        .offset(offset)
        .limit(limit)
    )
    page = list(session.scalars(query))
    yield from _dicts(session, page)


def list_attempts(
    session: Session,
    *,
    rule_id: str | None = None,
    rse_id: str | None = None,
    failed: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest attempts, optionally of one rule, to or from one RSE, or failed only (newest first)."""
    query = select(RequestHistory).order_by(RequestHistory.id.desc()).limit(limit)
    if rule_id:
        query = query.where(RequestHistory.rule_id == rule_id)
    if rse_id:
        query = query.where((RequestHistory.dest_rse_id == rse_id) | (RequestHistory.source_rse_id == rse_id))
    if failed:
        query = query.where(RequestHistory.state.in_(FAILED_STATES))
    return _dicts(session, list(session.scalars(query)))


def lock_transfers(session: Session, rule_id: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per lock of a rule, ``(scope, name, rse_id)``: attempts so far, the last failure's error,
    and the live request's state, earliest next try (its retry back-off), the tool's phase
    (``transfer_phase``: STAGING, ARCHIVING ...) and its tape times: staging started and
    finished, archiving started and finished."""
    attempts = (
        select(
            RequestHistory.scope,
            RequestHistory.name,
            RequestHistory.dest_rse_id,
            func.count(),
            func.max(case((RequestHistory.state.in_(FAILED_STATES), RequestHistory.id))),
        )
        .where(RequestHistory.rule_id == rule_id)
        .group_by(RequestHistory.scope, RequestHistory.name, RequestHistory.dest_rse_id)
    )
    result: dict[tuple[str, str, str], dict[str, Any]] = {}
    last_failure: dict[int, tuple[str, str, str]] = {}
    for scope, name, rse_id, count, last_id in session.execute(attempts):
        result[(scope, name, rse_id)] = {
            "attempts": count,
            "last_error": None,
            "request_state": None,
            "next_retry": None,
        }
        if last_id is not None:
            last_failure[last_id] = (scope, name, rse_id)
    for part in chunks(list(last_failure)):
        for attempt_id, err_msg in session.execute(
            select(RequestHistory.id, RequestHistory.err_msg).where(RequestHistory.id.in_(part))
        ):
            result[last_failure[attempt_id]]["last_error"] = err_msg
    live = select(
        Request.scope,
        Request.name,
        Request.dest_rse_id,
        Request.state,
        Request.not_before,
        Request.external_state,
        *TAPE_TIMES,
    ).where(Request.rule_id == rule_id)
    for scope, name, rse_id, state, not_before, phase, *times in session.execute(live):
        entry = result.setdefault((scope, name, rse_id), {"attempts": 0, "last_error": None})
        entry["request_state"] = state.name
        entry["next_retry"] = not_before if state is RequestState.QUEUED else None
        entry["transfer_phase"] = phase
        entry.update(zip(_TAPE_TIME_NAMES, times, strict=True))
    return result


# --- metrics -------------------------------------------------------------------------------------
def request_metrics(
    session: Session,
    *,
    dest_rse_id: str | None = None,
    src_rse_id: str | None = None,
    activity: str | None = None,
    group_by_rse_attribute: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Queued files and bytes, and files and bytes done and failed in the last 1 h and 6 h, per
    source/destination pair (Rucio's ``get_request_metrics``), keyed ``"SRC:DST"``."""
    metrics: dict[tuple[str, str], dict[str, Any]] = {}

    def narrowed(query: Any, model: Any) -> Any:
        for column, value in (
            (model.dest_rse_id, dest_rse_id),
            (model.source_rse_id, src_rse_id),
            (model.activity, activity),
        ):
            if value:
                query = query.where(column == value)
        return query

    queued = narrowed(
        select(
            Request.source_rse_id,
            Request.dest_rse_id,
            Request.activity,
            func.count(),
            func.coalesce(func.sum(Request.bytes), 0),
        )
        .where(Request.state == RequestState.QUEUED, Request.source_rse_id.is_not(None))
        .group_by(Request.source_rse_id, Request.dest_rse_id, Request.activity),
        Request,
    )
    for src, dst, act, files, nbytes in session.execute(queued):
        entry = metrics.setdefault((src, dst), {})
        _add(entry, "files", "queued", act, int(files))
        _add(entry, "bytes", "queued", act, int(nbytes))
    now = utcnow()
    for hours in (1, 6):
        label = f"{hours}h"
        done = RequestHistory.state == RequestState.DONE
        totals = narrowed(
            select(
                RequestHistory.source_rse_id,
                RequestHistory.dest_rse_id,
                RequestHistory.activity,
                done,
                func.count(),
                func.coalesce(func.sum(RequestHistory.bytes), 0),
            )
            .where(
                RequestHistory.created_at >= now - timedelta(hours=hours),
                RequestHistory.source_rse_id.is_not(None),
                RequestHistory.state.in_((RequestState.DONE, *FAILED_STATES)),
            )
            .group_by(
                RequestHistory.source_rse_id, RequestHistory.dest_rse_id, RequestHistory.activity, done
            ),
            RequestHistory,
        )
        for src, dst, act, succeeded, files, nbytes in session.execute(totals):
            entry = metrics.setdefault((src, dst), {})
            kind = "done" if succeeded else "failed"
            _add_window(entry, "files", kind, act or "default", label, int(files))
            if succeeded:
                _add_window(entry, "bytes", kind, act or "default", label, int(nbytes))
    return _keyed(session, metrics, group_by_rse_attribute)


def _add(entry: dict[str, Any], unit: str, kind: str, activity: str, value: int) -> None:
    section = entry.setdefault(unit, {})
    section.setdefault(kind, {})[activity] = value
    section[f"{kind}-total"] = section.get(f"{kind}-total", 0) + value


def _add_window(entry: dict[str, Any], unit: str, kind: str, activity: str, label: str, value: int) -> None:
    section = entry.setdefault(unit, {})
    per_activity = section.setdefault(kind, {}).setdefault(activity, {})
    per_activity[label] = per_activity.get(label, 0) + value
    section[f"{kind}-total-{label}"] = section.get(f"{kind}-total-{label}", 0) + value


def _keyed(
    session: Session, metrics: dict[tuple[str, str], dict[str, Any]], attribute: str | None
) -> dict[str, dict[str, Any]]:
    if not metrics:
        return {}
    ids = {rse_id for pair in metrics for rse_id in pair}
    names = _names(session, set(ids))
    distances = {
        (src, dst): value
        for src, dst, value in session.execute(
            select(Distance.src_rse_id, Distance.dest_rse_id, Distance.distance).where(
                Distance.src_rse_id.in_(sorted(ids)), Distance.dest_rse_id.in_(sorted(ids))
            )
        )
    }
    groups: dict[str, str] = {}
    if attribute:
        groups = dict(
            session.execute(
                select(RSEAttribute.rse_id, RSEAttribute.value).where(
                    RSEAttribute.key == attribute, RSEAttribute.rse_id.in_(sorted(ids))
                )
            )
            .tuples()
            .all()
        )
    response: dict[str, dict[str, Any]] = {}
    for (src, dst), metric in metrics.items():
        metric.update(
            src_rse=names.get(src, src), dst_rse=names.get(dst, dst), distance=distances.get((src, dst))
        )
        if attribute:
            key = f"{groups.get(src, 'UNKNOWN')}:{groups.get(dst, 'UNKNOWN')}"
        else:
            key = f"{metric['src_rse']}:{metric['dst_rse']}"
        response[key] = metric
    return response


def failures_since(session: Session, since: datetime) -> int:
    """Failed attempts recorded since ``since`` (for the admin status)."""
    return (
        session.scalar(
            select(func.count()).where(
                RequestHistory.created_at >= since, RequestHistory.state.in_(FAILED_STATES)
            )
        )
        or 0
    )


def request_endpoints(session: Session, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What logs and metrics name about requests: DID, rule, destination and source RSE names and
    bytes (one query per chunk)."""
    rows: list[Any] = []
    for part in chunks(list(request_ids)):
        rows += session.execute(
            select(
                Request.id,
                Request.scope,
                Request.name,
                Request.rule_id,
                Request.dest_rse_id,
                Request.source_rse_id,
                Request.bytes,
            ).where(Request.id.in_(part))
        ).all()
    names = _names(session, {row.dest_rse_id for row in rows} | {row.source_rse_id for row in rows})
    return {
        row.id: {
            "did": f"{row.scope}:{row.name}",
            "rule": row.rule_id,
            "rse": names.get(row.dest_rse_id, row.dest_rse_id),
            "source_rse": names.get(row.source_rse_id or ""),
            "bytes": row.bytes,
        }
        for row in rows
    }
