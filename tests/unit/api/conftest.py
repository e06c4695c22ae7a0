"""A Flask test client on a bootstrapped catalogue, and tokens for any account."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.core.account import add_account, add_account_attribute
from datamgmt.core.db.constants import IdentityType
from datamgmt.core.identity import add_account_identity
from datamgmt.core.token import issue_token


@pytest.fixture
def app(db: str, root: str) -> Flask:
    return create_app(database_url=db)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def root_headers(session: Session, root: str) -> dict[str, str]:
    """Headers with a live root token, issued directly so the app has served no request yet."""
    token = issue_token(session, "root", "root", IdentityType.USERPASS, 3600).token
    session.commit()
    return {"X-Rucio-Auth-Token": token}


def make_account(
    session: Session, name: str, admin: bool = False, password: str | None = None
) -> dict[str, str]:
    """A USER account (optionally admin) and the headers of a live token for it."""
    add_account(session, name, "USER")
    if admin:
        add_account_attribute(session, name, "admin", True)
    if password:
        add_account_identity(session, name, "USERPASS", name, password=password)
    token = issue_token(session, name, None, IdentityType.USERPASS, 3600).token
    session.commit()
    return {"X-Rucio-Auth-Token": token}
