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

from datamgmt.core import did, replica, rse, scope
from datamgmt.core.db.constants import DIDReEvaluation, DIDType, LockState, RuleState
from datamgmt.core.db.models import Lock, Request, Rule, UpdatedDID
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
    files = [
        {"scope": "data", "name": f"{prefix}{i}", "bytes": size, "adler32": "0000000a"} for i in range(count)
    ]
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
    session.execute(
        insert(Rule),
        [
            {
                "id": rule_id,
                "account": "root",
                "scope": "data",
                "name": name,
                "did_type": DIDType.DATASET,
                "state": state,
                "rse_expression": "SITE-A",
                "copies": 1,
                "expires_at": expires,
                "locks_ok_cnt": 0,
                "locks_replicating_cnt": 0,
                "locks_stuck_cnt": 0,
            }
            for rule_id, name in zip(ids, names, strict=True)
        ],
    )
    return ids


def queue_updates(session: Session, names: list[str], per_did: int) -> None:
    session.execute(
        insert(UpdatedDID),
        [
            {"scope": "data", "name": name, "rule_evaluation_action": DIDReEvaluation.ATTACH}
            for name in names
            for _ in range(per_did)
        ],
    )


def run_daemon(db_url: str, name: str, *args: str, lease_seconds: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "DATAMGMT_DATABASE_URL": db_url, "PYTHONPATH": ROOT}
    if lease_seconds is not None:
        env["DATAMGMT_DAEMONS_LEASE_SECONDS"] = str(lease_seconds)
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bin", "datamgmt-daemon"), name, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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


def one_request_per_replicating_lock(session: Session) -> None:
    """With no conveyor running, every REPLICATING lock has exactly one request and no replica two:
    a file evaluated twice by two instances would show as a second request."""
    replicating = session.scalar(select(func.count()).where(Lock.state == LockState.REPLICATING))
    distinct = select(Request.scope, Request.name, Request.dest_rse_id).distinct().subquery()
    requests = session.scalar(select(func.count()).select_from(distinct))
    assert requests == session.scalar(select(func.count()).select_from(Request)) == replicating
