"""A CLI that explains itself: refusals with numbers and hints, quotas read as people read them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from datamgmt.client import Client
from tests.integration.cli.conftest import Live, add_posix_rse

pytestmark = pytest.mark.integration


def _alice_dataset(live: Live, tmp_path: Path, count: int) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(count):
        (data / f"part{index}").write_bytes(os.urandom(2_000_000))
    result = live.user(
        "upload",
        "--rse",
        "LOCAL-A",
        "--scope",
        "user.alice",
        "--dataset",
        "user.alice:ds",
        "--no-rule",
        str(data),
    )
    assert result.exit_code == 0, result.output


def test_rule_explain_explains_a_quota_shortfall(live: Live, alice: Client, tmp_path: Path) -> None:
    _alice_dataset(live, tmp_path, 3)
    result = live.user("rule", "explain", "--rses", "LOCAL-A", "user.alice:ds")
    assert result.exit_code == 1
    assert "The rule cannot be placed: InsufficientAccountLimit" in result.stdout
    assert "'LOCAL-A' matches 1 RSEs, 0 usable, 1 needed" in result.stdout
    assert "quota: needs 6.0 MB, 5.0 MB left" in result.stdout
    assert "Traceback" not in result.output and "Error:" not in result.stderr

    explained = json.loads(
        live.user("rule", "explain", "--json", "--rses", "LOCAL-A", "user.alice:ds").stdout
    )
    assert explained["placeable"] is False and explained["usable_rses"] == 0
    assert explained["rses"][0] == {
        "rse": "LOCAL-A",
        "writable": True,
        "bytes_needed": 6_000_000,
        "quota_left": 5_000_000,
        "excluded_because": "quota: needs 6.0 MB, 5.0 MB left",
    }

    added = live.user("rule", "add", "--rses", "LOCAL-A", "user.alice:ds")
    assert added.exit_code == 1
    line = added.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("Error: InsufficientAccountLimit: ")
    assert "'LOCAL-A' matched 1 RSEs, 0 usable, 1 needed (LOCAL-A: quota: needs 6.0 MB, 5.0 MB left)" in line


def test_insufficient_target_rses_says_why_each_was_excluded(
    live: Live, alice: Client, tmp_path: Path
) -> None:
    _alice_dataset(live, tmp_path, 1)
    add_posix_rse(live.client, "LOCAL-B", tmp_path / "local-b")
    live.client.set_rse_attribute("LOCAL-B", "type", "USERDISK")
    live.client.set_local_limit("alice", "LOCAL-B", 0)
    added = live.user("rule", "add", "--rses", "type=USERDISK", "--copies", "2", "user.alice:ds")
    assert added.exit_code == 1 and len(added.stderr.strip().splitlines()) == 1
    assert (
        "'type=USERDISK' matched 2 RSEs, 1 usable, 2 needed "
        "(LOCAL-A: usable; LOCAL-B: quota: needs 2.0 MB, 0 B left)"
    ) in added.stderr


def test_quota_never_reads_limit_zero_remaining_unlimited(live: Live, alice: Client, tmp_path: Path) -> None:
    data = tmp_path / "one"
    data.write_bytes(os.urandom(2_000_000))
    assert live.user("upload", "--rse", "LOCAL-A", "--scope", "user.alice", str(data)).exit_code == 0
    live.client.set_local_limit("alice", "LOCAL-A", 0)
    local = json.loads(live.user("quota", "--json").stdout)["local"]
    row = next(item for item in local if item["rse"] == "LOCAL-A")
    assert row["bytes_limit"] == 0 and row["bytes_remaining"] == 0 and row["note"] == "over by 2.0 MB"
    table = live.user("quota").stdout
    assert "unlimited" not in table and "over by 2.0 MB" in table


def test_users_list_rses_scopes_and_subscriptions(live: Live, alice: Client) -> None:
    assert "LOCAL-A" in live.user("rse", "list").stdout
    shown = live.user("rse", "show", "LOCAL-A")
    assert shown.exit_code == 0 and "USERDISK" in shown.stdout
    assert [
        json.loads(line)["scope"] for line in live.user("scope", "list", "--json").stdout.splitlines()
    ] == ["user.alice"]
    every = {
        json.loads(line)["scope"]
        for line in live.user("scope", "list", "--all", "--json").stdout.splitlines()
    }
    assert {"user.alice", "user.root"} <= every
    result = live.user("subscription", "list")
    assert result.exit_code == 0, result.output


def test_unreachable_server_and_missing_config_are_one_line(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = live.user("--config", str(tmp_path / "nowhere.cfg"), "whoami")
    assert missing.exit_code == 2 and "nowhere.cfg" in missing.stderr and "does not exist" in missing.stderr
    monkeypatch.setenv("DATAMGMT_CLIENT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DATAMGMT_CLIENT_TOKEN_FILE", str(tmp_path / "other-token"))
    down = live.user("whoami")
    assert down.exit_code == 1
    assert down.stderr.strip() == (
        "Error: ServiceUnavailable: Cannot reach http://127.0.0.1:9 (connection refused): "
        "is the server running there? Check [client] url in the client config or "
        "DATAMGMT_CLIENT_URL"
    )


def test_dates_are_iso_8601_and_rule_list_shows_size_and_creation(
    live: Live, alice: Client, tmp_path: Path
) -> None:
    data = tmp_path / "one"
    data.write_bytes(os.urandom(1_500_000))
    uploaded = json.loads(
        live.user("upload", "--rse", "LOCAL-A", "--scope", "user.alice", "--json", str(data)).stdout
    )
    table = live.user("rule", "list").stdout
    assert "1.5 MB" in table and "created" in table
    [rule] = [json.loads(line) for line in live.user("rule", "list", "--json").stdout.splitlines()]
    assert rule["id"] == uploaded["rule_id"] and rule["bytes"] == 1_500_000
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", rule["created_at"])
    shown = json.loads(live.user("did", "show", "user.alice:one", "--json").stdout)
    assert (
        re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", shown["created_at"])
        and shown["did_type"] == "FILE"
    )
    assert "UTC" not in live.user("rule", "show", rule["id"]).stdout


def test_rule_move_and_update_activity(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    data = tmp_path / "moved"
    data.write_bytes(os.urandom(1000))
    uploaded = json.loads(
        live.user("upload", "--rse", "SITE-A", "--scope", "user.root", "--json", str(data)).stdout
    )
    rule_id = uploaded["rule_id"]
    updated = live.user("rule", "update", rule_id, "--activity", "User Subscriptions")
    assert updated.exit_code == 0, updated.output
    assert live.client.get_rule(rule_id)["activity"] == "User Subscriptions"
    moved = json.loads(live.user("rule", "move", rule_id, "--rses", "SITE-B", "--json").stdout)
    child = live.client.get_rule(moved["child_rule_id"])
    assert (
        child["rse_expression"] == "SITE-B" and live.client.get_rule(rule_id)["child_rule_id"] == child["id"]
    )


def test_rule_history_of_a_did(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    if not any(route.startswith("/rules/") and route.endswith("/history") for route in live.routes):
        pytest.skip(
            "the rule history route (GET /rules/{scope}/{name}/history) is being built next to this CLI"
        )
    data = tmp_path / "kept"
    data.write_bytes(os.urandom(1000))
    rule_id = json.loads(
        live.user("upload", "--rse", "SITE-A", "--scope", "user.root", "--json", str(data)).stdout
    )["rule_id"]
    history = [
        json.loads(line)
        for line in live.user("rule", "history", "user.root:kept", "--json").stdout.splitlines()
    ]
    assert rule_id in {row["rule_id"] for row in history}


def test_did_remove_undo_and_lifetime_update(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    data = tmp_path / "temporary"
    data.write_bytes(b"x" * 10)
    assert (
        live.user(
            "upload",
            "--rse",
            "SITE-A",
            "--scope",
            "user.root",
            "--dataset",
            "user.root:tmpds",
            "--no-rule",
            str(data),
        ).exit_code
        == 0
    )
    removed = live.user("did", "remove", "user.root:tmpds")
    assert removed.exit_code == 0 and "will be deleted in 24 hours" in removed.stdout
    expires = json.loads(live.user("did", "show", "user.root:tmpds", "--json").stdout)["expired_at"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", expires)
    assert "lifetime" not in live.client.get_metadata("user.root", "tmpds", "JSON")
    assert live.user("did", "remove", "--undo", "user.root:tmpds").exit_code == 0
    assert json.loads(live.user("did", "show", "user.root:tmpds", "--json").stdout)["expired_at"] is None
    assert live.user("did", "update", "user.root:tmpds", "--lifetime", "3600").exit_code == 0
    assert json.loads(live.user("did", "show", "user.root:tmpds", "--json").stdout)["expired_at"] is not None
    bad = live.user("did", "update", "user.root:tmpds", "--lifetime", "soon")
    assert bad.exit_code == 1 and "lifetime must be a number of seconds or none" in bad.stderr
