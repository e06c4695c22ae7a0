"""``POST /rules/{id}/move``: a child rule on the new expression replaces the rule, as in Rucio."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Rule
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse, add_rse_attribute
from datamgmt.core.rule import add_rule
from datamgmt.core.scope import add_scope
from tests.unit.api.conftest import make_account


def _rule(session: Session) -> str:
    make_account(session, "alice")
    add_scope(session, "user.alice", "alice")
    for rse in ("A", "B"):
        add_rse(session, rse)
        add_rse_attribute(session, rse, "type", "SCRATCHDISK")
        set_local_account_limit(session, "alice", rse, -1)
    files = [{"scope": "user.alice", "name": "f1", "bytes": 1, "adler32": "00000001"}]
    add_replicas(session, "A", files, "alice")
    add_replicas(session, "B", files, "alice")
    add_collection(session, "user.alice", "ds", "DATASET", "alice")
    attach(session, "user.alice", "ds", files)
    rule_id = add_rule(session, [{"scope": "user.alice", "name": "ds"}], "alice", 1, "A", activity="Old")[0]
    session.commit()
    return rule_id


def test_move_replaces_the_rule(client: FlaskClient, session: Session, root_headers: dict) -> None:
    rule_id = _rule(session)
    body = {"rse_expression": "B", "override": {"activity": "Data Rebalancing"}}
    response = client.post(f"/rules/{rule_id}/move", json=body, headers=root_headers)
    assert response.status_code == 201
    child_id = json.loads(response.get_data(as_text=True))
    session.expire_all()
    child = session.get(Rule, child_id)
    assert child.rse_expression == "B" and child.activity == "Data Rebalancing" and child.state.name == "OK"
    assert session.get(Rule, rule_id) is None  # the child was OK at once, so the parent went


def test_move_refusals(client: FlaskClient, session: Session, root_headers: dict) -> None:
    rule_id = _rule(session)
    bob = make_account(session, "bob")
    assert client.post(f"/rules/{rule_id}/move", json={"rse_expression": "B"}, headers=bob).status_code == 401
    bad = client.post(
        f"/rules/{rule_id}/move",
        json={"rse_expression": "B", "override": {"copies": 3}},
        headers=root_headers,
    )
    assert bad.status_code == 400
    missing = client.post(f"/rules/{'f' * 32}/move", json={"rse_expression": "B"}, headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "RuleNotFound"
    session.expire_all()
    assert session.get(Rule, rule_id).child_rule_id is None
