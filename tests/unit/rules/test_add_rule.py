"""add_rule: grouping x existing data, locks, replicas, requests, options."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from datamgmt.core import rule as rules
from datamgmt.core.db.constants import OBSOLETE, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import Message, Request, Source
from datamgmt.core.workqueue import INJECT_RULES
from datamgmt.exceptions import DuplicateRule, InsufficientTargetRSEs, InvalidValueForKey, RSEWriteBlocked
from tests.invariants import check_invariants
from tests.unit.rules.conftest import due


def test_none_grouping_places_each_file_on_two_t1_rses(cat, session):
    files = cat.files(6, on=("R3",))
    ds = cat.dataset(files)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 2, "T1", grouping="NONE")
    locks = cat.locks(rid)
    assert len(locks) == 6
    assert all(len(rses) == 2 and rses <= {"R1", "R2", "R4"} for rses in locks.values())
    check_invariants(session)


@pytest.mark.parametrize("grouping", ["ALL", "DATASET"])
def test_all_and_dataset_keep_files_together(cat, session, grouping):
    files = cat.files(5, on=("R3",))
    ds = cat.dataset(files)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 2, "T1", grouping=grouping)
    assert len({frozenset(r) for r in cat.locks(rid).values()}) == 1
    check_invariants(session)


@pytest.mark.parametrize("grouping", ["ALL", "DATASET", "NONE"])
def test_existing_data_is_preferred(cat, session, grouping):
    files = cat.files(4, on=("R2", "R4"))
    ds = cat.dataset(files)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 2, "T1|T2", grouping=grouping)
    assert all(rses == {"R2", "R4"} for rses in cat.locks(rid).values())
    rule = cat.rule(rid)
    assert rule.state == RuleState.OK and rule.locks_ok_cnt == 8
    assert session.scalar(select(Request.id)) is None
    check_invariants(session)


@pytest.mark.parametrize("grouping", ["ALL", "DATASET", "NONE"])
def test_partly_present_data_attracts_the_group(cat, session, grouping):
    present = cat.files(3, on=("R4",))
    missing = cat.files(1, on=("R3",))
    ds = cat.dataset(present + missing)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "T1", grouping=grouping)
    locks = cat.locks(rid)
    for f in present:
        assert locks[(f["scope"], f["name"])] == {"R4"}
    if grouping != "NONE":
        assert locks[(missing[0]["scope"], missing[0]["name"])] == {"R4"}
    check_invariants(session)


def test_container_dataset_grouping_places_each_dataset_together(cat, session):
    contents = [cat.files(3, on=("R3",)) for _ in range(4)]
    cnt = cat.container([cat.dataset(files) for files in contents])
    (rid,) = rules.add_rule(session, [cnt], "jdoe", 1, "T1", grouping="DATASET")
    locks = cat.locks(rid)
    assert len(locks) == 12
    for files in contents:
        assert len({frozenset(locks[(f["scope"], f["name"])]) for f in files}) == 1
    check_invariants(session)


def test_missing_replica_makes_copying_replica_request_and_sources(cat, session):
    from datamgmt.core.rse_distance import set_distance

    set_distance(session, "R3", "R1", 5)
    f = cat.files(1, size=42, on=("R3", "R2"))[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    assert cat.locks(rid) == {(f["scope"], f["name"]): {"R1"}}
    replica = cat.replica(f, "R1")
    assert replica.state == ReplicaState.COPYING and replica.lock_cnt == 1 and replica.tombstone is None
    request = session.scalar(select(Request))
    assert request.state == RequestState.QUEUED and request.dest_rse_id == cat.rse_ids["R1"]
    assert request.bytes == 42 and request.rule_id == rid and request.priority == 3
    ranked = session.scalars(select(Source).order_by(Source.ranking.desc())).all()
    assert [s.rse_id for s in ranked] == [cat.rse_ids["R3"], cat.rse_ids["R2"]]
    assert cat.rule(rid).state == RuleState.REPLICATING
    check_invariants(session)


def test_a_source_without_a_distance_row_ranks_after_a_far_known_one(cat, session):
    """A missing distance counts as farther than any set one, whatever the operator's scale
    (the ranking once assumed 1,000 while routing assumed 1,000,000)."""
    from datamgmt.core import request as transfers
    from datamgmt.core.rse_distance import UNKNOWN_DISTANCE, set_distance

    set_distance(session, "R3", "R1", 5000)
    f = cat.files(1, on=("R2", "R3"))[0]
    rules.add_rule(session, [f], "jdoe", 1, "R1")
    request = session.scalar(select(Request))
    ranked = transfers.list_sources(session, request.id)
    assert [(s["rse_id"], s["ranking"]) for s in ranked] == [
        (cat.rse_ids["R3"], -5000),
        (cat.rse_ids["R2"], -UNKNOWN_DISTANCE),
    ]
    check_invariants(session)


def test_no_source_anywhere_gives_stuck_lock(cat, session):
    f = cat.files(1, on=())[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    rule = cat.rule(rid)
    assert rule.state == RuleState.STUCK and rule.locks_stuck_cnt == 1 and rule.stuck_at is not None
    assert cat.replica(f, "R1").state == ReplicaState.UNAVAILABLE
    check_invariants(session)


def test_source_replica_expression_restricts_sources(cat, session):
    f = cat.files(1, on=("R3", "R2"))[0]
    rules.add_rule(session, [f], "jdoe", 1, "R1", source_replica_expression="R2")
    assert [s.rse_id for s in session.scalars(select(Source))] == [cat.rse_ids["R2"]]


def test_lock_clears_tombstone(cat, session):
    f = cat.files(1, on=("R1",))[0]
    cat.replica(f, "R1").tombstone = OBSOLETE
    session.flush()
    rules.add_rule(session, [f], "jdoe", 1, "R1")
    assert cat.replica(f, "R1").tombstone is None
    check_invariants(session)


def test_weight_picks_the_heavy_rse(cat, session):
    for _ in range(3):
        f = cat.files(1, on=("R3",))[0]
        (rid,) = rules.add_rule(session, [f], "jdoe", 1, "T1", weight="fakeweight")
        assert set().union(*cat.locks(rid).values()) == {"R1"}


def test_duplicate_rule(cat, session):
    f = cat.files(1)[0]
    rules.add_rule(session, [f], "jdoe", 1, "R1")
    with pytest.raises(DuplicateRule):
        rules.add_rule(session, [f], "jdoe", 1, "R1")


def test_too_few_rses(cat, session):
    f = cat.files(1)[0]
    with pytest.raises(InsufficientTargetRSEs):
        rules.add_rule(session, [f], "jdoe", 2, "T2")


def test_copies_must_be_positive(cat, session):
    with pytest.raises(InvalidValueForKey):
        rules.add_rule(session, [cat.files(1)[0]], "jdoe", 0, "R1")


def test_options_are_stored(cat, session):
    f = cat.files(1)[0]
    (rid,) = rules.add_rule(
        session,
        [f],
        "jdoe",
        1,
        "R1",
        lifetime=3600,
        locked=True,
        activity="Express",
        notify="Y",
        purge_replicas=True,
        priority=4,
        comment="hi",
        meta={"k": 1},
    )
    rule = rules.get_rule(session, rid)
    assert rule["locked"] and rule["activity"] == "Express" and rule["notification"] == "YES"
    assert rule["purge_replicas"] and rule["priority"] == 4 and rule["comments"] == "hi"
    assert rule["meta"] == {"k": 1} and rule["expires_at"] is not None
    assert rule["state"] == "OK"
    assert session.scalar(select(Message.event_type)) == "RULE_OK"


def test_tape_without_lifetime_is_locked(cat, session):
    from datamgmt.core.quota import set_local_account_limit
    from datamgmt.core.rse import add_rse

    add_rse(session, "TAPE1", rse_type="TAPE")
    set_local_account_limit(session, "jdoe", "TAPE1", -1)
    session.commit()
    f = cat.files(1)[0]
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "TAPE1")
    assert cat.rule(rid).locked
    g = cat.files(1)[0]
    (rid,) = rules.add_rule(session, [g], "jdoe", 1, "TAPE1", lifetime=60)
    assert not cat.rule(rid).locked


def test_ignore_availability(cat, session):
    from datamgmt.core.rse import update_rse

    update_rse(session, "R1", {"availability_write": False})
    session.commit()
    f = cat.files(1, on=("R3",))[0]
    with pytest.raises(RSEWriteBlocked):
        rules.add_rule(session, [f], "jdoe", 1, "R1")
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "R1", ignore_availability=True)
    assert cat.locks(rid) == {(f["scope"], f["name"]): {"R1"}}


def test_asynchronous_rule_is_injected_later(cat, session):
    f = cat.files(2, on=("R3",))
    ds = cat.dataset(f)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1", asynchronous=True)
    assert cat.rule(rid).state == RuleState.INJECT and not cat.locks(rid)
    assert due(session, INJECT_RULES) == [rid]
    assert rules.apply_injected_rule(session, rid) == RuleState.REPLICATING
    assert len(cat.locks(rid)) == 2
    check_invariants(session)


def test_large_rule_is_asynchronous(cat, session, monkeypatch):
    monkeypatch.setenv("DATAMGMT_JUDGE_ASYNC_LOCK_THRESHOLD", "3")
    from datamgmt.config import reset_config

    reset_config()
    try:
        ds = cat.dataset(cat.files(2))
        (rid,) = rules.add_rule(session, [ds], "jdoe", 2, "T1")
        assert cat.rule(rid).state == RuleState.INJECT
    finally:
        monkeypatch.delenv("DATAMGMT_JUDGE_ASYNC_LOCK_THRESHOLD")
        reset_config()


def test_injection_without_quota_suspends(cat, session):
    from datamgmt.core.quota import set_local_account_limit

    set_local_account_limit(session, "jdoe", "R1", 10)
    ds = cat.dataset(cat.files(2, size=100, on=("R3",)))
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1", asynchronous=True)
    assert rules.apply_injected_rule(session, rid) == RuleState.SUSPENDED
    assert not cat.locks(rid)
    check_invariants(session)


def test_lock_states_mixed(cat, session):
    here = cat.files(1, on=("R1",))
    there = cat.files(1, on=("R3",))
    ds = cat.dataset(here + there)
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1")
    rule = cat.rule(rid)
    assert (rule.locks_ok_cnt, rule.locks_replicating_cnt, rule.locks_stuck_cnt) == (1, 1, 0)
    locks = {(lk["name"], lk["state"]) for lk in rules.list_rule_locks(session, rid)}
    assert locks == {(here[0]["name"], "OK"), (there[0]["name"], "REPLICATING")}
