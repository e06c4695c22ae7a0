"""``/rses/<rse>/qos_policy`` and a subscription's rules and rule states."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.did import add_collections
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.rse import add_rse
from datamgmt.core.rule import add_rule
from datamgmt.core.scope import add_scope
from datamgmt.core.subscription import add_subscription
from tests.unit.api.conftest import make_account


def lines(answer) -> list[dict]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type == "application/x-json-stream"
    return [json.loads(text) for text in answer.get_data(as_text=True).splitlines()]


def test_qos_policies(client: FlaskClient, session: Session, root_headers: dict) -> None:
    add_rse(session, "SITE")
    user = make_account(session, "jdoe")
    session.commit()
    assert client.post("/rses/SITE/qos_policy/FAST", headers=root_headers).status_code == 201
    assert client.post("/rses/SITE/qos_policy/CHEAP", headers=root_headers).status_code == 201
    twice = client.post("/rses/SITE/qos_policy/FAST", headers=root_headers)
    assert twice.status_code == 409 and twice.headers["ExceptionClass"] == "Duplicate"
    listed = client.get("/rses/SITE/qos_policy", headers=user)
    assert listed.content_type == "application/json" and listed.get_json() == ["CHEAP", "FAST"]
    assert client.delete("/rses/SITE/qos_policy/CHEAP", headers=root_headers).status_code == 200
    assert (
        client.delete("/rses/SITE/qos_policy/NEVER", headers=root_headers).status_code == 200
    )  # silent, as Rucio
    assert client.get("/rses/SITE/qos_policy", headers=user).get_json() == ["FAST"]
    for method in ("post", "delete"):
        refused = getattr(client, method)("/rses/SITE/qos_policy/FAST", headers=user)
        assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"
    missing = client.get("/rses/NOPE/qos_policy", headers=user)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RSENotFound"


def test_subscription_rules_and_states(client: FlaskClient, session: Session, root_headers: dict) -> None:
    user = make_account(session, "jdoe")
    add_rse(session, "SITE")
    set_local_account_limit(session, "jdoe", "SITE", -1)
    add_scope(session, "user.jdoe", "jdoe")
    add_collections(session, [{"scope": "user.jdoe", "name": n} for n in ("a", "b", "c")], "jdoe")
    spec = [{"copies": 1, "rse_expression": "SITE"}]
    sub_id = add_subscription(session, "mine", "jdoe", {"scope": ["user.jdoe"]}, spec)
    add_subscription(session, "idle", "jdoe", {"scope": ["user.jdoe"]}, spec)
    for name in ("a", "b"):
        add_rule(session, [{"scope": "user.jdoe", "name": name}], "jdoe", 1, "SITE", subscription_id=sub_id)
    add_rule(session, [{"scope": "user.jdoe", "name": "c"}], "jdoe", 1, "SITE")  # not the subscription's
    session.commit()
    rules = lines(client.get("/subscriptions/jdoe/mine/rules", headers=user))
    assert sorted(r["name"] for r in rules) == ["a", "b"] and {r["subscription_id"] for r in rules} == {
        sub_id
    }
    assert lines(client.get("/subscriptions/jdoe/mine/rules?state=STUCK", headers=user)) == []
    missing = client.get("/subscriptions/jdoe/nope/rules", headers=user)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "SubscriptionNotFound"
    states = lines(client.get("/subscriptions/jdoe/rules/states", headers=user))
    assert sorted((s["name"], s["state"], s["count"]) for s in states if s["name"] == "idle") == [
        ("idle", None, 0)
    ]
    [(mine_state, mine_count)] = [(s["state"], s["count"]) for s in states if s["name"] == "mine"]
    assert mine_count == 2 and mine_state in ("OK", "REPLICATING", "STUCK")
    one = lines(client.get("/subscriptions/j*/mine/rules/states?include_details=True", headers=user))
    assert [(s["account"], s["name"], s["subscription_state"]) for s in one] == [("jdoe", "mine", "ACTIVE")]
