"""Catalogue builders and invariant checks shared by the daemon integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from datamgmt.core import did, quota, replica, rse, scope
from datamgmt.core.db.constants import DIDReEvaluation, DIDType, LockState, RuleState
from datamgmt.core.db.models import AccountUsage, Lock, Replica, Request, Rule, UpdatedDID
from datamgmt.core.db.types import new_id, utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TARGETS = ("SITE-A", "SITE-B", "SITE-C")
SOURCE = "SITE-S"


def base(session: Session) -> None:
    """Scope ``data``, three target RSEs and one source RSE (after the ``root`` fixture)."""
    scope.add_scope(session, "data", "root")
    for name in (*TARGETS, SOURCE):
        rse.add_rse(session, name)
    session.commit()


def files_with_source(session: Session, prefix: str, count: int, size: int = 10) -> list[dict]:
    """``count`` files with one AVAILABLE replica on the source RSE (so rules make requests)."""
    files = [{"scope": "data", "name": f"{prefix}{i}", "bytes": size, "adler32": "0000000a"} for i in range(count)]
    did.add_files(session, files, "root")
    replica.add_replicas(session, SOURCE, files, "root")
    return files


def datasets(session: Session, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}{i}" for i in range(count)]
    did.add_collections(session, [{"scope": "data", "name": n, "type": "DATASET"} for n in names], "root")
    return names


def bulk_rules(session: Session, names: list[str], state: RuleState, expired: bool = False) -> list[str]:
    """Rules on empty datasets, inserted in bulk (the judge backlogs)."""
    ids = [new_id() for _ in names]
    expires = utcnow() - timedelta(minutes=1) if expired else None
    session.execute(insert(Rule), [
        {"id": rule_id, "account": "root", "scope": "data", "name": name, "did_type": DIDType.DATASET,
         "state": state, "rse_expression": "SITE-A", "copies": 1, "expires_at": expires,
         "locks_ok_cnt": 0, "locks_replicating_cnt": 0, "locks_stuck_cnt": 0}
        for rule_id, name in zip(ids, names, strict=True)
    ])
    return ids


def queue_updates(session: Session, names: list[str], per_did: int) -> None:
    session.execute(insert(UpdatedDID), [
        {"scope": "data", "name": name, "rule_evaluation_action": DIDReEvaluation.ATTACH}
        for name in names for _ in range(per_did)
    ])


def run_daemon(db_url: str, name: str, *args: str, lease_seconds: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "DATAMGMT_DATABASE_URL": db_url, "PYTHONPATH": ROOT}
    if lease_seconds is not None:
        env["DATAMGMT_DAEMONS_LEASE_SECONDS"] = str(lease_seconds)
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bin", "datamgmt-daemon"), name, *args],
        cwd=ROOT, env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def items_done(stderr: str) -> Counter[str]:
    """Claimed keys each finished item covered, from the daemon's JSON debug lines."""
    done: Counter[str] = Counter()
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["msg"] == "item done":
                done.update(str(key[0]) for key in record["keys"])
    return done


def check_rule_invariants(session: Session) -> None:
    """Rule counters = lock states, replica lock_cnt = locks, usage = locks, one request per replicating lock."""
    counters = {r.id: (r.locks_ok_cnt, r.locks_replicating_cnt, r.locks_stuck_cnt) for r in session.scalars(select(Rule))}
    states = Counter()
    for rule_id, state, n in session.execute(select(Lock.rule_id, Lock.state, func.count()).group_by(Lock.rule_id, Lock.state)):
        states[(rule_id, state)] = n
    for rule_id, (ok, replicating, stuck) in counters.items():
        assert (ok, replicating, stuck) == (
            states[(rule_id, LockState.OK)], states[(rule_id, LockState.REPLICATING)], states[(rule_id, LockState.STUCK)]
        ), rule_id
    locks_per_replica = Counter(
        {(s, n, r): c for s, n, r, c in session.execute(
            select(Lock.scope, Lock.name, Lock.rse_id, func.count()).group_by(Lock.scope, Lock.name, Lock.rse_id))}
    )
    for s, n, r, lock_cnt in session.execute(select(Replica.scope, Replica.name, Replica.rse_id, Replica.lock_cnt)):
        assert lock_cnt == locks_per_replica[(s, n, r)], (s, n, r)
    usage = {(u.account, u.rse_id): (u.files, u.bytes) for u in session.scalars(select(AccountUsage)) if u.files or u.bytes}
    assert usage == quota.recount_usage(session)
    replicating = session.scalar(select(func.count()).where(Lock.state == LockState.REPLICATING))
    distinct = select(Request.scope, Request.name, Request.dest_rse_id).distinct().subquery()
    requests = session.scalar(select(func.count()).select_from(distinct))
    assert requests == session.scalar(select(func.count()).select_from(Request)) == replicating

