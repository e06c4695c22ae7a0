"""``POST /rules/`` with Rucio's ``split_container`` and on a staging area (issue 23)."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Rule
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse, update_rse
from datamgmt.core.scope import add_scope


def _container(session: Session) -> None:
    for name in ("SITE", "BUFFER"):
        add_rse(session, name)
        set_local_account_limit(session, "root", name, -1)
    update_rse(session, "BUFFER", {"staging_area": True})
    add_scope(session, "root", "root")
    files = [{"scope": "root", "name": "f1", "bytes": 1, "adler32": "00000001"}]
    add_replicas(session, "SITE", files, "root")
    add_collection(session, "root", "ds", "DATASET", "root")
    attach(session, "root", "ds", files)
    add_collection(session, "root", "cnt", "CONTAINER", "root")
    attach(session, "root", "cnt", [{"scope": "root", "name": "ds"}])
    session.commit()


def _body(expression: str, **options) -> dict:
    return {
        "dids": [{"scope": "root", "name": "cnt"}],
        "copies": 1,
        "rse_expression": expression,
        "account": None,
        **options,
    }


def test_split_container_rule_waits_for_the_injector(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _container(session)
    answer = client.post("/rules/", json=_body("SITE", split_container=True), headers=root_headers)
    assert answer.status_code == 201
    (rule_id,) = json.loads(answer.get_data(as_text=True))
    session.expire_all()
    rule = session.get(Rule, rule_id)
    assert rule.split_container and rule.state is RuleState.INJECT


def test_staging_area_rule_without_lifetime_is_refused(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    _container(session)
    answer = client.post("/rules/", json=_body("BUFFER"), headers=root_headers)
    assert answer.status_code == 409
    assert answer.headers["ExceptionClass"] == "StagingAreaRuleRequiresLifetime"
    assert client.post("/rules/", json=_body("BUFFER", lifetime=600), headers=root_headers).status_code == 201
