"""``/identities``: userpass and X.509 identities from headers, and the accounts of an identity."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from tests.unit.api.conftest import make_account


def _userpass(username: str, password: str = "s3cret-pass", email: str = "a@example.org") -> dict[str, str]:
    return {"X-Rucio-Username": username, "X-Rucio-Password": password, "X-Rucio-Email": email}


def test_userpass_identity_logs_in(client: FlaskClient, session: Session, root_headers: dict) -> None:
    make_account(session, "jdoe")
    added = client.put("/identities/jdoe/userpass", headers={**root_headers, **_userpass("jdoe-login")})
    assert added.status_code == 201 and added.get_data(as_text=True) == "Created"
    login = client.get(
        "/auth/userpass",
        headers={
            "X-Rucio-Account": "jdoe",
            "X-Rucio-Username": "jdoe-login",
            "X-Rucio-Password": "s3cret-pass",
        },
    )
    assert login.status_code == 200 and login.headers["X-Rucio-Auth-Token"]
    accounts = client.get("/identities/jdoe-login/userpass/accounts", headers=root_headers)
    assert accounts.status_code == 200 and accounts.content_type == "application/json"
    assert accounts.get_json() == ["jdoe"]
    query = client.get("/identities/accounts?identity_key=jdoe-login&type=USERPASS", headers=root_headers)
    assert query.get_json() == ["jdoe"]


def test_errors(client: FlaskClient, session: Session, root_headers: dict) -> None:
    make_account(session, "jdoe")
    make_account(session, "other")
    missing = client.put("/identities/jdoe/userpass", headers={**root_headers, "X-Rucio-Username": "u"})
    assert missing.status_code == 400 and missing.headers["ExceptionClass"] == "ValueError"
    assert (
        client.put("/identities/jdoe/userpass", headers={**root_headers, **_userpass("shared")}).status_code
        == 201
    )
    # a second account cannot take over (and reset the password of) an existing identity
    again = client.put(
        "/identities/other/userpass", headers={**root_headers, **_userpass("shared", "other-pass")}
    )
    assert again.status_code == 409 and again.headers["ExceptionClass"] == "Duplicate"
    nobody = client.put("/identities/nobody/userpass", headers={**root_headers, **_userpass("new-one")})
    assert nobody.status_code == 404 and nobody.headers["ExceptionClass"] == "AccountNotFound"
    no_dn = client.put("/identities/jdoe/x509", headers={**root_headers, "X-Rucio-Email": "a@b"})
    assert no_dn.status_code == 400 and no_dn.headers["ExceptionClass"] == "ValueError"
    for url in (
        "/identities/accounts?type=userpass",
        "/identities/accounts?identity_key=x",
        "/identities/accounts?identity_key=x&type=KERBEROS",
        "/identities/x/KERBEROS/accounts",
    ):
        assert client.get(url, headers=root_headers).status_code == 400, url


def test_users_see_only_their_own_identities(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    user = make_account(session, "jdoe", password="jdoe-pass")
    make_account(session, "other", password="other-pass")
    own = client.get("/identities/jdoe/userpass/accounts", headers=user)
    assert own.status_code == 200 and own.get_json() == ["jdoe"]
    theirs = client.get("/identities/other/userpass/accounts", headers=user)
    assert theirs.status_code == 401 and theirs.headers["ExceptionClass"] == "AccessDenied"
    assert (
        client.get("/identities/accounts?identity_key=other&type=userpass", headers=user).status_code == 401
    )
    refused = client.put("/identities/jdoe/userpass", headers={**user, **_userpass("second")})
    assert refused.status_code == 401 and refused.headers["ExceptionClass"] == "AccessDenied"


def test_x509_from_the_trusted_proxy_header(
    db: str, session: Session, root_headers: dict, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATAMGMT_AUTH_X509_HEADER", "X-SSL-Client-DN")
    from datamgmt.config import reset_config

    reset_config()
    try:
        app: Flask = create_app(database_url=db)
        make_account(session, "jdoe")
        dn = "/DC=org/CN=Jane Doe"
        answer = app.test_client().put(
            "/identities/jdoe/x509", headers={**root_headers, "X-SSL-Client-DN": dn, "X-Rucio-Email": "j@d"}
        )
        assert answer.status_code == 201
        assert app.test_client().get(
            "/identities/accounts", query_string={"identity_key": dn, "type": "X509"}, headers=root_headers
        ).get_json() == ["jdoe"]
    finally:
        reset_config()
