"""A CLI that explains itself: refusals with numbers and hints, quotas read as people read them."""

from __future__ import annotations

import json
import os
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
    result = live.user("upload", "--rse", "LOCAL-A", "--scope", "user.alice", "--dataset", "user.alice:ds",
                       "--no-rule", str(data))
    assert result.exit_code == 0, result.output


def test_rule_explain_explains_a_quota_shortfall(live: Live, alice: Client, tmp_path: Path) -> None:
    _alice_dataset(live, tmp_path, 3)
    result = live.user("rule", "explain", "--rses", "LOCAL-A", "user.alice:ds")
    assert result.exit_code == 1
    assert "The rule cannot be placed: InsufficientAccountLimit" in result.stdout
    assert "'LOCAL-A' matches 1 RSEs, 0 usable, 1 needed" in result.stdout
    assert "quota: needs 6.0 MB, 5.0 MB left" in result.stdout
    assert "Traceback" not in result.output and "Error:" not in result.stderr

    explained = json.loads(live.user("rule", "explain", "--json", "--rses", "LOCAL-A", "user.alice:ds").stdout)
    assert explained["placeable"] is False and explained["usable_rses"] == 0
    assert explained["rses"][0] == {"rse": "LOCAL-A", "writable": True, "bytes_needed": 6_000_000,
                                    "quota_left": 5_000_000, "excluded_because": "quota: needs 6.0 MB, 5.0 MB left"}

    added = live.user("rule", "add", "--rses", "LOCAL-A", "user.alice:ds")
    assert added.exit_code == 1
    line = added.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("Error: InsufficientAccountLimit: ")
    assert "'LOCAL-A' matched 1 RSEs, 0 usable, 1 needed (LOCAL-A: quota: needs 6.0 MB, 5.0 MB left)" in line


def test_insufficient_target_rses_says_why_each_was_excluded(live: Live, alice: Client, tmp_path: Path) -> None:
    _alice_dataset(live, tmp_path, 1)
    add_posix_rse(live.client, "LOCAL-B", tmp_path / "local-b")
    live.client.set_rse_attribute("LOCAL-B", "type", "USERDISK")
    live.client.set_local_limit("alice", "LOCAL-B", 0)
    added = live.user("rule", "add", "--rses", "type=USERDISK", "--copies", "2", "user.alice:ds")
    assert added.exit_code == 1 and len(added.stderr.strip().splitlines()) == 1
    assert ("'type=USERDISK' matched 2 RSEs, 1 usable, 2 needed "
            "(LOCAL-A: usable; LOCAL-B: quota: needs 2.0 MB, 0 B left)") in added.stderr


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
