"""The web interface in a real browser: Debian's Chromium driven by Playwright, against a live server.

The server is the API app on a random loopback port (as `make run` serves it); the daemons that
move data run in this process between page loads.  Screenshots of the pages go to
``$DATAMGMT_UI_SCREENSHOTS`` when it is set (docs/ui.md shows the ones taken that way).
"""

from __future__ import annotations

import os
import shutil
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

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")


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
    for key, value in {"transfertool": "local", "max_retries": "1", "poll_interval": "0",
                       "submit_retry_seconds": "0"}.items():  # fmt: skip
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
        return session.scalar(select(func.count()).select_from(Request).where(
            Request.state.not_in([RequestState.DONE, RequestState.FAILED]))) > 0  # fmt: skip


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


def test_find_an_upload_and_protect_it_with_an_explained_rule(page: Any, live: Live, db: str, sites: Path) -> None:  # noqa: F811
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
    response = page.goto(f"{live.url}/ui/admin/accounts")
    assert response.status == 401 and "AccessDenied" in page.content()
    forged = page.evaluate(
        """async () => (await fetch('/ui/logout', {method: 'POST', body: new URLSearchParams({})})).status"""
    )
    assert forged == 400
    assert page.goto(f"{live.url}/ui/scopes").status == 200, "the CSRF-less POST changed nothing"
