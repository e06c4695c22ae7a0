"""Why did it fail? A rule to an RSE whose storage is broken shows the storage error in
``rule show``, ``datamgmt-admin transfers list --failed``, ``rule watch`` and the log, and the
rule keeps that cause after the repairer has run (issue 18)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.judge.repairer import Repairer
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


def test_broken_storage_is_named_everywhere(live: Live, db: str, broken, caplog) -> None:  # type: ignore[no-untyped-def]
    did, _ = broken
    added = live.user("rule", "add", did, "--rses", "BROKEN", "--json")
    assert added.exit_code == 0, added.output
    (rule_id,) = json.loads(added.stdout)["rule_ids"]
    daemons = (Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    with caplog.at_level(logging.WARNING):
        for _ in range(300):  # local copies run in the submitter's threads: give them time to fail
            for daemon in daemons:
                daemon.run_once(100)
            if live.client.get_rule(rule_id)["state"] == "STUCK":
                break
            time.sleep(0.1)
        stuck = live.client.get_rule(rule_id)
        # The operator takes the broken RSE out of writing; the repairer finds nowhere else to
        # place the file, and must not replace the storage error with its own.
        live.client.update_rse("BROKEN", availability_write=False)
        Repairer(db_url=db).run_once(10)
    rule = live.client.get_rule(rule_id)
    assert stuck["state"] == "STUCK" and "Not a directory" in stuck["error"], stuck
    assert rule["state"] == "STUCK" and "Not a directory" in rule["error"], rule
    assert rule["error"].startswith(stuck["error"][:60]) and "blocked for writing" in rule["error"], rule[
        "error"
    ]

    shown = live.user("rule", "show", rule_id, "--json")
    assert shown.exit_code == 0, shown.output
    (lock,) = json.loads(shown.stdout)["locks"]
    assert lock["rse"] == "BROKEN" and lock["attempts"] == 2 and "Not a directory" in lock["last_error"]
    human = live.user("rule", "show", rule_id)
    assert "locks not settled" in human.stdout and "Not a directory" in human.stdout

    listed = live.admin("transfers", "list", "--failed", "--rse", "BROKEN", "--json")
    assert listed.exit_code == 0, listed.output
    attempts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(attempts) == 2
    assert {(a["source_rse"], a["dest_rse"], a["transfertool"], a["state"]) for a in attempts} == {
        ("GOOD", "BROKEN", "local", "FAILED")
    }
    assert all("Not a directory" in a["err_msg"] and a["external_id"] for a in attempts)
    assert (
        live.admin("transfers", "list", "--failed", "--rse", "GOOD", "--rule", "0" * 32, "--json").stdout
        == ""
    )

    status = json.loads(live.admin("status", "--json").stdout)
    assert (
        status["stuck_rules"]["count"] == 1
        and "Not a directory" in status["stuck_rules"]["oldest"][0]["error"]
    )
    assert status["transfer_failures_last_hour"] == 2

    watched = live.user("rule", "watch", rule_id, "--timeout", "5")
    assert watched.exit_code == 1 and "Not a directory" in watched.stderr

    failures = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and "Not a directory" in r.getMessage() + json.dumps(getattr(r, "fields", {}), default=str)
    ]
    assert failures, [r.getMessage() for r in caplog.records]
    fields = failures[0].fields  # type: ignore[attr-defined]
    assert (
        fields["did"] == did and fields["rule"] == rule_id and fields["rse"] == "BROKEN" and fields["request"]
    )
