"""HTTP hardening: security headers on HTML (and every other) response, a finite gunicorn
timeout, and a bound on the streams slow readers can hold."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.config import Config
from datamgmt.core import rse

ROOT = Path(__file__).resolve().parents[2]


def _assert_secure(response) -> None:  # type: ignore[no-untyped-def]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


def test_html_and_error_responses_carry_csp_nosniff_and_frame_ancestors(
    client: FlaskClient, root_headers: dict[str, str]
) -> None:
    landing = client.get("/pid/21.T99999/nosuch", headers={"Accept": "text/html"})
    _assert_secure(landing)
    _assert_secure(client.get("/no/such/route"))
    _assert_secure(client.get("/rses/", headers={"X-Rucio-Auth-Token": "forged"}))
    created = client.post("/rses/SITE-A", json={}, headers=root_headers)
    assert created.mimetype == "text/html"
    _assert_secure(created)
    _assert_secure(client.get("/ping"))


def test_gunicorn_has_a_finite_timeout() -> None:
    settings = runpy.run_path(str(ROOT / "etc" / "gunicorn.conf.py"))
    assert 0 < settings["timeout"] <= 600


def test_streams_are_bounded_and_slots_return(
    db: str, session: Session, root_headers: dict[str, str]
) -> None:
    rse.add_rse(session, "SITE-A")
    session.commit()
    session.rollback()
    app = create_app(Config(environ={**os.environ, "DATAMGMT_API_MAX_STREAMS": "2"}), database_url=db)
    client = app.test_client()
    slow = [client.get("/rses/", headers=root_headers, buffered=False) for _ in range(2)]
    assert [r.status_code for r in slow] == [200, 200]
    refused = client.get("/rses/", headers=root_headers, buffered=False)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    # Other requests are still served while the slow readers hold their streams.
    assert client.get("/accounts/root", headers=root_headers).status_code == 200
    slow[0].get_data()
    slow[0].close()
    again = client.get("/rses/", headers=root_headers, buffered=False)
    assert again.status_code == 200
    for response in (again, slow[1]):
        response.close()
    assert client.get("/rses/", headers=root_headers).status_code == 200
