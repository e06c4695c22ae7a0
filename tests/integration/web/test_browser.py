"""The web interface in a real browser: Debian's Chromium driven by Playwright, against a live server.

The server is the API app on a random loopback port (as `make run` serves it); the daemons that
move data run in this process between page loads.  Screenshots of the pages go to
``$DATAMGMT_UI_SCREENSHOTS`` when it is set (docs/ui.md shows the ones taken that way).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from datamgmt.client.uploads import items_for, upload
from datamgmt.config import reset_config
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from tests.conftest import ROOT_PASSWORD
from tests.integration.cli.conftest import Live, add_tpc_rse, live  # noqa: F401 - the live server fixture
from tests.security.test_oidc_x509 import ISSUER
from tests.unit.api.test_web_oidc import Provider

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
Axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make system-deps installs it)")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def sites(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:  # noqa: F811
    """Scope user.root; GOOD holds user.root:f1 (uploaded with the CLI's client); TARGET is empty;
    BROKEN's storage prefix lies under a regular file."""
    for key, value in {
        "transfertool": "local",
        "max_retries": "1",
        "poll_interval": "0",
        "submit_retry_seconds": "0",
    }.items():
        monkeypatch.setenv(f"DATAMGMT_CONVEYOR_{key.upper()}", value)
    reset_config()
    live.client.add_scope("root", "user.root")
    for name in ("GOOD", "TARGET", "BROKEN"):
        add_tpc_rse(live, name, tmp_path / name.lower())
    (tmp_path / "broken").rmdir()
    (tmp_path / "broken").write_text("a file where the storage directory should be")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f1").write_bytes(b"x" * 1000)
    assert not upload(live.client, items_for([str(tmp_path / "data" / "f1")]), "user.root", "GOOD").failed
    yield tmp_path
    tools.reset()
    reset_config()


def transfers(db: str, rounds: int = 100) -> None:
    """What the conveyor daemons would do between two page loads, until no request is left to move
    (local copies run in the submitter's threads, so rounds are spaced out)."""
    daemons = (Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    for _ in range(rounds):
        if sum(daemon.run_once(100) or 0 for daemon in daemons) == 0 and not _in_flight(db):
            return
        time.sleep(0.1)


def _in_flight(db: str) -> bool:
    with transaction(db) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Request)
                .where(Request.state.not_in([RequestState.DONE, RequestState.FAILED]))
            )
            > 0
        )


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/ui/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui/")


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("DATAMGMT_UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_find_an_upload_and_protect_it_with_an_explained_rule(
    page: Any, live: Live, db: str, sites: Path
) -> None:  # noqa: F811
    sign_in(page, live.url, "root", ROOT_PASSWORD)
    assert page.get_by_role("heading", name="Rules by state").is_visible()
    screenshot(page, "dashboard")
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("link", name="user.root").click()
    page.get_by_role("link", name="f1", exact=True).click()
    assert "GOOD" in page.locator("table").first.inner_text() or "GOOD" in page.content()
    page.get_by_role("link", name="Add a rule on this DID").click()
    page.get_by_label("RSE expression").fill("TARGET")
    page.get_by_role("button", name="Explain").click()
    explained = page.get_by_role("region", name="What this rule will do")
    assert "TARGET" in explained.inner_text() and "1.0 kB" in explained.inner_text()
    page.get_by_role("button", name="Create the rule").click()
    assert "0 OK, 1 replicating" in page.content()
    transfers(db)
    page.reload()
    assert "1 OK, 0 replicating, 0 stuck" in page.content()
    screenshot(page, "rule")


def test_a_failed_transfer_shows_its_storage_error(page: Any, live: Live, db: str, sites: Path) -> None:  # noqa: F811
    (rule_id,) = live.client.add_rule([("user.root", "f1")], 1, "BROKEN")
    transfers(db)
    sign_in(page, live.url, "root", ROOT_PASSWORD)
    page.goto(f"{live.url}/ui/rules/{rule_id}")
    assert "STUCK" in page.content() and "Not a directory" in page.content()
    page.goto(f"{live.url}/ui/")
    assert "Not a directory" in page.get_by_role("heading", name="Transfers").locator("..").inner_text()


def test_an_admin_approves_a_rule(page: Any, live: Live, sites: Path) -> None:  # noqa: F811
    (rule_id,) = live.client.add_rule([("user.root", "f1")], 1, "TARGET", ask_approval=True)
    sign_in(page, live.url, "root", ROOT_PASSWORD)
    page.get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name=rule_id[:8]).click()
    page.get_by_role("button", name="Approve").click()
    assert live.client.get_rule(rule_id)["state"] != "WAITING_APPROVAL"


def test_a_user_is_refused_admin_pages_and_csrf_less_posts(page: Any, live: Live, sites: Path) -> None:  # noqa: F811
    live.client.add_account("alice", "USER", "alice@example.org")
    live.client.add_identity("alice", "alice", "USERPASS", "alice@example.org", password="alice-password")
    sign_in(page, live.url, "alice", "alice-password")
    assert page.get_by_role("link", name="Accounts").count() == 0
    for path in (
        "/ui/admin/accounts",
        "/ui/admin/rses",
        "/ui/admin/rses/GOOD",
        "/ui/admin/subscriptions",
        "/ui/accounts/root",
    ):
        response = page.goto(f"{live.url}{path}")
        assert response.status == 401 and "AccessDenied" in page.content(), path
    assert page.goto(f"{live.url}/ui/accounts/alice").status == 200, "its own account page"
    forged = page.evaluate(
        """async () => (await fetch('/ui/logout', {method: 'POST', body: new URLSearchParams({})})).status"""
    )
    assert forged == 400
    assert page.goto(f"{live.url}/ui/scopes").status == 200, "the CSRF-less POST changed nothing"


def test_publish_a_dataset_and_open_its_landing_page(page: Any, live: Live, sites: Path) -> None:  # noqa: F811
    live.client.add_did("user.root", "calibration", "DATASET")
    live.client.attach("user.root", "calibration", [("user.root", "f1")])
    sign_in(page, live.url, "root", ROOT_PASSWORD)
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("link", name="user.root").click()
    page.get_by_label("Metadata filter").fill("type=dataset")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="calibration", exact=True).click()
    page.get_by_role("link", name="Publishing and citation metadata").click()
    page.get_by_label("Title").fill("Calibration run 7")
    page.get_by_label("Creators").fill("Doe, Jane; Roe, Richard")
    page.get_by_label("Publisher").fill("Example Lab")
    page.get_by_label("Resource type (DataCite)").select_option("Dataset")
    page.get_by_role("button", name="Save metadata").click()
    page.get_by_role("button", name="Publish", exact=True).click()
    assert "PUBLISHED" in page.get_by_role("region", name="Publication").inner_text()
    page.get_by_role("link", name=f"{live.url}/pid/").click()
    assert page.get_by_role("heading", name="Calibration run 7").is_visible()
    document = json.loads(page.locator('script[type="application/ld+json"]').text_content())
    assert document["@type"] == "Dataset" and document["name"] == "Calibration run 7"
    assert [person["name"] for person in document["creator"]] == ["Doe, Jane", "Roe, Richard"]
    assert document["distribution"][0]["name"] == "user.root:f1"
    body = page.locator("body").inner_text()
    assert (
        "datamgmt download user.root:calibration" in body and "rucio download user.root:calibration" in body
    )
    assert "GOOD (AVAILABLE)" in body and "Doe, Jane; Roe, Richard" in body and "@misc{Doe" in body
    screenshot(page, "landing")
    assert not serious_violations(page), "the landing page passes the axe-core audit too"


#: The pages the audit visits, as root (paths on the live server).
AUDITED = (
    "/ui/login",
    "/ui/",
    "/ui/scopes",
    "/ui/scopes/user.root",
    "/ui/dids/user.root/f1",
    "/ui/rules",
    "/ui/rules/new",
    "/ui/admin/rses",
    "/ui/admin/rses/GOOD",
    "/ui/admin/accounts",
    "/ui/accounts/root",
    "/ui/admin/subscriptions",
    "/ui/publishing/user.root/audited",
)


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page, one line each."""
    results = Axe().run(page)
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): "
        f"{[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def test_the_main_pages_pass_an_axe_core_audit(page: Any, live: Live, sites: Path) -> None:  # noqa: F811
    live.client.add_did("user.root", "audited", "DATASET")
    (rule_id,) = live.client.add_rule([("user.root", "f1")], 1, "TARGET")
    page.goto(f"{live.url}/ui/login")
    found = serious_violations(page)
    sign_in(page, live.url, "root", ROOT_PASSWORD)
    for path in (*AUDITED[1:], f"/ui/rules/{rule_id}"):
        page.goto(f"{live.url}{path}")
        found += serious_violations(page)
    assert not found, "\n".join(found)


def test_pages_fit_a_phone_width(chromium: Any, live: Live, sites: Path) -> None:  # noqa: F811
    context = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    phone = context.new_page()
    try:
        sign_in(phone, live.url, "root", ROOT_PASSWORD)
        for path in AUDITED[1:-1]:
            phone.goto(f"{live.url}{path}")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
        phone.goto(f"{live.url}/ui/")
        screenshot(phone, "dashboard-phone")
    finally:
        context.close()


@pytest.fixture
def oidc_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    """An OIDC provider on another site (``localhost``; the server is ``127.0.0.1``), configured
    before the live server starts; identity ``alice-sub@ISSUER`` is mapped to alice by the test."""
    provider = Provider(host="localhost")
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    settings = {
        "AUTH_OIDC_ISSUER": ISSUER,
        "AUTH_OIDC_JWKS_URL": f"{provider.url}/jwks",
        "AUTH_OIDC_AUDIENCE": "datamgmt",
        "WEB_OIDC_CLIENT_ID": "datamgmt-web",
        "WEB_OIDC_AUTHORIZE_URL": f"{provider.url}/authorize",
        "WEB_OIDC_TOKEN_URL": f"{provider.url}/token",
    }
    for name, value in settings.items():
        monkeypatch.setenv(f"DATAMGMT_{name}", value)
    reset_config()
    yield provider
    provider.shutdown()
    provider.server_close()


def test_sign_in_with_oidc_across_sites(page: Any, oidc_provider: Provider, live: Live) -> None:  # noqa: F811
    live.client.add_account("alice", "USER", "alice@example.org")
    live.client.add_identity("alice", f"alice-sub@{ISSUER}", "OIDC", "alice@example.org")
    page.goto(f"{live.url}/ui/")
    page.get_by_role("link", name="Sign in with your organisation (OIDC)").click()
    # The way back starts on the provider's site: the browser sends no SameSite=Strict cookie with it.
    page.get_by_role("link", name="Agree").click()
    page.wait_for_url(f"{live.url}/ui/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.locator("header").inner_text().count("alice") == 1
