"""The browser interface at /ui/: sign-in, CSRF, the permission policy, escaping, and its pages."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import reset_config
from datamgmt.core import did as dids
from datamgmt.core import did_content
from datamgmt.core import rule as rules
from datamgmt.core.account import update_account
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse, add_rse_attribute
from datamgmt.core.scope import add_scope
from tests.conftest import ROOT_PASSWORD
from tests.unit.api.conftest import make_account

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: FlaskClient, username: str, password: str) -> str:
    """Sign in through the form; returns a CSRF token for later forms."""
    form = client.get("/ui/login").get_data(as_text=True)
    csrf = CSRF.search(form).group(1)
    response = client.post("/ui/login", data={"username": username, "password": password, "csrf_token": csrf})
    assert response.status_code == 302, response.get_data(as_text=True)
    return CSRF.search(client.get("/ui/").get_data(as_text=True)).group(1)


def catalogue(session: Session, files: int = 3) -> list[dict]:
    """RSE SITE (tier=1), scope ``ui``, a dataset ``ui:ds`` of ``files`` files on SITE."""
    add_rse(session, "SITE")
    add_rse_attribute(session, "SITE", "tier", "1")
    add_scope(session, "ui", "root")
    found = [{"scope": "ui", "name": f"f{i:04d}", "bytes": 10, "adler32": "0cc737eb"} for i in range(files)]
    add_replicas(session, "SITE", found, account="root")
    dids.add_collection(session, "ui", "ds", "DATASET", "root")
    did_content.attach(session, "ui", "ds", found)
    session.commit()
    return found


def test_pages_need_a_signed_in_account(client: FlaskClient) -> None:
    response = client.get("/ui/rules")
    assert response.status_code == 302 and response.headers["Location"].startswith("/ui/login")


def test_sign_in_sets_a_strict_http_only_cookie_and_shows_the_dashboard(
    client: FlaskClient, root: str
) -> None:
    form = client.get("/ui/login").get_data(as_text=True)
    bad = client.post(
        "/ui/login", data={"username": "root", "password": "wrong", "csrf_token": CSRF.search(form).group(1)}
    )
    assert bad.status_code == 401 and "Wrong username or password" in bad.get_data(as_text=True)
    response = client.post(
        "/ui/login",
        data={"username": "root", "password": ROOT_PASSWORD, "csrf_token": CSRF.search(form).group(1)},
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    page = client.get("/ui/")
    assert page.status_code == 200 and "Rules by state" in page.get_data(as_text=True)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.get_data(as_text=True)), "no inline script"
    partial = client.get("/ui/?partial=1").get_data(as_text=True)
    assert "Rules by state" in partial and "<html" not in partial


def test_secure_cookie_behind_tls(client: FlaskClient, root: str) -> None:
    form = client.get("/ui/login", base_url="https://localhost").get_data(as_text=True)
    response = client.post(
        "/ui/login",
        base_url="https://localhost",
        data={"username": "root", "password": ROOT_PASSWORD, "csrf_token": CSRF.search(form).group(1)},
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient, session: Session, root: str) -> None:
    sign_in(client, "root", ROOT_PASSWORD)
    catalogue(session)
    response = client.post(
        "/ui/rules/new", data={"did": "ui:ds", "copies": "1", "rse_expression": "SITE", "confirm": "yes"}
    )
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    session.rollback()
    assert not list(rules.list_rules(session, {"scope": "ui"}))


def test_rule_is_explained_before_it_is_created(client: FlaskClient, session: Session, root: str) -> None:
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    catalogue(session)
    session.rollback()
    form = {"did": "ui:ds", "copies": "1", "rse_expression": "tier=1", "csrf_token": csrf}
    explained = client.post("/ui/rules/new", data=form).get_data(as_text=True)
    assert "What this rule will do" in explained and "SITE" in explained and "3 already in place" in explained
    assert not list(rules.list_rules(session, {"scope": "ui"})), "explaining writes nothing"
    session.rollback()
    created = client.post("/ui/rules/new", data={**form, "confirm": "yes"})
    assert created.status_code == 302
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "3 OK, 0 replicating, 0 stuck" in page


def test_a_user_is_refused_admin_pages_and_approvals(
    client: FlaskClient, session: Session, root: str
) -> None:
    make_account(session, "alice", password="alice-password")
    catalogue(session)
    (rule_id,) = rules.add_rule(
        session, [{"scope": "ui", "name": "ds"}], "root", 1, "SITE", ask_approval=True
    )
    session.commit()
    csrf = sign_in(client, "alice", "alice-password")
    assert client.get("/ui/admin/accounts").status_code == 401
    refused = client.post(f"/ui/rules/{rule_id}/approve", data={"csrf_token": csrf})
    assert refused.status_code == 401 and "AccessDenied" in refused.get_data(as_text=True)
    assert client.post(f"/ui/rules/{rule_id}/delete", data={"csrf_token": csrf}).status_code == 401
    session.rollback()
    assert rules.get_rule(session, rule_id)["state"] == "WAITING_APPROVAL"


def test_an_admin_approves_and_denies(client: FlaskClient, session: Session, root: str) -> None:
    catalogue(session)
    first, second = (
        rules.add_rule(session, [{"scope": "ui", "name": "ds"}], "root", 1, expression, ask_approval=True)[0]
        for expression in ("SITE", "tier=1")
    )
    session.commit()
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    assert first[:8] in client.get("/ui/admin/accounts").get_data(as_text=True)
    assert client.post(f"/ui/rules/{first}/approve", data={"csrf_token": csrf}).status_code == 302
    assert (
        client.post(f"/ui/rules/{second}/deny", data={"csrf_token": csrf, "comment": "no"}).status_code == 302
    )
    session.rollback()
    assert rules.get_rule(session, first)["state"] != "WAITING_APPROVAL"
    assert second not in {rule["id"] for rule in rules.list_rules(session, {"scope": "ui"})}


def test_what_a_user_typed_is_escaped(client: FlaskClient, root: str) -> None:
    sign_in(client, "root", ROOT_PASSWORD)
    page = client.get("/ui/rules/new", query_string={"did": '"><script>alert(1)</script>'}).get_data(
        as_text=True
    )
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    found = client.get("/ui/scopes/nothing", query_string={"pattern": "<b>x</b>"})
    assert "<b>x</b>" not in found.get_data(as_text=True)


def test_suspending_the_account_ends_its_browser_session(
    client: FlaskClient, session: Session, root: str
) -> None:
    make_account(session, "bob", password="bob-password")
    sign_in(client, "bob", "bob-password")
    assert client.get("/ui/scopes").status_code == 200
    update_account(session, "bob", "status", "SUSPENDED")
    session.commit()
    assert client.get("/ui/scopes").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui"])
def test_sign_in_never_redirects_off_site(client: FlaskClient, root: str, target: str) -> None:
    form = client.get("/ui/login").get_data(as_text=True)
    response = client.post(
        "/ui/login",
        data={
            "username": "root",
            "password": ROOT_PASSWORD,
            "next": target,
            "csrf_token": CSRF.search(form).group(1),
        },
    )
    assert response.headers["Location"] == "/ui/"


def test_listings_are_paginated(client: FlaskClient, session: Session, root: str) -> None:
    catalogue(session, files=250)
    sign_in(client, "root", ROOT_PASSWORD)
    first = client.get("/ui/dids/ui/ds").get_data(as_text=True)
    assert first.count("ui:f0") == 100 and "page=1" in first
    last = client.get("/ui/dids/ui/ds?page=2").get_data(as_text=True)
    assert last.count("ui:f0") == 50 and "page=3" not in last
    browse = client.get("/ui/scopes/ui?pattern=f00*").get_data(as_text=True)
    assert browse.count(">f00") == 100
    file_page = client.get("/ui/dids/ui/f0001").get_data(as_text=True)
    assert "SITE" in file_page and "0cc737eb" in file_page


def test_the_sign_in_form_shares_the_login_lockout(
    db: str, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMGMT_AUTH_LOGIN_MAX_FAILURES", "2")
    reset_config()
    try:
        client = create_app(database_url=db).test_client()
        csrf = CSRF.search(client.get("/ui/login").get_data(as_text=True)).group(1)
        answers = [
            client.post("/ui/login", data={"username": "root", "password": "wrong", "csrf_token": csrf})
            for _ in range(3)
        ]
    finally:
        monkeypatch.undo()
        reset_config()
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert int(answers[2].headers["Retry-After"]) > 0
