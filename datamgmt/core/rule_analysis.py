"""Why a rule is not OK (Rucio's ``examine_rule``): its error and, per STUCK lock, how often the
file was tried, how the last attempt ended, from where, and which copies could serve it now.

A fixed number of queries per rule, whatever its number of stuck locks.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import LockState, ReplicaState, RuleState
from datamgmt.core.db.models import RSE, Lock, Replica, Request, Rule
from datamgmt.core.keys import chunks, keys_in
from datamgmt.core.rse import rse_names_by_id
from datamgmt.exceptions import RuleNotFound

_NOT_STUCK = {
    RuleState.OK: "This replication rule is OK",
    RuleState.REPLICATING: "This replication rule is currently REPLICATING",
    RuleState.SUSPENDED: "This replication rule is SUSPENDED",
}


def examine_rule(session: Session, rule_id: str) -> dict[str, Any]:
    """``{"rule_error": …, "transfers": [one entry per STUCK lock]}`` with Rucio's fields."""
    rule = session.get(Rule, rule_id) if isinstance(rule_id, str) else None
    if rule is None:
        raise RuleNotFound(f"No rule with the id {rule_id} found")
    if rule.state in _NOT_STUCK:
        return {"rule_error": _NOT_STUCK[rule.state], "transfers": []}
    stuck = (
        session.execute(
            select(Lock.scope, Lock.name, Lock.rse_id)
            .where(Lock.rule_id == rule.id, Lock.state == LockState.STUCK)
            .order_by(Lock.scope, Lock.name, Lock.rse_id)
        )
        .tuples()
        .all()
    )
    attempts: dict[tuple[str, str, str], int] = {}
    last: dict[tuple[str, str, str], Any] = {}
    sources: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    names = rse_names_by_id(session)
    for part in chunks(list(stuck)):
        key = (Request.scope, Request.name, Request.dest_rse_id)
        for scope, name, rse_id, tries in session.execute(
            select(Request.scope, Request.name, Request.dest_rse_id, func.sum(Request.retry_count + 1))
            .where(keys_in(key, part))
            .group_by(Request.scope, Request.name, Request.dest_rse_id)
        ):
            attempts[(scope, name, rse_id)] = int(tries)
        for row in session.execute(
            select(
                Request.scope,
                Request.name,
                Request.dest_rse_id,
                Request.state,
                Request.source_rse_id,
                Request.created_at,
            )
            .where(keys_in(key, part))
            .order_by(Request.created_at)
        ):
            last[(row.scope, row.name, row.dest_rse_id)] = row  # ordered: the newest wins
        files = sorted({(scope, name) for scope, name, _ in part})
        for scope, name, rse_id, readable in session.execute(
            select(Replica.scope, Replica.name, Replica.rse_id, RSE.availability_read)
            .join(RSE, RSE.id == Replica.rse_id)
            .where(keys_in((Replica.scope, Replica.name), files), Replica.state == ReplicaState.AVAILABLE)
            .order_by(Replica.scope, Replica.name, Replica.rse_id)
        ):
            sources[(scope, name)].append((names.get(rse_id, rse_id), bool(readable)))
    transfers = []
    for scope, name, rse_id in stuck:
        request = last.get((scope, name, rse_id))
        transfers.append(
            {
                "scope": scope,
                "name": name,
                "rse_id": rse_id,
                "rse": names.get(rse_id),
                "attempts": attempts.get((scope, name, rse_id), 0),
                "last_error": None if request is None else request.state.name,
                "last_source": None
                if request is None or request.source_rse_id is None
                else names.get(request.source_rse_id),
                "sources": sources.get((scope, name), []),
                "last_time": None if request is None else request.created_at,
            }
        )
    return {"rule_error": rule.error, "transfers": transfers}
