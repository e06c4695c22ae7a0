"""delete, update, move, approval, explain, quotas, the judge and the conveyor's reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from datamgmt.core import deletion, did_content, quota, rule_update
from datamgmt.core import rule as rules
from datamgmt.core.db.constants import OBSOLETE, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import Message, Request
from datamgmt.core.db.types import utcnow
from datamgmt.core.request import request_done, request_failed
from datamgmt.core.workqueue import EXPIRED_RULES, STUCK_RULES
from datamgmt.exceptions import (
    InputValidationError,
    InsufficientAccountLimit,
    RuleLocked,
    RuleNotFound,
    UnsupportedOperation,
)
from tests.invariants import check_invariants
from tests.unit.rules.conftest import due


def test_delete_rule_tombstones_and_releases_quota(cat, session):
    f = cat.files(1, size=10, on=("R1",))[0]
    (keep,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    (other,) = rules.add_rule(session, [f], "jdoe", 1, "R1|R2")
    assert cat.replica(f, "R1").lock_cnt == 2
    rule_update.delete_rule(session, other)
    assert cat.replica(f, "R1").lock_cnt == 1 and cat.replica(f, "R1").tombstone is None
    before = utcnow()
    rule_update.delete_rule(session, keep)
    replica = cat.replica(f, "R1")
    assert replica.lock_cnt == 0 and replica.tombstone >= before - timedelta(seconds=1)
    assert quota.get_local_account_usage(session, "jdoe", "R1")[0]["bytes"] == 0
    check_invariants(session)


def test_delete_with_purge_and_cancels_queued_requests(cat, session):
    f = cat.files(1, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1", purge_replicas=True)
    assert session.scalar(select(Request.state)) == RequestState.QUEUED
    rule_update.delete_rule(session, rid)
    replica = cat.replica(f, "R1")
    assert replica.tombstone == OBSOLETE and replica.state == ReplicaState.UNAVAILABLE
    assert session.scalar(select(Request.id)) is None
    check_invariants(session)


def test_delete_keeps_a_queued_request_whose_job_may_still_arrive(cat, session):
    """A request QUEUED again under its job's id (FTS did not know the job: its submission may
    still be on the way) stays when its rule goes, and with it the replica row: deleting both
    would let the late job land a copy on a path no row names, a dark file nothing deletes."""
    f = cat.files(1, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1", purge_replicas=True)
    request = session.scalar(select(Request))
    request.external_id, request.external_key = "job-1", "key-1"
    session.flush()
    rule_update.delete_rule(session, rid)
    assert session.scalar(select(Request.external_id).where(Request.state == RequestState.QUEUED)) == "job-1"
    assert not deletion.claim_for_deletion(session, cat.rse_ids["R1"], "reaper", None, 10, 60)
    check_invariants(session)
    assert request_done(session, request.id)
    replica = cat.replica(f, "R1")
    assert replica.state == ReplicaState.AVAILABLE and replica.tombstone == OBSOLETE
    assert deletion.claim_for_deletion(session, cat.rse_ids["R1"], "reaper", None, 10, 60)
    check_invariants(session)


def test_locked_rule_needs_admin_force(cat, session):
    (rid,) = rules.add_rule(session, [cat.files(1)[0]], "jdoe", 1, "R1", locked=True)
    with pytest.raises(RuleLocked):
        rule_update.delete_rule(session, rid)
    with pytest.raises(RuleLocked):
        rule_update.delete_rule(session, rid, issuer="jdoe", force=True)
    rule_update.delete_rule(session, rid, issuer="root", force=True)
    assert not list(rules.list_rules(session, {"id": rid}))


def test_update_options_and_account_moves_quota(cat, session):
    from datamgmt.core.account import add_account

    add_account(session, "jane", "USER")
    f = cat.files(1, size=7, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    rule_update.update_rule(
        session,
        rid,
        {
            "lifetime": 10,
            "locked": True,
            "comment": "c",
            "priority": 1,
            "activity": "Express",
            "account": "jane",
        },
    )
    rule = rules.get_rule(session, rid)
    assert rule["locked"] and rule["comments"] == "c" and rule["account"] == "jane" and rule["expires_at"]
    request = session.scalar(select(Request))
    assert (request.priority, request.activity) == (1, "Express")
    assert quota.recount_usage(session) == {("jane", cat.rse_ids["R1"]): (1, 7)}
    check_invariants(session)


def test_suspend_freezes_a_rule_and_stuck_resumes_it(cat, session):
    """``rucio rule update --suspend`` then ``--stuck``: suspended, the rule is left alone by the
    judge while its transfer runs on; the copy turns its lock OK but the rule stays SUSPENDED;
    set STUCK, it takes the state its locks give it again."""
    files = cat.files(2, on=("R3",))
    (rid,) = rules.add_rule(session, [cat.dataset(files)], "jdoe", 1, "R1")
    rule_update.update_rule(session, rid, {"state": "SUSPENDED"})
    assert cat.rule(rid).state == RuleState.SUSPENDED
    assert rules.repair_rule(session, rid) == RuleState.SUSPENDED
    first, second = session.scalars(select(Request).order_by(Request.name)).all()
    assert {first.state, second.state} == {RequestState.QUEUED}  # its transfers keep running
    first.state = RequestState.SUBMITTED
    session.flush()
    assert request_done(session, first.id)
    rule = cat.rule(rid)
    assert (rule.state, rule.locks_ok_cnt, rule.locks_replicating_cnt) == (RuleState.SUSPENDED, 1, 1)
    check_invariants(session)

    rule_update.update_rule(session, rid, {"state": "stuck"})
    rule = cat.rule(rid)
    assert (rule.state, rule.locks_ok_cnt, rule.locks_replicating_cnt, rule.locks_stuck_cnt) == (
        RuleState.STUCK,
        1,
        0,
        1,
    )
    assert rule.stuck_at is not None and rule.error == "set STUCK by an update of the rule"
    check_invariants(session)
    # the repairer finds the copy still in flight: the lock replicates again, with no second request
    assert rules.repair_rule(session, rid) == RuleState.REPLICATING
    assert session.scalars(select(Request.id).where(Request.name == second.name)).all() == [second.id]
    check_invariants(session)


def test_files_attached_while_suspended_are_locked_when_resumed(cat, session):
    """The judge leaves a suspended rule alone, files attached meanwhile too; set STUCK, the rule
    places them: without it they would stay unprotected by the rule it was resumed."""
    first = cat.files(1, on=("R1",))
    ds = cat.dataset(first)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1")
    rule_update.update_rule(session, rid, {"state": "SUSPENDED"})
    later = cat.files(1, on=("R1",))
    did_content.attach(session, "mock", ds["name"], later)
    rules.evaluate_did_changes(session, "mock", ds["name"])
    assert len(cat.locks(rid)) == 1  # frozen: not evaluated
    rule_update.update_rule(session, rid, {"state": "STUCK"})
    assert len(cat.locks(rid)) == 2
    rule = cat.rule(rid)
    assert (rule.state, rule.locks_ok_cnt) == (RuleState.OK, 2)
    check_invariants(session)


def test_stuck_on_a_rule_with_every_lock_ok_leaves_it_ok(cat, session):
    f = cat.files(1, on=("R1",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    rule_update.update_rule(session, rid, {"state": "SUSPENDED"})
    rule_update.update_rule(session, rid, {"state": "STUCK"})
    rule = cat.rule(rid)
    assert (rule.state, rule.error, rule.stuck_at) == (RuleState.OK, None, None)
    check_invariants(session)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"state": "OK"}, InputValidationError),
        ({"state": 3}, InputValidationError),
        ({"state": "STUCK", "cancel_requests": True}, UnsupportedOperation),
    ],
)
def test_state_updates_refused_change_nothing(cat, session, options, error):
    f = cat.files(1, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    with pytest.raises(error):
        rule_update.update_rule(session, rid, options)
    assert cat.rule(rid).state == RuleState.REPLICATING
    check_invariants(session)


def test_a_rule_waiting_for_approval_cannot_be_suspended(cat, session):
    f = cat.files(1, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1", ask_approval=True)
    assert cat.rule(rid).state == RuleState.WAITING_APPROVAL
    with pytest.raises(UnsupportedOperation):
        rule_update.update_rule(session, rid, {"state": "SUSPENDED"})
    assert cat.rule(rid).state == RuleState.WAITING_APPROVAL


def test_child_rule_replaces_its_parent_once_ok(cat, session):
    """Rucio's ``child_rule_id``: the parent goes when its child on the same DID is OK, as in a
    move; set on an OK child it goes at once; None dissolves the relationship."""
    f = cat.files(1, on=("R3",))[0]
    (parent,) = rules.add_rule(session, [f], "jdoe", 1, "R1", lifetime=3600)
    (child,) = rules.add_rule(session, [f], "jdoe", 1, "R2")
    rule_update.update_rule(session, parent, {"child_rule_id": child})
    assert cat.rule(parent).child_rule_id == child
    rule_update.update_rule(session, parent, {"child_rule_id": None})
    assert (cat.rule(parent).child_rule_id, cat.rule(parent).expires_at) == (None, None)

    rule_update.update_rule(session, parent, {"child_rule_id": child})
    request = session.scalar(select(Request).where(Request.rule_id == child))
    request.state = RequestState.SUBMITTED
    session.flush()
    assert request_done(session, request.id)
    assert cat.rule(child).state == RuleState.OK and cat.rule(parent) is None
    check_invariants(session)

    (other,) = rules.add_rule(session, [f], "jdoe", 1, "R3")  # the data is there: OK at once
    rule_update.update_rule(session, other, {"child_rule_id": child})
    assert cat.rule(other) is None
    check_invariants(session)


def test_child_rule_refusals_change_nothing(cat, session):
    f, g = cat.files(2, on=("R3",))
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    (elsewhere,) = rules.add_rule(session, [g], "jdoe", 1, "R1")
    for child in (rule_id, elsewhere, None):
        with pytest.raises(InputValidationError):
            rule_update.update_rule(session, rule_id, {"child_rule_id": child})
    with pytest.raises(RuleNotFound):
        rule_update.update_rule(session, rule_id, {"child_rule_id": "0" * 32})
    assert cat.rule(rule_id).child_rule_id is None
    check_invariants(session)


def test_move_creates_child_and_removes_parent_when_ok(cat, session):
    f = cat.files(1, on=("R1", "R2"))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    child = rule_update.update_rule(session, rid, {"rse_expression": "R2"})
    assert cat.rule(child).state == RuleState.OK
    assert cat.rule(rid) is None
    check_invariants(session)


def test_move_waits_for_child_transfer(cat, session):
    f = cat.files(1, on=("R1",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    child = rule_update.move_rule(session, rid, "R2")
    assert cat.rule(rid).child_rule_id == child
    with pytest.raises(UnsupportedOperation):
        rule_update.delete_rule(session, rid)
    request = session.scalar(select(Request))
    request.state = RequestState.SUBMITTED
    session.flush()
    assert request_done(session, request.id)
    assert cat.rule(child).state == RuleState.OK and cat.rule(rid) is None
    assert cat.replica(f, "R1").lock_cnt == 0
    check_invariants(session)


def test_approval(cat, session):
    f = cat.files(1, on=("R3",))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1", ask_approval=True)
    assert cat.rule(rid).state == RuleState.WAITING_APPROVAL and not cat.locks(rid)
    rules.approve_rule(session, rid)
    assert cat.rule(rid).state == RuleState.INJECT and cat.rule(rid).ignore_account_limit
    rules.apply_injected_rule(session, rid)
    assert cat.locks(rid)
    g = cat.files(1)[0]
    (denied,) = rules.add_rule(session, [g], "jdoe", 1, "R1", ask_approval=True)
    rules.deny_rule(session, denied)
    assert cat.rule(denied) is None
    with pytest.raises(UnsupportedOperation):
        rules.approve_rule(session, rid)


def test_explain_writes_nothing(cat, session):
    quota.set_local_account_limit(session, "jdoe", "R1", 1000)
    here = cat.files(2, size=100, on=("R1",))
    there = cat.files(3, size=50, on=("R3",))
    ds = cat.dataset(here + there)
    session.commit()
    (plan,) = rules.explain_rule(session, [ds], "jdoe", 1, "R1")
    assert plan["groups"] == [{"scope": "mock", "name": ds["name"], "rses": ["R1"]}]
    assert plan["files_in_place"] == 2 and plan["bytes_to_transfer"] == {"R1": 150}
    assert plan["quota_after"] == {"R1": 1000 - 350} and plan["locks"] == 5
    assert not session.new and not session.dirty
    assert not list(rules.list_rules(session))


def test_local_quota_exhaustion(cat, session):
    quota.set_local_account_limit(session, "jdoe", "R1", 150)
    quota.delete_local_account_limit(session, "jdoe", "R2")
    rules.add_rule(session, [cat.files(1, size=100, on=("R3",))[0]], "jdoe", 1, "R1")
    with pytest.raises(InsufficientAccountLimit):
        rules.add_rule(session, [cat.files(1, size=100, on=("R3",))[0]], "jdoe", 1, "R1")
    with pytest.raises(InsufficientAccountLimit):  # a missing limit is 0
        rules.add_rule(session, [cat.files(1, size=1, on=("R3",))[0]], "jdoe", 1, "R2")
    usage = quota.get_local_account_usage(session, "jdoe", "R1")[0]
    assert (usage["bytes"], usage["bytes_limit"], usage["bytes_remaining"]) == (100, 150, 50)


def test_global_quota_via_expression(cat, session):
    quota.set_global_account_limit(session, "jdoe", "T1", 250)
    ds = cat.dataset(cat.files(2, size=100, on=("R3",)))
    rules.add_rule(session, [ds], "jdoe", 1, "T1")  # 200 of 250
    with pytest.raises(InsufficientAccountLimit):
        rules.add_rule(session, [cat.dataset(cat.files(1, size=100, on=("R3",)))], "jdoe", 1, "T1")
    f = cat.files(2, size=40, on=("R3",))
    with pytest.raises(InsufficientAccountLimit):  # 2 x 40 over two T1 RSEs: 80 > 50 left in total
        rules.add_rule(session, [cat.dataset(f)], "jdoe", 2, "T1")
    rules.add_rule(session, [cat.dataset(cat.files(1, size=100, on=("R3",)))], "jdoe", 1, "T2")
    (usage,) = quota.get_global_account_usage(session, "jdoe")
    assert (usage["rse_expression"], usage["bytes"], usage["bytes_remaining"]) == ("T1", 200, 50)


def test_admin_is_exempt(cat, session):
    quota.delete_local_account_limit(session, "root", "R1")
    (rid,) = rules.add_rule(session, [cat.files(1, on=("R3",))[0]], "root", 1, "R1")
    assert cat.locks(rid)


def test_request_done_and_failed(cat, session):
    files = cat.files(2, on=("R3", "R4"))
    ds = cat.dataset(files)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1", notify="Y")
    first, second = session.scalars(select(Request).order_by(Request.name)).all()
    for req in (first, second):
        req.state, req.source_rse_id = RequestState.SUBMITTED, cat.rse_ids["R3"]
    session.flush()
    assert request_done(session, first.id) and not request_done(session, first.id)
    assert cat.replica(files[0], "R1").state == ReplicaState.AVAILABLE
    assert request_failed(session, second.id, "boom", retry_limit=1) == RequestState.QUEUED
    assert request_failed(session, second.id, "boom", retry_limit=1) == RequestState.QUEUED  # idempotent
    second.state = RequestState.SUBMITTED
    session.flush()
    assert request_failed(session, second.id, "boom again", retry_limit=1) == RequestState.FAILED
    rule = cat.rule(rid)
    assert rule.state == RuleState.STUCK and rule.error == "boom again" and rule.locks_stuck_cnt == 1
    assert cat.replica(files[1], "R1").state == ReplicaState.UNAVAILABLE
    request_failed(session, second.id, "boom again", retry_limit=1)
    check_invariants(session)
    events = [m.event_type for m in session.scalars(select(Message))]
    assert events.count("transfer-failed") == 1 and events.count("transfer-done") == 1
    # the repairer retries on the same RSE: a source exists
    assert rules.repair_rule(session, rid) == RuleState.REPLICATING
    check_invariants(session)


def test_repair_moves_locks_off_a_dropped_rse_and_suspends_when_old(cat, session):
    f = cat.files(1, on=())[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "T1", grouping="NONE")
    (first,) = cat.locks(rid)[(f["scope"], f["name"])]
    assert cat.rule(rid).state == RuleState.STUCK
    from datamgmt.core.replica import add_replicas

    add_replicas(
        session, "R3", [{"scope": "mock", "name": f["name"], "bytes": 100, "adler32": "0cc737eb"}], "jdoe"
    )
    from datamgmt.core.rse import update_rse

    update_rse(session, first, {"availability_write": False})
    session.commit()
    assert rules.repair_rule(session, rid) == RuleState.REPLICATING
    (moved,) = cat.locks(rid)[(f["scope"], f["name"])]
    assert moved != first
    check_invariants(session)
    g = cat.files(1, on=())[0]
    (stuck,) = rules.add_rule(session, [g], "jdoe", 1, "R3")
    cat.rule(stuck).stuck_at = utcnow() - timedelta(days=30)
    session.flush()
    assert due(session, STUCK_RULES) == [stuck]
    assert rules.repair_rule(session, stuck) == RuleState.SUSPENDED


def test_evaluate_attach_and_detach(cat, session):
    first = cat.files(2, on=("R3",))
    ds = cat.dataset(first)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 2, "T1")
    rses = cat.locks(rid)[(first[0]["scope"], first[0]["name"])]
    more = cat.files(2, on=("R3",))
    did_content.attach(session, "mock", ds["name"], more)
    cnt = cat.container([ds])
    (crid,) = rules.add_rule(session, [cnt], "jdoe", 1, "R3")
    assert rules.evaluate_did_changes(session, "mock", ds["name"]) == 2
    locks = cat.locks(rid)
    assert len(locks) == 4 and all(r == rses for r in locks.values())
    did_content.detach(session, "mock", ds["name"], more[:1])
    rules.evaluate_did_changes(session, "mock", ds["name"])
    assert len(cat.locks(rid)) == 3 and len(cat.locks(crid)) == 3
    check_invariants(session)


def test_expired_rules_listing(cat, session):
    (rid,) = rules.add_rule(session, [cat.files(1)[0]], "jdoe", 1, "R1", lifetime=0)
    (locked,) = rules.add_rule(session, [cat.files(1)[0]], "jdoe", 1, "R1", lifetime=0, locked=True)
    assert due(session, EXPIRED_RULES) == [rid] and locked != rid
