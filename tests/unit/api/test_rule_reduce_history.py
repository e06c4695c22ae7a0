"""Rule reduce, history and analysis over REST, as Rucio answers them."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import select

from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Lock, Request, Rule
from datamgmt.core.replica_state import set_replica_states
from datamgmt.core.request import requests_done
from datamgmt.core.rule import add_rule
from datamgmt.core.token import issue_token
from tests.invariants import check_invariants
from tests.unit.api.conftest import make_account
from tests.unit.api.test_bad_replicas_api import failure, lines, post
from tests.unit.rules.conftest import Catalogue, cat  # noqa: F401 - fixture


def _headers(cat: Catalogue, account: str) -> dict[str, str]:  # noqa: F811
    from datamgmt.core.db.constants import IdentityType

    token = issue_token(cat.session, account, None, IdentityType.USERPASS, 3600).token
    cat.session.commit()
    return {"X-Rucio-Auth-Token": token}


def test_reduce_replaces_the_rule_by_a_smaller_one_on_the_replicas_in_place(
    client: FlaskClient, cat, root_headers: dict
) -> None:  # noqa: F811
    jdoe = _headers(cat, "jdoe")
    other = make_account(cat.session, "other")
    dataset = cat.dataset(cat.files(2, on=("R1", "R2")))
    (rule_id,) = add_rule(cat.session, [dataset], "jdoe", 2, "T1")
    assert cat.rule(rule_id).state == RuleState.OK
    cat.session.commit()
    assert failure(post(client, f"/rules/{rule_id}/reduce", {"copies": 1}, other)) == (401, "AccessDenied")
    assert failure(post(client, f"/rules/{rule_id}/reduce", {"copies": 2}, jdoe)) == (
        409,
        "RuleReplaceFailed",
    )
    assert failure(post(client, "/rules/nope/reduce", {"copies": 1}, jdoe)) == (401, "AccessDenied")
    assert failure(post(client, "/rules/nope/reduce", {"copies": 1}, root_headers)) == (404, "RuleNotFound")
    assert failure(post(client, f"/rules/{rule_id}/reduce", {"copies": "1"}, jdoe))[0] == 400
    answer = post(client, f"/rules/{rule_id}/reduce", {"copies": 1, "exclude_expression": "R2"}, jdoe)
    assert answer.status_code == 201
    new_id = json.loads(answer.data)
    cat.session.expire_all()
    assert cat.session.get(Rule, rule_id) is None
    assert cat.rule(new_id).state == RuleState.OK and cat.rule(new_id).copies == 1
    assert {rses for rses in map(frozenset, cat.locks(new_id).values())} == {frozenset({"R1"})}
    assert (
        cat.replica({"scope": "mock", "name": cat.session.scalars(select(Lock.name)).first()}, "R2").lock_cnt
        == 0
    )
    check_invariants(cat.session)


def test_reduce_refuses_a_rule_that_is_not_ok(client: FlaskClient, cat) -> None:  # noqa: F811
    jdoe = _headers(cat, "jdoe")
    (rule_id,) = add_rule(cat.session, [cat.dataset(cat.files(1))], "jdoe", 2, "T1")
    assert cat.rule(rule_id).state == RuleState.REPLICATING
    cat.session.commit()
    assert failure(post(client, f"/rules/{rule_id}/reduce", {"copies": 1}, jdoe)) == (
        409,
        "RuleReplaceFailed",
    )


def test_history_records_each_change_and_outlives_the_rule(client: FlaskClient, cat) -> None:  # noqa: F811
    jdoe = _headers(cat, "jdoe")
    dataset = cat.dataset(cat.files(2))
    (rule_id,) = add_rule(cat.session, [dataset], "jdoe", 1, "R2")
    request_ids = list(cat.session.scalars(select(Request.id).order_by(Request.name)))
    requests_done(cat.session, request_ids[:1])
    requests_done(cat.session, request_ids[:1])  # a repeated report changes nothing, so records nothing
    requests_done(cat.session, request_ids[1:])
    cat.session.commit()
    history = lines(client.get(f"/rules/{rule_id}/history", headers=jdoe))
    assert [(h["state"], h["locks_ok_cnt"], h["locks_replicating_cnt"]) for h in history] == [
        ("REPLICATING", 0, 2),
        ("REPLICATING", 1, 1),
        ("OK", 2, 0),
    ]
    assert set(history[0]) == {
        "updated_at",
        "state",
        "locks_ok_cnt",
        "locks_stuck_cnt",
        "locks_replicating_cnt",
    }
    assert (
        post(client, f"/rules/{rule_id}", {"purge_replicas": False}, jdoe, method="DELETE").status_code == 200
    )
    by_did = lines(client.get(f"/rules/mock/{dataset['name']}/history", headers=jdoe))
    assert {h["rule_id"] for h in by_did} == {rule_id} and by_did[-1]["account"] == "jdoe"
    assert lines(client.get("/rules/nope/history", headers=jdoe)) == []


def test_analysis_explains_stuck_locks(client: FlaskClient, cat) -> None:  # noqa: F811
    jdoe = _headers(cat, "jdoe")
    files = cat.files(1)
    (ok_rule,) = add_rule(cat.session, files, "jdoe", 1, "R1")
    set_replica_states(cat.session, "R1", [{**files[0], "state": "U"}])
    (stuck_rule,) = add_rule(cat.session, files, "jdoe", 1, "R2")
    cat.session.commit()
    analysis = client.get(f"/rules/{stuck_rule}/analysis", headers=jdoe)
    assert (analysis.status_code, analysis.content_type) == (200, "application/json")
    (transfer,) = analysis.json["transfers"]
    assert (transfer["name"], transfer["rse"], transfer["attempts"], transfer["sources"]) == (
        files[0]["name"],
        "R2",
        0,
        [],
    )
    assert analysis.json["rule_error"]
    set_replica_states(cat.session, "R1", [{**files[0], "state": "A"}])
    cat.session.commit()
    assert client.get(f"/rules/{ok_rule}/analysis", headers=jdoe).json == {
        "rule_error": "This replication rule is OK",
        "transfers": [],
    }
    retried = client.get(f"/rules/{stuck_rule}/analysis", headers=jdoe).json["transfers"][0]
    assert retried["sources"] == [["R1", True]]
    assert failure(client.get("/rules/nope/analysis", headers=jdoe)) == (404, "RuleNotFound")
