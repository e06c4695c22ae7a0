"""A subscription filter the linear-time regex engine cannot serve is a 400 over REST, on add and update."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.unit.api.conftest import make_account

RULES = [{"copies": 1, "rse_expression": "T1"}]


def options(filter_: dict) -> str:
    return json.dumps(
        {
            "options": {
                "filter": filter_,
                "replication_rules": RULES,
                "lifetime": False,
                "retroactive": False,
                "dry_run": False,
                "priority": 0,
            }
        }
    )


def test_lookaround_and_backreferences_are_refused_with_a_clear_400(
    client: FlaskClient, session: Session
) -> None:
    headers = make_account(session, "jdoe")
    refused = client.post(
        "/subscriptions/jdoe/evil", headers=headers, data=options({"pattern": r"(?=a)(a+)+$"})
    )
    assert refused.status_code == 400 and refused.headers["ExceptionClass"] == "InvalidObject"
    assert "RE2 syntax" in json.loads(refused.get_data())["ExceptionMessage"]
    assert (
        client.post(
            "/subscriptions/jdoe/ok", headers=headers, data=options({"pattern": r"(a+)+$"})
        ).status_code
        == 201
    )
    update = json.dumps({"options": {"filter": {"excluded_pattern": r"(x)\1"}}})
    refused = client.put("/subscriptions/jdoe/ok", headers=headers, data=update)
    assert refused.status_code == 400 and refused.headers["ExceptionClass"] == "InvalidObject"
    (stored,) = [
        json.loads(line)
        for line in client.get("/subscriptions/jdoe/ok", headers=headers).get_data(as_text=True).splitlines()
    ]
    assert json.loads(stored["filter"]) == {"pattern": r"(a+)+$"}
