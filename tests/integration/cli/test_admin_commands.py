"""Every ``datamgmt-admin`` HTTP command against a live server, in table and ``--json`` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result.stdout


def test_accounts_identities_scopes_limits(live: Live) -> None:
    ok(live.admin("account", "add", "alice", "--email", "alice@example.org"))
    assert json.loads(ok(live.admin("account", "add", "bob", "--json")))["account"] == "bob"
    assert "alice" in ok(live.admin("account", "list"))
    assert {"alice", "bob", "root"} <= {
        json.loads(line)["account"] for line in ok(live.admin("account", "list", "--json")).splitlines()
    }
    ok(
        live.admin(
            "identity",
            "add",
            "--account",
            "alice",
            "--type",
            "userpass",
            "--id",
            "alice",
            "--password",
            "alice-secret-pw",
        )
    )
    assert (
        json.loads(
            ok(
                live.admin(
                    "identity",
                    "add",
                    "--account",
                    "bob",
                    "--type",
                    "oidc",
                    "--id",
                    "bob@https://issuer.example",
                    "--json",
                )
            )
        )["type"]
        == "OIDC"
    )
    assert "USERPASS:alice" in ok(live.admin("account", "show", "alice"))
    assert json.loads(ok(live.admin("account", "show", "alice", "--json")))["email"] == "alice@example.org"
    ok(
        live.admin(
            "identity", "delete", "--account", "bob", "--type", "oidc", "--id", "bob@https://issuer.example"
        )
    )
    assert (
        json.loads(
            ok(
                live.admin(
                    "identity",
                    "delete",
                    "--account",
                    "alice",
                    "--type",
                    "userpass",
                    "--id",
                    "alice",
                    "--json",
                )
            )
        )["deleted"]
        is True
    )
    ok(live.admin("account", "suspend", "bob"))
    assert json.loads(ok(live.admin("account", "show", "bob", "--json")))["status"] == "SUSPENDED"
    assert json.loads(ok(live.admin("account", "suspend", "alice", "--json")))["status"] == "SUSPENDED"

    ok(live.admin("scope", "add", "alice.data", "--account", "alice"))
    assert (
        json.loads(ok(live.admin("scope", "add", "bob.data", "--account", "bob", "--json")))["scope"]
        == "bob.data"
    )
    assert "alice.data" in ok(live.admin("scope", "list"))
    assert [
        json.loads(line)["scope"]
        for line in ok(live.admin("scope", "list", "--account", "bob", "--json")).splitlines()
    ] == ["bob.data"]

    ok(live.admin("rse", "add", "DISK-1"))
    ok(live.admin("limit", "set", "alice", "DISK-1", "10GB"))
    assert (
        json.loads(ok(live.admin("limit", "set", "alice", "DISK-1", "2TiB", "--json")))["bytes"]
        == 2 * 1024**4
    )
    ok(live.admin("limit", "set", "alice", "DISK-1", "--global", "1GB"))
    table = ok(live.admin("limit", "list", "alice"))
    assert "2.2 TB" in table and "1.0 GB" in table
    rows = [json.loads(line) for line in ok(live.admin("limit", "list", "alice", "--json")).splitlines()]
    assert {"scope": "local", "rse": "DISK-1", "bytes": 2 * 1024**4} in rows


def test_rses(live: Live, tmp_path: Path) -> None:
    ok(live.admin("rse", "add", "DISK-1"))
    assert json.loads(ok(live.admin("rse", "add", "TAPE-1", "--type", "TAPE", "--json")))["rse"] == "TAPE-1"
    ok(live.admin("rse", "add-protocol", "DISK-1", "--scheme", "file", "--prefix", str(tmp_path)))
    document = json.loads(
        ok(
            live.admin(
                "rse",
                "add-protocol",
                "TAPE-1",
                "--scheme",
                "root",
                "--hostname",
                "tape.example",
                "--port",
                "1094",
                "--prefix",
                "/tape",
                "--json",
            )
        )
    )
    assert document["domains"]["wan"]["read"] == 1
    ok(live.admin("rse", "set-attribute", "DISK-1", "--key", "tier", "--value", "1"))
    assert (
        json.loads(
            ok(live.admin("rse", "set-attribute", "TAPE-1", "--key", "tier", "--value", "2", "--json"))
        )["value"]
        == "2"
    )
    ok(live.admin("rse", "set-attribute", "DISK-1", "--key", "country", "--value", "XX"))
    ok(live.admin("rse", "delete-attribute", "DISK-1", "--key", "country"))
    assert json.loads(ok(live.admin("rse", "delete-attribute", "TAPE-1", "--key", "tier", "--json")))[
        "deleted"
    ]
    ok(live.admin("rse", "set-limit", "DISK-1", "MinFreeSpace", "1GB"))
    assert json.loads(ok(live.admin("rse", "set-limit", "TAPE-1", "MinFreeSpace", "5GB", "--json")))[
        "value"
    ] == (5 * 10**9)
    ok(live.admin("rse", "set-distance", "DISK-1", "TAPE-1", "3"))
    ok(live.admin("rse", "set-distance", "DISK-1", "TAPE-1", "2"))
    assert live.client.get_distance("DISK-1", "TAPE-1")[0]["distance"] == 2
    assert (
        json.loads(ok(live.admin("rse", "set-distance", "TAPE-1", "DISK-1", "2", "--json")))["distance"] == 2
    )
    ok(live.admin("rse", "set-availability", "TAPE-1", "--no-write"))
    assert json.loads(ok(live.admin("rse", "set-availability", "TAPE-1", "--read", "--json")))["read"] is True

    table = ok(live.admin("rse", "list"))
    assert "DISK-1" in table and "TAPE" in table
    rows = [json.loads(line) for line in ok(live.admin("rse", "list", "--json")).splitlines()]
    assert {row["rse"]: row["availability_write"] for row in rows} == {"DISK-1": True, "TAPE-1": False}
    assert "DISK-1" in ok(live.admin("rse", "list", "--expression", "tier=1"))
    shown = ok(live.admin("rse", "show", "DISK-1"))
    assert "tier" in shown and "MinFreeSpace" in shown and "1.0 GB" in shown and str(tmp_path) in shown
    document = json.loads(ok(live.admin("rse", "show", "DISK-1", "--json")))
    assert document["attributes"]["tier"] == "1" and document["protocols"][0]["scheme"] == "file"


def test_pid_services(live: Live) -> None:
    live.require("/pidservices/")
    ok(
        live.admin(
            "pid-service",
            "add",
            "hdl",
            "--type",
            "handle",
            "--prefix",
            "21.T11111",
            "--endpoint",
            "https://handle.example",
            "--username",
            "300:21.T11111/ADMIN",
            "--password",
            "secret",
        )
    )
    document = json.loads(
        ok(
            live.admin(
                "pid-service",
                "add",
                "dc",
                "--type",
                "datacite",
                "--prefix",
                "10.5072",
                "--endpoint",
                "https://datacite.example",
                "--username",
                "DEMO.DATAMGMT",
                "--password",
                "dc-password-value",
                "--json",
            )
        )
    )
    assert document["name"] == "dc" and "dc-password-value" not in json.dumps(document)
    assert "hdl" in ok(live.admin("pid-service", "list"))
    names = {
        json.loads(line)["name"] for line in ok(live.admin("pid-service", "list", "--json")).splitlines()
    }
    assert {"hdl", "dc"} <= names


def test_admin_errors(live: Live) -> None:
    result = live.admin("rse", "show", "NO-SUCH-RSE")
    assert result.exit_code == 1 and result.stderr.startswith("Error: RSENotFound: ")
    ok(live.admin("rse", "add", "DISK-1"))
    again = live.admin("rse", "add", "DISK-1")
    assert again.exit_code == 1 and again.stderr.startswith("Error: Duplicate: ")
    assert live.admin("rse", "set-availability", "DISK-1").exit_code == 2
