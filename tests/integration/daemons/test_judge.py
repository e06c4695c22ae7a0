"""The judge daemons at scale, two instances at once, and killed mid-batch."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from datamgmt.core import did, did_content, rule
from datamgmt.core.db.constants import LockState, RuleState
from datamgmt.core.db.models import Content, Lock, Request, Rule, UpdatedDID
from datamgmt.core.db.session import transaction
from datamgmt.daemons.judge.evaluator import Evaluator
from tests.integration.daemons.catalogue import (
    TARGETS,
    base,
    bulk_rules,
    datasets,
    files_with_source,
    items_done,
    one_request_per_replicating_lock,
    queue_updates,
    run_daemon,
)
from tests.invariants import check_invariants

pytestmark = [pytest.mark.integration, pytest.mark.long]

ON_POSTGRESQL = os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql")
needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="DATAMGMT_TEST_DB_URL is unset: concurrent instances need PostgreSQL (SQLite has a single writer)",
)
BACKLOG = 10_000
#: Due items for two instances at once: 48 batches of :data:`SHARED_BATCH`, so both take part
#: and race for each claim, well past the second or two that one process may start before the
#: other.  More items are the same races for longer: 10^4 made the four tests take over four
#: minutes on PostgreSQL, and 3,000 (in batches of 100) still 2 to 6 minutes in CI, where they
#: share two CPUs with another test file.
SHARED_ITEMS = 1_200
SHARED_BATCH = 25


def count(session, *where, model=Lock) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_one_evaluator_pass_creates_exactly_the_locks_and_requests(session, root):
    base(session)
    did.add_collections(session, [{"scope": "data", "name": "ds", "type": "DATASET"}], "root")
    rule_ids = [
        rule.add_rule(session, [{"scope": "data", "name": "ds"}], "root", 1, target)[0] for target in TARGETS
    ]
    files = files_with_source(session, "f", BACKLOG)
    did_content.attach(session, "data", "ds", [{"scope": f["scope"], "name": f["name"]} for f in files])
    session.commit()

    assert Evaluator("one").run_once(100) == 1
    for rule_id in rule_ids:
        assert count(session, Lock.rule_id == rule_id, Lock.state == LockState.REPLICATING) == BACKLOG
        assert count(session, Request.rule_id == rule_id, model=Request) == BACKLOG
        assert session.get(Rule, rule_id).locks_replicating_cnt == BACKLOG
    assert count(session, model=UpdatedDID) == 0
    assert count(session, Content.rule_evaluation.is_(True), model=Content) == 0
    check_invariants(session)
    one_request_per_replicating_lock(session)


def _backlog(session, daemon: str) -> set[str]:
    """:data:`SHARED_ITEMS` due items for ``daemon``; returns the claimed keys that must each be
    processed once."""
    if daemon == "judge-evaluator":
        names = datasets(session, "ds", SHARED_ITEMS // 4)
        queue_updates(session, names, per_did=4)
        session.commit()
        return {str(i) for i in session.scalars(select(UpdatedDID.id))}
    names = datasets(session, "ds", SHARED_ITEMS)
    state = {"judge-repairer": RuleState.STUCK, "judge-injector": RuleState.INJECT}.get(daemon, RuleState.OK)
    ids = bulk_rules(session, names, state, expired=daemon == "judge-cleaner")
    session.commit()
    return set(ids)


@needs_postgresql
@pytest.mark.parametrize("daemon", ["judge-evaluator", "judge-repairer", "judge-cleaner", "judge-injector"])
def test_two_instances_process_each_item_exactly_once(db, session, root, daemon):
    base(session)
    expected = _backlog(session, daemon)
    workers = [
        run_daemon(db, daemon, "--run-once", "--batch-size", str(SHARED_BATCH), "--log-level", "debug")
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=900)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    per_worker = [items_done(out) for out in outputs]
    total = per_worker[0] + per_worker[1]
    assert set(total) == expected
    assert set(total.values()) == {1}
    assert all(per_worker), "both instances must have taken part"
    if daemon == "judge-cleaner":
        assert count(session, model=Rule) == 0
    elif daemon == "judge-injector":
        assert count(session, Rule.state == RuleState.INJECT, model=Rule) == 0
    elif daemon == "judge-evaluator":
        assert count(session, model=UpdatedDID) == 0


FILES_PER_DATASET = 300


def test_killed_evaluator_leaves_nothing_half_done(db, session, root):
    base(session)
    names = datasets(session, "ds", 40)
    for name in names:
        rule.add_rule(session, [{"scope": "data", "name": name}], "root", 1, "SITE-A")
        files = files_with_source(session, f"{name}-f", FILES_PER_DATASET)
        did_content.attach(session, "data", name, [{"scope": "data", "name": f["name"]} for f in files])
    session.commit()
    lease = 4
    victim = run_daemon(db, "judge-evaluator", "--batch-size", "40", lease_seconds=lease)
    deadline = time.monotonic() + 120
    # Kill as soon as the first dataset is done: each takes long enough that most are not.
    # Read-only polls read a snapshot without waiting for the evaluator's write lock.
    while time.monotonic() < deadline:
        with transaction(db, read_only=True) as poll:
            if count(poll, model=UpdatedDID) < 40:
                break
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    killed_at = time.monotonic()
    session.rollback()

    pending = set(session.scalars(select(UpdatedDID.name)))
    assert 0 < len(pending) < 40
    locks = Counter(session.scalars(select(Rule.name).join(Lock, Lock.rule_id == Rule.id)))
    for name in names:  # each dataset evaluated entirely or not at all
        assert locks[name] == (0 if name in pending else FILES_PER_DATASET), name
    check_invariants(session)
    one_request_per_replicating_lock(session)
    session.rollback()

    early = run_daemon(db, "judge-evaluator", "--run-once", lease_seconds=lease)
    early.communicate(timeout=120)
    session.rollback()
    if time.monotonic() - killed_at < lease - 1:  # the dead worker's leases still held the items
        assert set(session.scalars(select(UpdatedDID.name))) == pending
    session.rollback()
    time.sleep(max(0.0, lease + 0.5 - (time.monotonic() - killed_at)))
    finisher = run_daemon(db, "judge-evaluator", "--run-once", lease_seconds=lease)
    _, err = finisher.communicate(timeout=300)
    assert finisher.returncode == 0, err[-2000:]
    session.rollback()
    assert count(session, model=UpdatedDID) == 0
    assert count(session) == 40 * FILES_PER_DATASET
    check_invariants(session)
    one_request_per_replicating_lock(session)
