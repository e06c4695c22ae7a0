"""Subscriptions in the catalogue: add, update, list, and matching new DIDs into rules."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from datamgmt.core import subscription as subs
from datamgmt.core.db.constants import RuleState, SubscriptionState
from datamgmt.core.db.models import DataIdentifier, Rule, Subscription
from datamgmt.core.db.types import utcnow
from datamgmt.core.metadata import set_metadata_bulk
from datamgmt.daemons.transmogrifier import Transmogrifier
from datamgmt.exceptions import (
    AccountNotFound,
    Duplicate,
    InvalidObject,
    SubscriptionDuplicate,
    SubscriptionNotFound,
    UnsupportedOperation,
)
from tests.invariants import check_invariants

AOD = {"scope": ["mock"], "datatype": "AOD"}
ONE_T1 = [{"copies": 1, "rse_expression": "T1", "lifetime": 3600, "activity": "Data Brokering"}]


def new_dataset(cat, **meta):
    ds = cat.dataset(cat.files(2, on=("R3",)))
    if meta:
        set_metadata_bulk(cat.session, ds["scope"], ds["name"], meta)
    return ds


def rules_on(session, ds):
    return session.scalars(select(Rule).where(Rule.scope == ds["scope"], Rule.name == ds["name"])).all()


def new_dids(session):
    return session.scalar(
        select(func.count()).select_from(DataIdentifier).where(DataIdentifier.is_new.is_(True))
    )


def test_add_get_and_list(cat, session):
    sub_id = subs.add_subscription(
        session, "aod", "jdoe", AOD, ONE_T1, comments="why", lifetime=2, priority=3
    )
    found = subs.get_subscription_by_id(session, sub_id)
    assert found["name"] == "aod" and found["account"] == "jdoe" and found["state"] == "ACTIVE"
    assert json.loads(found["filter"]) == AOD and json.loads(found["replication_rules"]) == ONE_T1
    assert found["policyid"] == 3 and found["comments"] == "why"
    assert timedelta(days=1, hours=23) < found["lifetime"] - utcnow() <= timedelta(days=2)
    assert [s["id"] for s in subs.list_subscriptions(session, account="jdoe")] == [sub_id]
    assert [s["id"] for s in subs.list_subscriptions(session, name="aod", state="ACTIVE")] == [sub_id]
    with pytest.raises(SubscriptionNotFound):
        subs.list_subscriptions(session, account="root")
    with pytest.raises(SubscriptionNotFound):
        subs.get_subscription_by_id(session, "0" * 32)


def test_same_name_twice_for_one_account_is_a_duplicate(cat, session):
    subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    with pytest.raises(SubscriptionDuplicate):
        subs.add_subscription(session, "aod", "jdoe", {}, ONE_T1)
    subs.add_subscription(session, "aod", "root", AOD, ONE_T1)


def test_refusals_on_add(cat, session):
    with pytest.raises(AccountNotFound):
        subs.add_subscription(session, "x", "nobody", AOD, ONE_T1)
    with pytest.raises(UnsupportedOperation):
        subs.add_subscription(session, "x", "jdoe", AOD, ONE_T1, retroactive=True)
    with pytest.raises(InvalidObject):
        subs.add_subscription(session, "", "jdoe", AOD, ONE_T1)
    with pytest.raises(InvalidObject):
        subs.add_subscription(session, "x", "jdoe", {"v": "x" * 4000}, ONE_T1)
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_dry_run_creates_an_inactive_subscription(cat, session):
    sub_id = subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1, dry_run=True)
    assert subs.get_subscription_by_id(session, sub_id)["state"] == "INACTIVE"


def test_update(cat, session):
    sub_id = subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1, comments="keep", lifetime=1)
    subs.update_subscription(
        session,
        "aod",
        "jdoe",
        {"filter": {"datatype": "ESD"}, "comments": None, "lifetime": False, "priority": 1},
    )
    found = subs.get_subscription_by_id(session, sub_id)
    assert json.loads(found["filter"]) == {"datatype": "ESD"} and found["comments"] == "keep"
    assert found["lifetime"] is None and found["policyid"] == 1 and found["state"] == "UPDATED"
    subs.update_subscription(session, "aod", "jdoe", {"dry_run": True})
    assert subs.get_subscription_by_id(session, sub_id)["state"] == "INACTIVE"
    subs.update_subscription(session, "aod", "jdoe", {"state": "ACTIVE"})
    assert subs.get_subscription_by_id(session, sub_id)["state"] == "ACTIVE"
    with pytest.raises(InvalidObject):
        subs.update_subscription(session, "aod", "jdoe", {"state": "BROKEN"})
    with pytest.raises(InvalidObject):
        subs.update_subscription(session, "aod", "jdoe", {"account": "root"})
    with pytest.raises(InvalidObject):
        subs.update_subscription(session, "aod", "jdoe", {"replication_rules": []})
    with pytest.raises(SubscriptionNotFound):
        subs.update_subscription(session, "other", "jdoe", {"comments": "x"})


def test_matching_dataset_gets_the_rules_of_the_subscription(cat, session):
    sub_id = subs.add_subscription(
        session, "aod", "jdoe", AOD, ONE_T1 + [{"copies": 1, "rse_expression": "R3"}]
    )
    matching = new_dataset(cat, datatype="AOD")
    other = new_dataset(cat, datatype="ESD")
    bare = new_dataset(cat)
    report = subs.match_new_dids(session, batch=100)
    assert report.dids == 3 + 6 and not report.failures and not report.deferred
    created = rules_on(session, matching)
    assert sorted(r.id for r in created) == sorted(report.rules)
    assert {(r.rse_expression, r.subscription_id, r.activity) for r in created} == {
        ("T1", sub_id, "Data Brokering"),
        ("R3", sub_id, "User Subscriptions"),
    }
    assert next(r for r in created if r.rse_expression == "T1").expires_at is not None
    assert rules_on(session, other) == [] and rules_on(session, bare) == []
    assert new_dids(session) == 0
    assert session.get(Subscription, sub_id).last_processed is not None
    check_invariants(session)


def test_batches_take_a_bounded_number_of_new_dids(cat, session):
    subs.add_subscription(session, "all", "jdoe", {"did_type": "DATASET"}, ONE_T1)
    for _ in range(3):
        new_dataset(cat)
    assert subs.match_new_dids(session, batch=4).dids == 4
    assert new_dids(session) == 5
    assert subs.match_new_dids(session, batch=100).dids == 5
    assert session.scalar(select(func.count()).select_from(Rule)) == 3


def test_matching_again_never_duplicates_rules(cat, session):
    subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    subs.add_subscription(session, "aod-too", "jdoe", {"datatype": "AOD"}, ONE_T1)
    ds = new_dataset(cat, datatype="AOD")
    first = subs.match_new_dids(session)
    assert len(first.rules) == 1
    session.execute(update(DataIdentifier).values(is_new=True))
    again = subs.match_new_dids(session)
    assert again.rules == [] and not again.failures
    assert len(rules_on(session, ds)) == 1


def test_inactive_and_expired_subscriptions_are_ignored(cat, session):
    subs.add_subscription(session, "dry", "jdoe", AOD, ONE_T1, dry_run=True)
    subs.add_subscription(session, "old", "jdoe", AOD, [{"copies": 1, "rse_expression": "R3"}], lifetime=1)
    session.execute(
        update(Subscription).where(Subscription.name == "old").values(lifetime=utcnow() - timedelta(1))
    )
    ds = new_dataset(cat, datatype="AOD")
    report = subs.match_new_dids(session)
    assert report.rules == [] and rules_on(session, ds) == []
    assert new_dids(session) == 0


def test_hidden_dids_never_match(cat, session):
    subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    ds = new_dataset(cat, datatype="AOD")
    session.execute(update(DataIdentifier).where(DataIdentifier.name == ds["name"]).values(hidden=True))
    assert subs.match_new_dids(session).rules == []


def test_a_rule_that_cannot_be_placed_now_is_left_to_the_injector(cat, session):
    sub_id = subs.add_subscription(session, "many", "jdoe", AOD, [{"copies": 5, "rse_expression": "T1"}])
    ds = new_dataset(cat, datatype="AOD")
    report = subs.match_new_dids(session)
    assert report.rules == [] and len(report.deferred) == 1
    (rule,) = rules_on(session, ds)
    assert rule.state == RuleState.INJECT and rule.subscription_id == sub_id
    check_invariants(session)


def test_a_rule_that_cannot_be_created_is_reported_and_the_rest_goes_on(cat, session):
    subs.add_subscription(session, "broken", "jdoe", AOD, [{"copies": 1, "rse_expression": "NOSUCH"}])
    subs.add_subscription(session, "good", "jdoe", AOD, ONE_T1)
    ds = new_dataset(cat, datatype="AOD")
    report = subs.match_new_dids(session)
    assert len(report.failures) == 1 and "InvalidRSEExpression" in report.failures[0]
    assert [r.rse_expression for r in rules_on(session, ds)] == ["T1"]
    assert new_dids(session) == 0


def test_transmogrifier_run_once_end_to_end(cat, session, db):
    sub_id = subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    ds = new_dataset(cat, datatype="AOD", project="data18")
    session.commit()
    daemon = Transmogrifier(db_url=db)
    assert daemon.run_once(100) == 3
    assert daemon.idle
    session.expire_all()
    (rule,) = rules_on(session, ds)
    assert rule.subscription_id == sub_id and rule.account == "jdoe"
    assert rule.state in (RuleState.REPLICATING, RuleState.OK)
    assert new_dids(session) == 0
    session.rollback()
    assert daemon.run_once(100) == 0 and daemon.idle


def test_concurrent_transmogrifiers_share_the_work_without_duplicates(cat, session, db):
    subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    datasets = [new_dataset(cat, datatype="AOD") for _ in range(8)]
    session.commit()
    errors: list[BaseException] = []

    def drain(worker: Transmogrifier) -> None:
        retries = 20
        while True:
            try:
                if not worker.run_once(3) and worker.idle:
                    return
            except Duplicate as exc:
                # A concurrent first write elsewhere (e.g. a usage row): the batch rolled back
                # whole and is retried, as the daemon loop does.
                retries -= 1
                if not retries:
                    errors.append(exc)
                    return
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
                return

    threads = [threading.Thread(target=drain, args=(Transmogrifier(f"w{i}", db),)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [], [repr(e.__cause__ or e) for e in errors]
    session.expire_all()
    assert all(len(rules_on(session, ds)) == 1 for ds in datasets)
    assert new_dids(session) == 0
    check_invariants(session)


def test_a_subscription_whose_stored_filter_no_longer_validates_becomes_broken(cat, session):
    sub_id = subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    session.execute(update(Subscription).values(filter='{"pattern": "("}'))
    new_dataset(cat, datatype="AOD")
    report = subs.match_new_dids(session)
    assert report.rules == [] and new_dids(session) == 0
    session.expire_all()
    assert session.get(Subscription, sub_id).state == SubscriptionState.BROKEN


@pytest.mark.timeout(60)
def test_a_backtracking_pattern_cannot_stall_the_transmogrifier(cat, session):
    # 60 characters: a backtracking engine needs about 2**60 steps to reject the first name.
    subs.add_subscription(session, "evil", "jdoe", {"scope": ["mock"], "pattern": r"(a+)+$"}, ONE_T1)
    rejected = cat.dataset(cat.files(1, on=("R3",)), name="a" * 60 + "-")
    accepted = cat.dataset(cat.files(1, on=("R3",)), name="a" * 60)
    report = subs.match_new_dids(session)
    assert not report.failures and new_dids(session) == 0
    assert rules_on(session, rejected) == [] and len(rules_on(session, accepted)) == 1
    check_invariants(session)


def test_filters_the_linear_engine_cannot_serve_are_refused_on_add_and_update(cat, session):
    with pytest.raises(InvalidObject, match="lookaround"):
        subs.add_subscription(session, "x", "jdoe", {"pattern": r"(?!tmp).*"}, ONE_T1)
    subs.add_subscription(session, "aod", "jdoe", AOD, ONE_T1)
    with pytest.raises(InvalidObject, match="backreferences"):
        subs.update_subscription(session, "aod", "jdoe", {"filter": {"pattern": r"(\w)\1"}})
    assert [json.loads(s["filter"]) for s in subs.list_subscriptions(session, account="jdoe")] == [AOD]
