"""``datamgmt-admin status`` and the admin commands of issue 18: rule approve/deny, rule list
--state/--rse, account unsuspend, rse delete."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from datamgmt.core import heartbeat
from datamgmt.core.db.session import transaction
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


def _upload(live: Live, tmp_path: Path, name: str, rse: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"data" * 100)
    result = live.user("upload", "--rse", rse, "--scope", "user.root", "--no-rule", str(path))
    assert result.exit_code == 0, result.output
    return f"user.root:{name}"


def test_approve_deny_and_list_by_state(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    site_a, site_b = two_rses
    first, second = _upload(live, tmp_path, "f1", site_a), _upload(live, tmp_path, "f2", site_a)
    ids = []
    for did in (first, second):
        added = live.user("rule", "add", did, "--rses", site_b, "--ask-approval", "--json")
        assert added.exit_code == 0, added.output
        ids += json.loads(added.stdout)["rule_ids"]
    waiting = live.user("rule", "list", "--state", "waiting_approval", "--json")
    assert sorted(json.loads(line)["id"] for line in waiting.stdout.splitlines()) == sorted(ids)

    assert live.user("rule", "approve", ids[0]).exit_code == 0
    assert live.client.get_rule(ids[0])["state"] == "INJECT"  # the judge-injector applies it
    denied = live.user("rule", "deny", ids[1], "--reason", "not needed")
    assert denied.exit_code == 0, denied.output
    by_rse = live.user("rule", "list", "--rse", site_b, "--json")
    assert [json.loads(line)["id"] for line in by_rse.stdout.splitlines()] == [ids[0]]
    again = live.user("rule", "approve", "f" * 32)
    assert again.exit_code == 1 and "RuleNotFound" in again.stderr


def test_account_unsuspend_and_rse_delete(live: Live, two_rses: tuple[str, str]) -> None:
    assert live.admin("account", "add", "jdoe").exit_code == 0
    assert live.admin("account", "suspend", "jdoe").exit_code == 0
    assert live.client.get_account("jdoe")["status"] == "SUSPENDED"
    unsuspended = live.admin("account", "unsuspend", "jdoe")
    assert unsuspended.exit_code == 0, unsuspended.output
    assert live.client.get_account("jdoe")["status"] == "ACTIVE"

    live.client.add_rse("SPARE")
    deleted = live.admin("rse", "delete", "SPARE", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "SPARE" not in {r["rse"] for r in live.client.list_rses()}


def test_status(live: Live, db: str, two_rses: tuple[str, str], tmp_path: Path) -> None:
    site_a, site_b = two_rses
    did = _upload(live, tmp_path, "f1", site_a)
    assert live.user("rule", "add", did, "--rses", site_b).exit_code == 0
    live.client.set_rse_limit(site_b, "MinFreeSpace", 10**12)
    with transaction(db) as session:
        for worker in ("w1", "w2"):
            heartbeat.beat(session, "conveyor-submitter", worker, "host-1", 4242)
        from datamgmt.core.deletion import refresh_storage_usage  # storage reports its free space

        refresh_storage_usage(session, live.client.get_rse(site_b)["id"], (10**9 + 10, 10**9))
    result = live.admin("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    submitter = report["daemons"]["conveyor-submitter"]
    assert submitter["alive"] == 2 and {i["host"] for i in submitter["instances"]} == {"host-1"}
    assert report["queues"]["requests_queued"] == 1 and report["rules"] == {"REPLICATING": 1}
    rse_b = next(r for r in report["rses"] if r["rse"] == site_b)
    assert rse_b["MinFreeSpace"] == 10**12 and rse_b["below_min_free"] is True
    human = live.admin("status")
    assert (
        human.exit_code == 0 and "conveyor-submitter" in human.stdout and "below MinFreeSpace" in human.stdout
    )

    assert live.admin("account", "add", "jdoe").exit_code == 0
    live.client.add_identity("jdoe", "jdoe", "USERPASS", password="secret-password")
    from datamgmt.client import Client, ClientConfig

    config = ClientConfig.load()
    user = Client(
        dataclasses.replace(
            config,
            account="jdoe",
            username="jdoe",
            password="secret-password",
            token_file=str(tmp_path / "jdoe-token"),
        )
    )
    with pytest.raises(Exception) as refused:
        user.status()
    assert getattr(refused.value, "error_class", "") == "AccessDenied"


def test_subscription_add_list_update(live: Live, two_rses: tuple[str, str]) -> None:
    _, site_b = two_rses
    rules = json.dumps([{"copies": 1, "rse_expression": site_b, "activity": "User Subscriptions"}])
    added = live.admin(
        "subscription",
        "add",
        "raw-to-b",
        "--filter",
        '{"scope": ["user.root"]}',
        "--rules",
        rules,
        "--comment",
        "every new file of user.root on SITE-B",
        "--json",
    )
    assert added.exit_code == 0, added.output
    subscription_id = json.loads(added.stdout)["id"]
    (listed,) = [
        json.loads(line) for line in live.admin("subscription", "list", "--json").stdout.splitlines()
    ]
    assert (listed["id"], listed["name"], listed["state"]) == (subscription_id, "raw-to-b", "ACTIVE")
    assert json.loads(listed["filter"]) == {"scope": ["user.root"]}

    updated = live.admin("subscription", "update", "raw-to-b", "--state", "inactive", "--comment", "paused")
    assert updated.exit_code == 0, updated.output
    (after,) = [
        json.loads(line)
        for line in live.admin("subscription", "list", "--name", "raw-to-b", "--json").stdout.splitlines()
    ]
    assert (after["state"], after["comments"]) == ("INACTIVE", "paused")
    bad = live.admin("subscription", "add", "broken", "--filter", "[1]", "--rules", rules)
    assert bad.exit_code == 2 and "JSON object" in bad.output
    assert live.admin("subscription", "update", "raw-to-b").exit_code == 2


def test_rule_show_of_another_accounts_rule(
    live: Live, two_rses: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules are readable by every account; their transfer details only by the owner and admins."""
    site_a, site_b = two_rses
    did = _upload(live, tmp_path, "f1", site_a)
    (rule_id,) = json.loads(live.user("rule", "add", did, "--rses", site_b, "--json").stdout)["rule_ids"]
    assert live.admin("account", "add", "jdoe").exit_code == 0
    live.client.add_identity("jdoe", "jdoe", "USERPASS", password="secret-password")
    for option, value in {
        "ACCOUNT": "jdoe",
        "USERNAME": "jdoe",
        "PASSWORD": "secret-password",
        "TOKEN_FILE": str(tmp_path / "jdoe-token"),
    }.items():
        monkeypatch.setenv(f"DATAMGMT_CLIENT_{option}", value)
    shown = live.user("rule", "show", rule_id, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == rule_id and json.loads(shown.stdout)["locks"] == []
    assert live.admin("transfers", "list").exit_code == 1  # admins only
