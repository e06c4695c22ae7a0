"""The end of every fault run: let the daemons drain, then hold the catalogue to its invariants.

:func:`quiesce` waits (bounded) until nothing is due: no request in flight, no rule replicating,
no DID update for the judge, no counter update for abacus, no tombstoned unlocked replica for the
greedy reaper.  What is still due at the deadline is returned, so a test fails naming it.

Then ``datamgmt-admin check --storage`` runs as an operator runs it, and the FTS3 double's
records are read: a file FTS took twice fails the test like any violation of the checker.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import LockState, RequestState, RuleState
from datamgmt.core.db.models import (
    Lock,
    Replica,
    Request,
    Rule,
    UpdatedAccountCounter,
    UpdatedDID,
    UpdatedRSECounter,
)
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from tests.faults.cluster import BIN, ROOT, Cluster, submitted_twice
from tests.faults.workload import Stats, Workload

FINAL_REQUESTS = (RequestState.DONE, RequestState.FAILED)


def _count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


#: What keeps the service busy, each counted by one query.
PENDING: dict[str, Callable[[Session], int]] = {
    "requests in flight": lambda s: _count(s, Request, Request.state.not_in(FINAL_REQUESTS)),
    "rules replicating": lambda s: _count(s, Rule, Rule.state.in_((RuleState.REPLICATING, RuleState.INJECT))),
    "DID updates for the judge": lambda s: _count(s, UpdatedDID),
    "account counter updates": lambda s: _count(s, UpdatedAccountCounter),
    "RSE counter updates": lambda s: _count(s, UpdatedRSECounter),
    "replicas due for deletion": lambda s: _count(
        s, Replica, Replica.lock_cnt == 0, Replica.tombstone.is_not(None), Replica.tombstone < utcnow()
    ),
}


def pending(db_url: str) -> dict[str, int]:
    with transaction(db_url) as session:
        return {what: n for what, count in PENDING.items() if (n := count(session))}


def examples(db_url: str, limit: int = 5) -> list[str]:
    """A few of the rules, locks and requests still busy, to name them when a drain fails."""
    with transaction(db_url) as session:
        rules = session.execute(
            select(
                Rule.id,
                Rule.state,
                Rule.locks_ok_cnt,
                Rule.locks_replicating_cnt,
                Rule.locks_stuck_cnt,
                Rule.rse_expression,
                Rule.error,
            )
            .where(Rule.state.in_((RuleState.REPLICATING, RuleState.INJECT)))
            .limit(limit)
        ).all()
        locks = session.execute(
            select(Lock.rule_id, Lock.name, Lock.rse_id, Lock.state)
            .where(Lock.rule_id.in_([r.id for r in rules]), Lock.state != LockState.OK)
            .limit(limit)
        ).all()
        requests = session.execute(
            select(
                Request.id,
                Request.name,
                Request.dest_rse_id,
                Request.state,
                Request.retry_count,
                Request.external_id,
                Request.claimed_by,
            )
            .where(Request.state.not_in(FINAL_REQUESTS))
            .limit(limit)
        ).all()
    return (
        [f"rule {tuple(r)}" for r in rules]
        + [f"lock {tuple(x)}" for x in locks]
        + [f"request {tuple(x)}" for x in requests]
    )


def quiesce(db_url: str, seconds: float = 180, settle: float = 3.0) -> dict[str, int]:
    """Wait until nothing is pending twice in a row ``settle`` seconds apart; what is left at the deadline."""
    deadline = time.monotonic() + seconds
    left = pending(db_url)
    while time.monotonic() < deadline:
        if not left:
            time.sleep(settle)
            left = pending(db_url)
            if not left:
                return {}
        time.sleep(1)
        left = pending(db_url)
    return left


def checker_report(db_url: str, storage: bool = True) -> list[dict[str, Any]]:
    """``datamgmt-admin check [--storage] --json`` as an operator runs it: its violations, with
    a few example rows each.

    Exit 0 with no violations is clean; exit 1 lists them; anything else (the checker missing or
    crashing) is reported as a violation of its own, so a broken checker never passes a run.
    """
    argv = [
        str(BIN / "datamgmt-admin"),
        "check",
        "--json",
        "--db-url",
        db_url,
        *(["--storage"] if storage else []),
    ]
    env = {**os.environ, "DATAMGMT_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode not in (0, 1):
        return [_broken(f"checker failed ({result.returncode}): {result.stderr.strip()[-2000:]}")]
    violations = json.loads(result.stdout)["violations"]
    if result.returncode == 1 and not violations:
        return [_broken(f"checker exited 1 without violations: {result.stdout[-2000:]}")]
    return violations


def _broken(description: str) -> dict[str, Any]:
    return {"invariant": "checker", "count": 1, "description": description, "examples": []}


def render(violation: dict[str, Any]) -> str:
    return f"{violation['invariant']} ({violation['count']}): {violation['description']}: {violation['examples']}"


def check(db_url: str, storage: bool = True) -> list[str]:
    """One line per violation the checker finds (see :func:`checker_report`)."""
    return [render(v) for v in checker_report(db_url, storage)]


@dataclass
class Outcome:
    """Everything a fault run is judged on, printed at the end of each test."""

    left: dict[str, int]
    #: Example rows of what was left, when something was.
    stuck: list[str]
    violations: list[str]
    #: Request id → the FTS jobs that took it, for every request taken more than once.
    submitted_twice: dict[str, list[str]]
    dead_daemons: list[str]
    workload: Stats

    def report(self, title: str, **figures: object) -> str:
        stats = self.workload
        lines = [
            f"== {title}: " + " ".join(f"{k}={v}" for k, v in figures.items()),
            f"   operations done={sum(stats.done.values())} {dict(stats.done)} failed={dict(stats.failed)}",
            f"   errors seen (retried)={dict(stats.errors)} server 5xx={dict(stats.server_errors)}",
            f"   checker runs=1 violations={len(self.violations)} still pending={self.left} "
            f"FTS files submitted twice={len(self.submitted_twice)} daemons dead={self.dead_daemons}",
        ]
        text = "\n".join(lines)
        print(text, flush=True)
        return text

    def assert_clean(self) -> None:
        """Everything must hold, including that FTS took no file twice (named with its jobs)."""
        assert self.left == {}, f"still pending after the drain: {self.left}: {self.stuck}"
        assert self.violations == [], self.violations
        assert self.dead_daemons == [], f"daemons died: {self.dead_daemons}"
        assert not self.workload.failed, f"calls that never went through: {dict(self.workload.failed)}"
        some = dict(list(self.submitted_twice.items())[:3])
        assert not self.submitted_twice, (
            f"FTS took {len(self.submitted_twice)} requests twice; request → jobs: {some}"
        )


def finish(cluster: Cluster, workload: Workload, drain_seconds: float = 240) -> Outcome:
    """Stop the workload, let the daemons drain, then run the checker and read the double's records."""
    workload.stop()
    left = quiesce(cluster.db_url, drain_seconds)
    submissions = cluster.fts_submissions()
    return Outcome(
        left,
        examples(cluster.db_url) if left else [],
        check(cluster.db_url),
        submitted_twice(submissions),
        cluster.dead_daemons(),
        workload.stats,
    )
