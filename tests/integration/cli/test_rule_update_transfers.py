"""``rule update --boost-rule`` and ``--source-rses``: how a rule's transfers are retried and
where they read from, through the CLI and Rucio's ``PUT /rules/<id>`` options."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from datamgmt.client.uploads import items_for, upload
from datamgmt.config import reset_config
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.judge.repairer import Repairer
from datamgmt.exceptions import UnsupportedOperation
from tests.integration.cli.conftest import Live, add_tpc_rse

pytestmark = pytest.mark.integration


def convey_until(live: Live, db: str, rule_id: str, state: str) -> dict:  # type: ignore[type-arg]
    """Run the conveyor (local copies run in the submitter's threads) until the rule is in ``state``."""
    daemons = (Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    for _ in range(300):
        for daemon in daemons:
            daemon.run_once(100)
        rule = live.client.get_rule(rule_id)
        if rule["state"] == state:
            return rule
        time.sleep(0.1)
    raise AssertionError(f"rule {rule_id} is {rule['state']}, not {state}")


def test_boost_retries_a_stuck_rule_without_waiting_for_the_back_off(
    live: Live, db: str, broken: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    did, storage = broken
    added = live.user("rule", "add", did, "--rses", "BROKEN", "--json")
    assert added.exit_code == 0, added.output
    (rule_id,) = json.loads(added.stdout)["rule_ids"]
    convey_until(live, db, rule_id, "STUCK")
    monkeypatch.setenv("DATAMGMT_JUDGE_REPAIR_BACKOFF_SECONDS", "3600")
    reset_config()
    Repairer(db_url=db).run_once(10)  # retried where it stands, fails again: held for an hour
    convey_until(live, db, rule_id, "STUCK")
    (storage / "broken").unlink()  # the operator fixes the storage
    (storage / "broken").mkdir()
    Repairer(db_url=db).run_once(10)
    assert live.client.get_rule(rule_id)["state"] == "STUCK"  # the back-off holds it

    held = live.client.get_rule(rule_id)
    boosted = live.user("rule", "update", rule_id, "--boost-rule")
    assert boosted.exit_code == 0, boosted.output
    moved = parsedate_to_datetime(held["updated_at"]) - parsedate_to_datetime(
        live.client.get_rule(rule_id)["updated_at"]
    )
    assert timedelta(hours=23) < moved <= timedelta(days=1)  # first in the repairer's queue, as in Rucio
    Repairer(db_url=db).run_once(10)
    assert live.client.get_rule(rule_id)["state"] == "REPLICATING"
    rule = convey_until(live, db, rule_id, "OK")
    assert rule["locks_ok_cnt"] == 1 and rule["locks_stuck_cnt"] == 0
    assert live.admin("check").exit_code == 0


def test_boost_of_a_rule_that_is_not_stuck_changes_nothing(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"y" * 10)
    assert not upload(live.client, items_for([str(tmp_path / "f")]), "user.root", "SITE-A").failed
    (rule_id,) = live.client.add_rule([("user.root", "f")], 1, "SITE-A")
    before = live.client.get_rule(rule_id)
    live.client.update_rule(rule_id, boost_rule=True)  # rucio-clients: {"options": {"boost_rule": true}}
    after = live.client.get_rule(rule_id)
    assert (after["state"], after["locks_ok_cnt"]) == (before["state"], before["locks_ok_cnt"]) == ("OK", 1)


@pytest.fixture
def three_sites(live: Live, tmp_path: Path, local_conveyor: None) -> str:
    """A file on NEAR and FAR; DEST is 1 away from NEAR and 5 from FAR, so transfers prefer NEAR."""
    live.client.add_scope("root", "user.root")
    for name in ("NEAR", "FAR", "DEST"):
        add_tpc_rse(live, name, tmp_path / name.lower())
    live.client.set_distance("NEAR", "DEST", 1)
    live.client.set_distance("FAR", "DEST", 5)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f2").write_bytes(b"z" * 2000)
    for rse in ("NEAR", "FAR"):
        assert not upload(live.client, items_for([str(tmp_path / "data" / "f2")]), "user.root", rse).failed
    return "user.root:f2"


def test_source_rses_changes_where_queued_transfers_read_from(live: Live, db: str, three_sites: str) -> None:
    added = live.user("rule", "add", three_sites, "--rses", "DEST", "--json")
    (rule_id,) = json.loads(added.stdout)["rule_ids"]
    updated = live.user("rule", "update", rule_id, "--source-rses", "FAR")
    assert updated.exit_code == 0, updated.output
    assert live.client.get_rule(rule_id)["source_replica_expression"] == "FAR"
    commented = live.user("rule", "update", rule_id, "--comment", "from FAR")  # leaves the sources alone
    assert commented.exit_code == 0, commented.output
    assert live.client.get_rule(rule_id)["source_replica_expression"] == "FAR"
    convey_until(live, db, rule_id, "OK")
    listed = live.admin("transfers", "list", "--rule", rule_id, "--json")
    assert [json.loads(line)["source_rse"] for line in listed.stdout.splitlines()] == ["FAR"]

    cleared = live.user("rule", "update", rule_id, "--source-rses", "none")
    assert cleared.exit_code == 0, cleared.output
    assert live.client.get_rule(rule_id)["source_replica_expression"] is None


def test_source_rses_refuses_an_expression_without_rses(live: Live, three_sites: str) -> None:
    (rule_id,) = live.client.add_rule([("user.root", "f2")], 1, "DEST")
    for expression in ("NOWHERE", "NEAR&FAR", "(("):
        refused = live.user("rule", "update", rule_id, "--source-rses", expression)
        assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.output
        assert "InvalidSourceReplicaExpression" in refused.stderr, refused.stderr
    assert live.client.get_rule(rule_id)["source_replica_expression"] is None


def test_owners_may_boost_and_choose_sources_of_their_own_rules_only(
    live: Live, alice, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "g").write_bytes(b"a" * 10)
    assert not upload(alice, items_for([str(tmp_path / "g")]), "user.alice", "LOCAL-A").failed
    (own,) = alice.add_rule([("user.alice", "g")], 1, "LOCAL-A")
    live.client.update_rule(
        own, locked=True
    )  # an admin locked it: the owner may still boost and choose sources
    assert live.user("rule", "update", own, "--boost-rule", "--source-rses", "LOCAL-A").exit_code == 0
    assert live.user("rule", "update", own, "--comment", "mine").exit_code == 1  # locked: as before

    (tmp_path / "h").write_bytes(b"b" * 10)
    assert not upload(live.client, items_for([str(tmp_path / "h")]), "user.root", "LOCAL-A").failed
    (roots,) = live.client.add_rule([("user.root", "h")], 1, "LOCAL-A")
    for option in (("--boost-rule",), ("--source-rses", "LOCAL-A")):
        refused = live.user("rule", "update", roots, *option)
        assert refused.exit_code == 1 and "AccessDenied" in refused.stderr, refused.output


def test_suspend_holds_a_rule_off_the_repairer_and_stuck_resumes_it(
    live: Live, db: str, broken: tuple[str, Path]
) -> None:
    """``rule update --suspend`` (Rucio's ``state`` option): the repairer leaves the rule alone,
    even once its storage works again; ``--stuck`` hands it back, and it ends OK."""
    did, storage = broken
    added = live.user("rule", "add", did, "--rses", "BROKEN", "--json")
    (rule_id,) = json.loads(added.stdout)["rule_ids"]
    convey_until(live, db, rule_id, "STUCK")
    suspended = live.user("rule", "update", rule_id, "--suspend")
    assert suspended.exit_code == 0, suspended.output
    (storage / "broken").unlink()  # the storage is fixed, but the rule is suspended
    (storage / "broken").mkdir()
    Repairer(db_url=db).run_once(10)
    assert live.client.get_rule(rule_id)["state"] == "SUSPENDED"
    assert live.admin("check").exit_code == 0

    both = live.user("rule", "update", rule_id, "--suspend", "--stuck")
    assert both.exit_code == 2 and "not both" in both.output
    with pytest.raises(UnsupportedOperation, match="cancel_requests is not supported"):
        live.client.update_rule(rule_id, state="STUCK", cancel_requests=True)

    resumed = live.user("rule", "update", rule_id, "--stuck")
    assert resumed.exit_code == 0, resumed.output
    assert live.client.get_rule(rule_id)["state"] == "STUCK"
    Repairer(db_url=db).run_once(10)
    rule = convey_until(live, db, rule_id, "OK")
    assert rule["locks_ok_cnt"] == 1 and rule["locks_stuck_cnt"] == 0
    assert live.admin("check").exit_code == 0


def test_child_rule_id_hands_a_rule_over_and_none_takes_it_back(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"c" * 10)
    assert not upload(live.client, items_for([str(tmp_path / "f")]), "user.root", "SITE-A").failed
    (parent,) = live.client.add_rule([("user.root", "f")], 1, "SITE-A", lifetime=3600)
    (child,) = live.client.add_rule([("user.root", "f")], 1, "SITE-B")  # a transfer: not OK yet
    handed = live.user("rule", "update", parent, "--child-rule-id", child)
    assert handed.exit_code == 0, handed.output
    assert live.client.get_rule(parent)["child_rule_id"] == child
    taken_back = live.user("rule", "update", parent, "--child-rule-id", "none")
    assert taken_back.exit_code == 0, taken_back.output
    rule = live.client.get_rule(parent)
    assert (rule["child_rule_id"], rule["expires_at"]) == (None, None)
    assert live.admin("check").exit_code == 0
