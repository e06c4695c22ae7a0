"""The invariant checker (``datamgmt.core.invariants``) and ``datamgmt-admin check``.

A consistent catalogue (rules OK, REPLICATING and STUCK, usage partly still queued for abacus)
passes; then each invariant is broken directly in the database, one at a time, and must be
reported with its count and example rows, which proves each check can fail.  Corruptions stay
uncommitted and the checker reads through the same session, so the rest of the suite never
sees them (foreign keys are switched off for that transaction where a corruption needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core import invariants
from datamgmt.core import rule as rules
from datamgmt.core.accounting import RSE_FOLD, fold_counters
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import (
    AccountUsage,
    Lock,
    Replica,
    Request,
    Rule,
    Source,
    UpdatedAccountCounter,
    UpdatedRSECounter,
)
from datamgmt.core.db.session import is_postgresql
from datamgmt.core.db.types import utcnow
from datamgmt.core.invariants import check_catalogue
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse
from tests.unit.rules.conftest import Catalogue


class Scene:
    """Three rules: OK on R1, REPLICATING (a QUEUED request) to R2, STUCK on R3 (no source)."""

    def __init__(self, cat: Catalogue) -> None:
        session = cat.session
        self.cat = cat
        self.session = session
        self.files = cat.files(2, on=("R1",))
        dataset = [cat.dataset(self.files)]
        self.ok_rule = self._rule(dataset, "R1")
        self.replicating_rule = self._rule(dataset, "R2")
        self.stuck_rule = self._rule(cat.files(1, on=()), "R3")
        session.commit()
        self.request = session.scalars(
            select(Request).where(Request.rule_id == self.replicating_rule)
        ).first()

    def _rule(self, dids: list[dict], expression: str) -> str:
        (rule_id,) = rules.add_rule(self.session, dids, "jdoe", 1, expression, grouping="NONE")
        return rule_id

    def locked_replica(self, rse: str = "R1") -> dict:
        return {"scope": "mock", "name": self.files[0]["name"], "rse_id": self.cat.rse_ids[rse]}


def _replica(scene: Scene, rse: str = "R1"):  # type: ignore[no-untyped-def]
    key = scene.locked_replica(rse)
    return (Replica.scope == key["scope"]) & (Replica.name == key["name"]) & (Replica.rse_id == key["rse_id"])


def _without_foreign_keys(session: Session) -> None:
    """Let this (never committed) transaction break foreign keys, as a damaged catalogue would."""
    if is_postgresql(session):
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))


def _drop_rule(scene: Scene) -> None:
    _without_foreign_keys(scene.session)
    scene.session.execute(delete(Rule).where(Rule.id == scene.ok_rule))


def _drop_request(scene: Scene) -> None:
    scene.session.execute(delete(Source).where(Source.request_id == scene.request.id))
    scene.session.execute(delete(Request).where(Request.id == scene.request.id))


def _orphan_request(scene: Scene) -> None:
    file = scene.cat.files(1, on=("R1",))[0]
    scene.session.execute(
        insert(Request).values(
            id="f" * 32,
            scope="mock",
            name=file["name"],
            dest_rse_id=scene.cat.rse_ids["R4"],
            rule_id="e" * 32,
        )
    )


def _shared_path(scene: Scene) -> None:
    session = scene.session
    add_rse(session, "TAPE1", deterministic=False)
    files = [
        {"scope": "mock", "name": f"nd_{i}", "bytes": 1, "adler32": "00000001", "path": f"/p/{i}"}
        for i in range(2)
    ]
    add_replicas(session, "TAPE1", files, "jdoe")
    try:
        with session.begin_nested():
            taken = session.scalar(select(Replica.path).where(Replica.name == "nd_0"))
            session.execute(update(Replica).where(Replica.name == "nd_1").values(path=taken))
    except IntegrityError:
        pytest.skip("the database itself refuses two replicas with one path on an RSE")


CORRUPTIONS: dict[str, Callable[[Scene], None]] = {
    "replica_lock_cnt": lambda s: s.session.execute(
        update(Replica).where(_replica(s)).values(lock_cnt=Replica.lock_cnt + 1)
    ),
    "lock_without_replica": lambda s: s.session.execute(delete(Replica).where(_replica(s))),
    "lock_without_rule": _drop_rule,
    "rule_counters": lambda s: s.session.execute(
        update(Rule).where(Rule.id == s.ok_rule).values(locks_ok_cnt=Rule.locks_ok_cnt + 1)
    ),
    "rule_state": lambda s: s.session.execute(
        update(Rule).where(Rule.id == s.ok_rule).values(state=RuleState.REPLICATING)
    ),
    "ok_lock_replica": lambda s: s.session.execute(
        update(Replica).where(_replica(s)).values(state=ReplicaState.BAD)
    ),
    "replicating_lock_request": _drop_request,
    "request_rule_gone": _orphan_request,
    "account_usage": lambda s: s.session.execute(
        update(AccountUsage).where(AccountUsage.account == "jdoe").values(bytes=AccountUsage.bytes + 1)
    ),
    "rse_usage": lambda s: s.session.execute(
        insert(UpdatedRSECounter).values(rse_id=s.cat.rse_ids["R1"], files=1, bytes=0)
    ),
    "locked_replica_tombstone": lambda s: s.session.execute(
        update(Replica).where(_replica(s)).values(tombstone=utcnow())
    ),
    "shared_path": _shared_path,
    "deterministic_path": lambda s: s.session.execute(
        update(Replica).where(_replica(s)).values(path="mock/elsewhere")
    ),
}


@pytest.fixture
def scene(cat: Catalogue) -> Scene:
    return Scene(cat)


def test_consistent_catalogue_passes(scene: Scene) -> None:
    rule_states = {r.id: r.state for r in scene.session.scalars(select(Rule))}
    assert sorted(s.name for s in rule_states.values()) == ["OK", "REPLICATING", "STUCK"]
    assert scene.session.scalar(select(UpdatedRSECounter.id).limit(1)) is not None, (
        "RSE usage is still queued"
    )
    report = check_catalogue(scene.session)
    assert report.ok, report.render()
    assert set(CORRUPTIONS) <= set(report.checked)


def test_usage_counts_after_abacus_and_with_queued_account_deltas(scene: Scene) -> None:
    """Folded or still queued, usage is the same: the check adds the queues to the counters."""
    session = scene.session
    fold_counters(session, RSE_FOLD, 1000)
    usage = session.scalars(select(AccountUsage).where(AccountUsage.account == "jdoe")).first()
    session.execute(
        insert(UpdatedAccountCounter).values(
            account=usage.account, rse_id=usage.rse_id, files=usage.files, bytes=usage.bytes
        )
    )
    usage.files, usage.bytes = 0, 0
    session.flush()
    assert session.scalar(select(UpdatedRSECounter.id).limit(1)) is None
    assert check_catalogue(session).ok, check_catalogue(session).render()


@pytest.mark.parametrize("invariant", sorted(CORRUPTIONS))
def test_each_corruption_is_reported(scene: Scene, invariant: str) -> None:
    CORRUPTIONS[invariant](scene)
    scene.session.flush()
    report = check_catalogue(scene.session, examples=2)
    found = {v.invariant: v for v in report.violations}
    assert invariant in found, report.render()
    violation = found[invariant]
    assert violation.count >= 1 and 1 <= len(violation.examples) <= 2
    assert f"VIOLATED {invariant}" in report.render()


def test_examples_are_limited_but_counted_in_full(scene: Scene) -> None:
    scene.session.execute(update(Replica).values(lock_cnt=Replica.lock_cnt + 7))
    total = len(scene.session.scalars(select(Replica.name)).all())
    (violation,) = check_catalogue(scene.session, examples=1).violations
    assert violation.invariant == "replica_lock_cnt"
    assert (violation.count, len(violation.examples)) == (total, 1)
    assert violation.examples[0]["lock_cnt"] == violation.examples[0]["locks"] + 7


def test_request_timeouts(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """QUEUED past a day, or SUBMITTED past six hours (both configurable), is a violation."""
    session, now = scene.session, utcnow()
    assert check_catalogue(session, now=now + timedelta(hours=23)).ok
    late = {v.invariant for v in check_catalogue(session, now=now + timedelta(hours=25)).violations}
    assert late == {"request_queued_timeout"}
    session.execute(
        update(Request)
        .where(Request.id == scene.request.id)
        .values(state=RequestState.SUBMITTED, submitted_at=now, external_id="job")
    )
    assert check_catalogue(session, now=now + timedelta(hours=5)).ok
    late = {v.invariant for v in check_catalogue(session, now=now + timedelta(hours=7)).violations}
    assert late == {"request_submitted_timeout"}
    monkeypatch.setenv("DATAMGMT_CONVEYOR_SUBMITTED_TIMEOUT", "60")
    reset_config()
    try:
        late = {v.invariant for v in check_catalogue(session, now=now + timedelta(minutes=2)).violations}
    finally:
        monkeypatch.undo()
        reset_config()
    assert late == {"request_submitted_timeout"}


def test_frozen_rules_keep_their_state(scene: Scene) -> None:
    scene.session.execute(update(Rule).where(Rule.id == scene.stuck_rule).values(state=RuleState.SUSPENDED))
    violations = {v.invariant for v in check_catalogue(scene.session).violations}
    assert "rule_state" not in violations


def test_stuck_rule_needs_no_request(scene: Scene) -> None:
    """A REPLICATING lock of a STUCK rule waits for the repairer: no request needed meanwhile."""
    session = scene.session
    first, second = scene.files
    session.execute(
        update(Lock)
        .where(Lock.rule_id == scene.replicating_rule, Lock.name == first["name"])
        .values(state=LockState.STUCK)
    )
    session.execute(
        update(Rule)
        .where(Rule.id == scene.replicating_rule)
        .values(state=RuleState.STUCK, locks_replicating_cnt=1, locks_stuck_cnt=1)
    )
    orphaned = session.scalars(select(Request.id).where(Request.name == second["name"])).one()
    session.execute(delete(Source).where(Source.request_id == orphaned))
    session.execute(delete(Request).where(Request.id == orphaned))
    report = check_catalogue(session)
    assert report.ok, report.render()


def test_the_checks_join_by_scanning_on_postgresql(cat, session):
    # Right after a bulk load the planner, without statistics yet, probed the replicas of each
    # lock's RSE one by one for lock_without_replica: 30 s for 30,000 locks instead of 0.1 s.
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner setting")
    rules.add_rule(session, [cat.dataset(cat.files(20, on=("R1",)))], "jdoe", 1, "R1")
    session.commit()
    invariants.join_by_scanning(session)
    now = utcnow()
    for invariant in invariants.INVARIANTS:
        query = invariant.violations(now)
        plan = "\n".join(row[0] for row in session.execute(text("EXPLAIN " + _compiled(session, query))))
        assert "Nested Loop" not in plan, f"{invariant.name}:\n{plan}"
    session.commit()
    assert session.scalar(text("SHOW enable_nestloop")) == "on", (
        "the setting ends with the check's transaction"
    )


def _compiled(session: Session, query: object) -> str:
    return str(query.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
