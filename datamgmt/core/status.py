"""The operator's view at a glance (``datamgmt-admin status``, ``GET /status``).

Everything here is a handful of grouped counts, so it is cheap enough to poll: daemons from
their heartbeats, queue depths, rules by state, the stuck rules with their causes, RSE usage
against limits and transfer failures of the last hour.  Each section is one or two
queries whatever the catalogue's size (counts use the indexes the daemons' queues use).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RequestState, RuleState
from datamgmt.core.db.models import (
    RSE,
    Heartbeat,
    Message,
    Replica,
    Request,
    RSELimit,
    RSEUsage,
    Rule,
    UpdatedDID,
)
from datamgmt.core.db.types import utcnow
from datamgmt.core.request_history import failures_since

#: Stuck rules listed (oldest first); the count covers them all.
STUCK_SHOWN = 20
#: RSE limits shown next to usage.
LIMIT_NAMES = ("MinFreeSpace", "MaxBeingDeletedFiles")


def daemons(session: Session, timeout_seconds: int) -> dict[str, dict[str, Any]]:
    """Per daemon: instances alive (a beat within ``timeout_seconds``), all instances known and
    their hosts and last beats, newest first."""
    since = utcnow() - timedelta(seconds=timeout_seconds)
    result: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(
            Heartbeat.daemon, Heartbeat.worker_id, Heartbeat.hostname, Heartbeat.pid, Heartbeat.updated_at
        ).order_by(Heartbeat.daemon, Heartbeat.updated_at.desc())
    )
    for daemon, worker, host, pid, updated_at in rows:
        entry = result.setdefault(daemon, {"alive": 0, "last_beat": updated_at, "instances": []})
        alive = updated_at >= since
        entry["alive"] += alive
        entry["instances"].append(
            {"worker": worker, "host": host, "pid": pid, "last_beat": updated_at, "alive": alive}
        )
    return result


def queues(session: Session) -> dict[str, int]:
    """Work waiting for each daemon."""
    now = utcnow()
    by_state = dict(
        session.execute(select(Request.state, func.count()).group_by(Request.state)).tuples().all()
    )
    return {
        "dids_to_evaluate": session.scalar(select(func.count()).select_from(UpdatedDID)) or 0,
        "rules_to_inject": session.scalar(select(func.count()).where(Rule.state == RuleState.INJECT)) or 0,
        "requests_queued": by_state.get(RequestState.QUEUED, 0),
        "requests_submitting": by_state.get(RequestState.SUBMITTING, 0),
        "requests_submitted": by_state.get(RequestState.SUBMITTED, 0),
        "requests_to_finish": sum(
            by_state.get(state, 0)
            for state in (
                RequestState.LOST,
                RequestState.NO_SOURCES,
                RequestState.MISMATCH_SCHEME,
                RequestState.SUBMISSION_FAILED,
            )
        ),
        "replicas_to_delete": session.scalar(
            select(func.count()).where(
                Replica.lock_cnt == 0, Replica.tombstone.is_not(None), Replica.tombstone < now
            )
        )
        or 0,
        "messages_to_send": session.scalar(select(func.count()).select_from(Message)) or 0,
    }


def rules_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Rule.state, func.count()).group_by(Rule.state)).tuples().all()
    return {state.name: count for state, count in sorted(rows, key=lambda row: row[0].name)}


def stuck_rules(session: Session, limit: int = STUCK_SHOWN) -> list[dict[str, Any]]:
    """The longest-stuck rules with their error (the cause the conveyor or repairer recorded)."""
    rows = session.scalars(
        select(Rule).where(Rule.state == RuleState.STUCK).order_by(Rule.stuck_at, Rule.id).limit(limit)
    )
    return [
        {
            "id": r.id,
            "account": r.account,
            "did": f"{r.scope}:{r.name}",
            "rse_expression": r.rse_expression,
            "stuck_at": r.stuck_at,
            "locks_stuck_cnt": r.locks_stuck_cnt,
            "error": r.error,
        }
        for r in rows
    ]


def rse_usage(session: Session) -> list[dict[str, Any]]:
    """Per live RSE: bytes the catalogue holds (``rucio`` source), what storage reports (``storage``:
    used and free), and its limits; ``below_min_free`` when free space is under MinFreeSpace."""
    names = dict(session.execute(select(RSE.id, RSE.rse).where(RSE.deleted.is_(False))).tuples().all())
    usage: dict[str, dict[str, Any]] = {rse_id: {"rse": name} for rse_id, name in names.items()}
    for rse_id, source, used, free, files in session.execute(
        select(RSEUsage.rse_id, RSEUsage.source, RSEUsage.used, RSEUsage.free, RSEUsage.files)
    ):
        if rse_id in usage:
            usage[rse_id][source] = {"used": used, "free": free, "files": files}
    for rse_id, name, value in session.execute(
        select(RSELimit.rse_id, RSELimit.name, RSELimit.value).where(RSELimit.name.in_(LIMIT_NAMES))
    ):
        if rse_id in usage:
            usage[rse_id][name] = value
    for entry in usage.values():
        free = (entry.get("storage") or {}).get("free")
        minimum = entry.get("MinFreeSpace")
        entry["below_min_free"] = free is not None and minimum is not None and free < minimum
    return sorted(usage.values(), key=lambda entry: entry["rse"])


def status(session: Session, heartbeat_timeout: int) -> dict[str, Any]:
    """The whole report, as ``GET /status`` serves it."""
    rules = rules_by_state(session)
    return {
        "generated_at": utcnow(),
        "heartbeat_timeout": heartbeat_timeout,
        "daemons": daemons(session, heartbeat_timeout),
        "queues": queues(session),
        "rules": rules,
        "stuck_rules": {"count": rules.get(RuleState.STUCK.name, 0), "oldest": stuck_rules(session)},
        "transfer_failures_last_hour": failures_since(session, utcnow() - timedelta(hours=1)),
        "rses": rse_usage(session),
    }
