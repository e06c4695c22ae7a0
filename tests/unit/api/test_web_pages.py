"""The web interface's search, publishing, admin and dashboard pages (Flask's test client)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core import did as dids
from datamgmt.core import metadata, pid, quota, subscription, transfer_stats, usage_history
from datamgmt.core import rule as rules
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request, RequestHistory
from datamgmt.core.db.types import utcnow
from datamgmt.core.rse import add_protocol, add_rse, get_rse_id, set_rse_limits, set_rse_usage
from datamgmt.core.rse_distance import set_distance
from tests.conftest import ROOT_PASSWORD
from tests.unit.api.conftest import make_account
from tests.unit.api.test_web_ui import catalogue, sign_in

BASE = "https://data.example.org"
JSON_LD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


@pytest.fixture
def base_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """Publishing needs ``[api] base_url``, as a deployment sets it."""
    monkeypatch.setenv("DATAMGMT_API_BASE_URL", BASE)
    reset_config()
    yield BASE
    monkeypatch.undo()
    reset_config()


def datasets(session: Session, count: int) -> None:
    """Datasets ``ui:run-NNNN`` with ``run`` = NNNN and ``kind`` = even/odd, in the catalogue's scope."""
    for index in range(count):
        dids.add_collection(session, "ui", f"run-{index:04d}", "DATASET", "root")
    metadata.set_dids_metadata_bulk(
        session,
        [
            {
                "scope": "ui",
                "name": f"run-{index:04d}",
                "meta": {"run": index, "kind": "even" if index % 2 == 0 else "odd"},
            }
            for index in range(count)
        ],
    )
    session.commit()


def names(page: str) -> list[str]:
    return re.findall(r">(run-\d{4}|f\d{4}|ds)</a>", page)


# --- search -------------------------------------------------------------------------------------
def test_search_by_metadata_filter_in_the_cli_dialect(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    datasets(session, 10)
    sign_in(client, "root", ROOT_PASSWORD)
    found = client.get("/ui/scopes/ui", query_string={"filter": "run>6"}).get_data(as_text=True)
    assert names(found) == ["run-0007", "run-0008", "run-0009"]
    either = client.get("/ui/scopes/ui", query_string={"filter": "run<2;run>=8,kind=odd"}).get_data(
        as_text=True
    )
    assert names(either) == ["run-0000", "run-0001", "run-0009"]
    by_name = client.get("/ui/scopes/ui", query_string={"pattern": "run-000*", "filter": "kind=even"})
    assert names(by_name.get_data(as_text=True)) == [
        "run-0000",
        "run-0002",
        "run-0004",
        "run-0006",
        "run-0008",
    ]
    files = client.get("/ui/scopes/ui", query_string={"filter": "bytes=10", "type": "file"}).get_data(
        as_text=True
    )
    assert names(files) == ["f0000", "f0001", "f0002"]
    collections = client.get("/ui/scopes/ui", query_string={"type": "collection"}).get_data(as_text=True)
    assert "ds" in names(collections) and "f0000" not in names(collections)


def test_a_bad_filter_is_a_clear_error_not_a_500(client: FlaskClient, session: Session, root: str) -> None:
    catalogue(session)
    sign_in(client, "root", ROOT_PASSWORD)
    response = client.get("/ui/scopes/ui", query_string={"filter": "run>>3"})
    assert response.status_code == 400 and "DIDFilterSyntaxError" in response.get_data(as_text=True)
    assert "<html" in response.get_data(as_text=True)


def test_filtered_search_is_paginated(client: FlaskClient, session: Session, root: str) -> None:
    catalogue(session)
    datasets(session, 230)
    sign_in(client, "root", ROOT_PASSWORD)
    first = client.get("/ui/scopes/ui", query_string={"filter": "run>=10"}).get_data(as_text=True)
    assert len(names(first)) == 100 and names(first)[0] == "run-0010"
    assert "filter=run%3E%3D10" in first and "page=1" in first, "the next page keeps the filter"
    last = client.get("/ui/scopes/ui", query_string={"filter": "run>=10", "page": 2}).get_data(as_text=True)
    assert names(last) == [f"run-{index:04d}" for index in range(210, 230)] and "page=3" not in last


# --- publishing ---------------------------------------------------------------------------------
CITATION = {
    "title": "Calibration <run> 7",
    "creator": "Doe, Jane; Roe, Richard",
    "publisher": "Example Lab",
    "publication_year": "2024",
    "subject": "physics; calibration",
    "description": "Raw data.",
    "rights": "CC-BY-4.0",
}


def test_edit_publish_and_withdraw_through_the_pages(
    client: FlaskClient, session: Session, root: str, base_url: str
) -> None:
    catalogue(session)
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    page = client.get("/ui/publishing/ui/ds").get_data(as_text=True)
    assert "Not published" in page and 'for="creator"' in page and 'for="resource_type_general"' in page
    refused = client.post("/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": "publish"})
    assert refused.status_code == 400 and "needs metadata creator, title, publisher" in refused.get_data(
        as_text=True
    )

    saved = client.post("/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": "save", **CITATION})
    assert saved.status_code == 302
    session.rollback()
    meta = metadata.get_metadata(session, "ui", "ds", plugin="JSON")
    assert meta["creator"] == "Doe, Jane; Roe, Richard" and meta["rights"] == "CC-BY-4.0"
    session.rollback()  # SQLite: the test's reader must not hold the lock the page's writer needs
    published = client.post("/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": "publish"})
    assert published.status_code == 302, published.get_data(as_text=True)
    session.rollback()
    share = pid.get_share(session, "ui", "ds")
    assert share["state"] == "PUBLISHED" and share["landing_url"] == f"{BASE}/pid/{share['pid']}"
    session.rollback()
    page = client.get("/ui/publishing/ui/ds").get_data(as_text=True)
    assert f'href="{share["landing_url"]}"' in page and "Withdraw" in page

    emptied = client.post(
        "/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": "save", **CITATION, "rights": ""}
    )
    assert emptied.status_code == 302
    session.rollback()
    assert "rights" not in metadata.get_metadata(session, "ui", "ds", plugin="JSON")
    session.rollback()
    assert (
        client.post("/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": "withdraw"}).status_code
        == 302
    )
    session.rollback()
    assert pid.get_share(session, "ui", "ds")["state"] == "WITHDRAWN"


def test_the_landing_page_has_json_ld_files_downloads_and_citations(
    client: FlaskClient, session: Session, root: str, base_url: str
) -> None:
    catalogue(session)
    metadata.set_metadata_bulk(session, "ui", "ds", {**CITATION, "title": "Run </script><b>7</b> & more"})
    share = pid.publish(session, "ui", "ds", "root", BASE)
    session.commit()
    response = client.get(f"/pid/{share['pid']}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<b>7</b>" not in page.split("</head>")[1]
    (block,) = JSON_LD.findall(page)
    assert "</script>" not in block and "<b>" not in block, "no value can close the data block"
    document = json.loads(block)
    assert document["@type"] == "Dataset" and document["name"] == "Run </script><b>7</b> & more"
    assert [person["name"] for person in document["creator"]] == ["Doe, Jane", "Roe, Richard"]
    assert document["publisher"]["name"] == "Example Lab" and document["license"] == "CC-BY-4.0"
    assert document["url"] == share["landing_url"] and len(document["distribution"]) == 3
    assert "datamgmt download ui:ds" in page and "rucio download ui:ds" in page
    assert "ui:f0002" in page and "SITE (AVAILABLE)" in page
    assert (
        "Doe, Jane; Roe, Richard (2024). Run &lt;/script&gt;&lt;b&gt;7&lt;/b&gt; &amp; more. Example Lab."
        in page
    )
    assert (
        "@misc{Doe2024," in page and "author = {Doe, Jane and Roe, Richard}" in page and "TY  - DATA" in page
    )
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'sha256-" in policy and "script-src" not in policy


def test_a_user_cannot_edit_or_publish_another_accounts_dataset(
    client: FlaskClient, session: Session, root: str, base_url: str
) -> None:
    catalogue(session)
    make_account(session, "alice", password="alice-password")
    csrf = sign_in(client, "alice", "alice-password")
    page = client.get("/ui/publishing/ui/ds").get_data(as_text=True)
    assert "Save metadata" not in page and "disabled" in page
    for action in ("save", "publish"):
        refused = client.post("/ui/publishing/ui/ds", data={"csrf_token": csrf, "action": action, **CITATION})
        assert refused.status_code == 401 and "AccessDenied" in refused.get_data(as_text=True)
    session.rollback()
    assert "title" not in metadata.get_metadata(session, "ui", "ds", plugin="JSON")


# --- admin --------------------------------------------------------------------------------------
def test_rse_pages_show_attributes_protocols_distances_usage_and_history(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    add_rse(session, "FAR")
    set_distance(session, "SITE", "FAR", 3)
    add_protocol(
        session,
        "SITE",
        {
            "scheme": "root",
            "hostname": "xrootd.example.org",
            "port": 1094,
            "prefix": "/data",
            "impl": "gfal2",
        },
    )
    set_rse_limits(session, "SITE", "MinFreeSpace", 2000)
    for used in (100, 400, 900):
        set_rse_usage(session, "SITE", "storage", used, 10_000 - used)
        session.flush()
        usage_history.snapshot(session)
        session.execute(
            update(usage_history.RSEUsageHistory)
            .where(usage_history.RSEUsageHistory.used == used)
            .values(updated_at=utcnow() - timedelta(hours=1000 - used))
        )
    session.commit()
    sign_in(client, "root", ROOT_PASSWORD)
    listing = client.get("/ui/admin/rses").get_data(as_text=True)
    assert (
        'href="/ui/admin/rses/SITE"' in listing and "<meter" in listing and "MinFreeSpace 2.0 kB" in listing
    )
    page = client.get("/ui/admin/rses/SITE").get_data(as_text=True)
    assert "xrootd.example.org" in page and "1094" in page and "tier" in page
    assert re.search(r"<td>to</td>\s*<td><a [^>]*>FAR</a></td><td>3</td>", page)
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    assert 'aria-label="Bytes used on SITE over time"' in svg and svg.count("<polyline") == 1
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    heights = [float(point.split(",")[1]) for point in points]
    assert len(points) == 3 and heights[0] > heights[1] > heights[2], "usage grew: the line rises"


def test_accounts_show_identities_and_quota_usage_against_limit(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    make_account(session, "alice", password="alice-password")
    quota.set_local_account_limit(session, "root", "SITE", 100)
    quota.set_global_account_limit(session, "root", "tier=1", 1000)
    rules.add_rule(session, [{"scope": "ui", "name": "ds"}], "root", 1, "SITE")
    session.commit()
    sign_in(client, "root", ROOT_PASSWORD)
    listing = client.get("/ui/admin/accounts").get_data(as_text=True)
    assert "alice (USERPASS)" in listing and 'href="/ui/accounts/alice"' in listing
    page = client.get("/ui/accounts/root").get_data(as_text=True)
    assert '<meter min="0" max="100" value="30"' in page and "30 Bytes of 100 Bytes" in page
    assert "tier=1" in page and '<meter min="0" max="1000" value="30"' in page


def test_subscriptions_page_lists_them_with_their_rules(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    subscription.add_subscription(
        session, "raw-to-site", "root", {"scope": ["ui"]}, [{"copies": 1, "rse_expression": "SITE"}]
    )
    session.commit()
    sign_in(client, "root", ROOT_PASSWORD)
    page = client.get("/ui/admin/subscriptions").get_data(as_text=True)
    assert "raw-to-site" in page and "ACTIVE" in page and "never" in page


def test_a_user_is_refused_every_admin_page_and_other_accounts(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    make_account(session, "alice", password="alice-password")
    sign_in(client, "alice", "alice-password")
    for path in (
        "/ui/admin/rses",
        "/ui/admin/rses/SITE",
        "/ui/admin/accounts",
        "/ui/admin/subscriptions",
        "/ui/accounts/root",
    ):
        refused = client.get(path)
        assert refused.status_code == 401 and "AccessDenied" in refused.get_data(as_text=True), path
    own = client.get("/ui/accounts/alice")
    assert own.status_code == 200 and "alice (USERPASS)" not in own.get_data(as_text=True)
    assert "<td>alice</td><td>USERPASS</td>" in own.get_data(as_text=True)
    nav = client.get("/ui/").get_data(as_text=True)
    assert "/ui/admin/rses" not in nav and "/ui/admin/subscriptions" not in nav


# --- dashboard and tape phases ------------------------------------------------------------------
def attempts(session: Session, rows: list[tuple[str, str, int, str | None]]) -> None:
    """Attempts SITE → FAR (or from no source) of ``(state, source, minutes ago, error)``, oldest
    first, as the conveyor records them."""
    site, far = get_rse_id(session, "SITE"), get_rse_id(session, "FAR")
    now = utcnow()
    for index, (state, source, minutes, error) in enumerate(rows):
        session.add(
            RequestHistory(
                request_id=f"r{index}",
                scope="ui",
                name="f0000",
                dest_rse_id=far,
                source_rse_id=site if source == "SITE" else None,
                state=RequestState[state],
                err_msg=error,
                created_at=now - timedelta(minutes=minutes),
            )
        )
    session.commit()


def test_dashboard_counts_transfers_and_groups_failures_by_rse_pair(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    add_rse(session, "FAR")
    attempts(
        session,
        [
            ("FAILED", "SITE", 2000, "two days ago"),
            ("DONE", "SITE", 300, None),
            ("FAILED", "SITE", 200, "timeout"),
            ("NO_SOURCES", "", 20, "no source"),
            ("FAILED", "SITE", 10, "old error"),
            ("DONE", "SITE", 5, None),
            ("FAILED", "SITE", 2, "Connection refused"),
        ],
    )
    counts = transfer_stats.transfer_counts(session)
    assert counts["done"] == {"hour": 1, "day": 2} and counts["failed"] == {"hour": 3, "day": 4}
    rate = transfer_stats.transfer_rate(session)
    assert len(rate) == 24 and sum(b["done"] for b in rate) == 2 and sum(b["failed"] for b in rate) == 4
    assert (rate[-1]["done"], rate[-1]["failed"]) == (1, 3), "the last hour's bucket"
    session.rollback()
    sign_in(client, "root", ROOT_PASSWORD)
    page = client.get("/ui/").get_data(as_text=True)
    assert "<td>1 / 2</td>" in page and "3 / 4</td>" in page
    assert re.search(r"<td>SITE</td><td>FAR</td><td>3</td><td>Connection refused</td>", page)
    assert re.search(r"<td>\(no source\)</td><td>FAR</td><td>1</td><td>no source</td>", page)
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    # One bar per hour that had attempts (plus the legend's swatch); the last hour's stack is the tallest.
    assert svg.count('class="done"') == 2 + 1 and svg.count('class="failed"') == 2 + 1
    last_failed = re.findall(r'<rect class="failed" x="[\d.]+" y="([\d.]+)"', svg)[-1]
    assert float(last_failed) == 8.0, "the stack of the busiest hour reaches the top"


def test_rule_page_shows_tape_phases(client: FlaskClient, session: Session, root: str) -> None:
    catalogue(session)
    add_rse(session, "TAPE", rse_type="TAPE")
    quota.set_local_account_limit(session, "root", "TAPE", -1)
    (rule_id,) = rules.add_rule(session, [{"scope": "ui", "name": "ds"}], "root", 1, "TAPE")
    tape = get_rse_id(session, "TAPE")
    for name, phase in (("f0000", "STAGING"), ("f0001", "ARCHIVING")):
        session.execute(
            update(Request)
            .where(Request.name == name, Request.dest_rse_id == tape)
            .values(state=RequestState.SUBMITTED, external_id=f"job-{name}", external_state=phase)
        )
    session.commit()
    sign_in(client, "root", ROOT_PASSWORD)
    page = client.get(f"/ui/rules/{rule_id}").get_data(as_text=True)
    assert "Staging (tape)" in page and "Archiving (tape)" in page
    assert re.search(r"<td>TAPE</td><td>0</td><td>1</td>\s*<td>1</td><td>1</td><td>0</td>", page)
    assert "SUBMITTED\n        (STAGING, tape)" in page
    quiet = rules.add_rule(session, [{"scope": "ui", "name": "f0002"}], "root", 1, "SITE")[0]
    session.commit()
    assert "(tape)" not in client.get(f"/ui/rules/{quiet}").get_data(as_text=True), (
        "no tape columns otherwise"
    )


def test_a_rules_lifetime_is_extended_and_its_history_shown(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    make_account(session, "alice", password="alice-password")
    (rule_id,) = rules.add_rule(session, [{"scope": "ui", "name": "ds"}], "root", 1, "SITE", lifetime=60)
    session.commit()
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    page = client.get(f"/ui/rules/{rule_id}").get_data(as_text=True)
    assert re.search(r"<td>[\d\-T:]+Z</td><td>OK</td>\s*<td>3/0/0</td>", page), "the rule's history"
    assert (
        client.post(
            f"/ui/rules/{rule_id}/lifetime", data={"csrf_token": csrf, "lifetime": "86400"}
        ).status_code
        == 302
    )
    session.rollback()
    expires = rules.get_rule(session, rule_id)["expires_at"]
    assert expires - utcnow() > timedelta(hours=23)
    session.rollback()
    bad = client.post(f"/ui/rules/{rule_id}/lifetime", data={"csrf_token": csrf, "lifetime": "soon"})
    assert bad.status_code == 400 and "whole number" in bad.get_data(as_text=True)
    client.post("/ui/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "alice", "alice-password")
    refused = client.post(f"/ui/rules/{rule_id}/lifetime", data={"csrf_token": csrf, "lifetime": ""})
    assert refused.status_code == 401 and "AccessDenied" in refused.get_data(as_text=True)
    session.rollback()
    assert rules.get_rule(session, rule_id)["expires_at"] == expires


def test_an_admin_sets_and_removes_a_quota_and_a_user_cannot(
    client: FlaskClient, session: Session, root: str
) -> None:
    catalogue(session)
    make_account(session, "alice", password="alice-password")
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    assert 'for="quota-bytes"' in client.get("/ui/accounts/alice").get_data(as_text=True)
    assert (
        client.post(
            "/ui/accounts/alice/quota", data={"csrf_token": csrf, "rse": "SITE", "bytes": "5000"}
        ).status_code
        == 302
    )
    page = client.get("/ui/accounts/alice").get_data(as_text=True)
    assert '<meter min="0" max="5000" value="0"' in page
    bad = client.post("/ui/accounts/alice/quota", data={"csrf_token": csrf, "rse": "SITE", "bytes": "lots"})
    assert bad.status_code == 400 and "whole number of bytes" in bad.get_data(as_text=True)
    client.post("/ui/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "alice", "alice-password")
    assert 'for="quota-bytes"' not in client.get("/ui/accounts/alice").get_data(as_text=True)
    refused = client.post("/ui/accounts/alice/quota", data={"csrf_token": csrf, "rse": "SITE", "bytes": "-1"})
    assert refused.status_code == 401 and "AccessDenied" in refused.get_data(as_text=True)
    session.rollback()
    assert quota.get_local_account_limits(session, "alice") == {get_rse_id(session, "SITE"): 5000}
    session.rollback()
    client.post("/ui/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "root", ROOT_PASSWORD)
    assert (
        client.post(
            "/ui/accounts/alice/quota", data={"csrf_token": csrf, "rse": "SITE", "bytes": ""}
        ).status_code
        == 302
    )
    session.rollback()
    assert quota.get_local_account_limits(session, "alice") == {}
