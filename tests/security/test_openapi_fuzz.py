"""schemathesis against /openapi.json: bounded random requests as root, never a 5xx.

In process (the app over WSGI, no server), so it runs with the parallel suites of `make test`,
where its minutes overlap the unit tests instead of adding to the integration suite's."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.token import issue_token


@pytest.fixture
def api_schema(db: str, root: str, session: Session) -> schemathesis.BaseSchema:
    app = create_app(database_url=db)
    app.config["FUZZ_TOKEN"] = issue_token(session, "root", "root", IdentityType.USERPASS, 3600).token
    session.commit()
    return schemathesis.from_wsgi("/openapi.json", app)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(1500)  # one test over every operation (about 300): it outgrew the suite's 600 s
def test_no_server_errors(case: schemathesis.Case) -> None:
    token = case.app.config["FUZZ_TOKEN"]
    response = case.call_wsgi(headers={"X-Rucio-Auth-Token": token})
    case.validate_response(response, checks=(not_a_server_error,))
