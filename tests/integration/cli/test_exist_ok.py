"""``--exist-ok`` on the create commands a script runs again (the README quickstart): what
exists as asked is success and changes nothing; something else under the same name is still
a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.cli.conftest import Live
from tests.integration.cli.test_user_commands import dataset, ok  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert all(word in result.stderr for word in words), result.stderr


def test_admin_creates_accept_what_exists_as_asked(live: Live, tmp_path: Path) -> None:
    for _ in range(2):
        ok(live.admin("account", "add", "carol", "--exist-ok"))
        ok(live.admin("scope", "add", "carol.data", "--account", "carol", "--exist-ok"))
        ok(live.admin("rse", "add", "TAPE-1", "--type", "TAPE", "--exist-ok"))
        ok(
            live.admin(
                "rse",
                "add-protocol",
                "TAPE-1",
                "--scheme",
                "file",
                "--prefix",
                str(tmp_path / "t"),
                "--exist-ok",
            )
        )
    again = json.loads(
        ok(live.admin("scope", "add", "carol.data", "--account", "carol", "--exist-ok", "--json"))
    )
    assert again == {"scope": "carol.data", "account": "carol", "existed": True}
    assert "already exists" in ok(live.admin("rse", "add", "TAPE-1", "--type", "TAPE", "--exist-ok"))
    assert len(live.client.get_rse("TAPE-1")["protocols"]) == 1

    refused(live.admin("scope", "add", "carol.data", "--account", "carol"), "Duplicate")  # without the flag
    refused(
        live.admin("scope", "add", "carol.data", "--account", "root", "--exist-ok"), "does not belong to root"
    )
    refused(live.admin("account", "add", "carol", "--type", "GROUP", "--exist-ok"), "as a USER account")
    refused(live.admin("rse", "add", "TAPE-1", "--exist-ok"), "another rse_type")
    refused(
        live.admin(
            "rse", "add-protocol", "TAPE-1", "--scheme", "file", "--prefix", "/elsewhere", "--exist-ok"
        ),
        "not with the prefix /elsewhere",
    )


def test_rule_add_and_publish_reuse_what_the_first_run_made(live: Live, dataset: str) -> None:  # noqa: F811
    first = ok(live.user("rule", "add", dataset, "--rses", "SITE-B", "--exist-ok")).strip()
    assert ok(live.user("rule", "add", dataset, "--rses", "SITE-B", "--exist-ok")).strip() == first
    refused(live.user("rule", "add", dataset, "--rses", "SITE-B"), "DuplicateRule")
    for key, value in (("title", "Runs"), ("creator", "Ada Lovelace"), ("publisher", "Example Lab")):
        ok(live.user("meta", "set", dataset, key, value))
    pid = json.loads(ok(live.user("publish", dataset, "--exist-ok", "--json")))["pid"]
    assert json.loads(ok(live.user("publish", dataset, "--exist-ok", "--json")))["pid"] == pid
    refused(live.user("publish", dataset), "already published")
