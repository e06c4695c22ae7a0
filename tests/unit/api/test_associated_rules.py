"""``/dids/{scope}/{name}/associated_rules``: every rule holding a file, whatever DID it was made on."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse
from datamgmt.core.rule import add_rule
from datamgmt.core.scope import add_scope


def test_rules_on_the_file_and_on_its_dataset(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    add_scope(session, "data", "root")
    add_rse(session, "SITE")
    set_local_account_limit(session, "root", "SITE", -1)
    files = [{"scope": "data", "name": n, "bytes": 1, "adler32": "00000001"} for n in ("f1", "f2")]
    add_replicas(session, "SITE", files, "root")
    add_collection(session, "data", "ds", "DATASET", "root")
    attach(session, "data", "ds", files[:1])
    on_ds = add_rule(session, [{"scope": "data", "name": "ds"}], "root", 1, "SITE")[0]
    on_f1 = add_rule(session, [{"scope": "data", "name": "f1"}], "root", 1, "SITE")[0]
    add_rule(session, [{"scope": "data", "name": "f2"}], "root", 1, "SITE")
    session.commit()
    response = client.get("/dids/data/f1/associated_rules", headers=root_headers)
    assert response.status_code == 200
    found = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert sorted(rule["id"] for rule in found) == sorted([on_ds, on_f1])
    missing = client.get("/dids/data/nothing/associated_rules", headers=root_headers)
    assert missing.status_code == 404 and missing.headers["ExceptionClass"] == "DataIdentifierNotFound"
