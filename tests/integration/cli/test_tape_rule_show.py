"""``datamgmt rule show`` tells when a rule's files were staged from and archived to tape (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from tests.integration.cli.conftest import Live
from tests.integration.conveyor.test_conveyor_posix import conveyor_env, drain  # noqa: F401 (fixture)
from tests.unit.conveyor.catalogue import tpc_domains

pytestmark = pytest.mark.integration


def test_rule_show_lists_staging_and_archive_times(live: Live, db: str, tmp_path: Path, conveyor_env) -> None:  # noqa: F811
    live.client.add_scope("root", "user.root")
    for name, rse_type in (("SITE-A", "DISK"), ("VAULT", "TAPE")):  # file:// storage that copies third-party
        live.client.add_rse(name, rse_type=rse_type)
        (tmp_path / name).mkdir()
        live.client.add_protocol(
            name,
            {
                "scheme": "file",
                "hostname": "localhost",
                "port": 0,
                "impl": "posix",
                "prefix": str(tmp_path / name),
                "domains": tpc_domains(),
            },
        )
        live.client.set_local_limit("root", name, -1)
    live.client.set_distance("SITE-A", "VAULT", 1)
    (tmp_path / "f1").write_bytes(b"tape" * 100)
    assert (
        live.user(
            "upload", "--rse", "SITE-A", "--scope", "user.root", "--no-rule", str(tmp_path / "f1")
        ).exit_code
        == 0
    )
    added = live.user("rule", "add", "user.root:f1", "--rses", "VAULT", "--json")
    assert added.exit_code == 0, added.output
    (rule_id,) = json.loads(added.stdout)["rule_ids"]
    conveyor_env(transfertool="local", local_archive_seconds="1")
    drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))

    shown = live.user("rule", "show", rule_id)
    assert shown.exit_code == 0, shown.output
    assert "tape: staging and archiving" in shown.stdout and "archived" in shown.stdout, shown.stdout
    (tape,) = json.loads(live.user("rule", "show", rule_id, "--json").stdout)["tape"]
    assert tape["rse"] == "VAULT" and tape["transfer_phase"] == "DONE"
    assert tape["archive_started_at"] and tape["archive_finished_at"] and tape["staging_started_at"] is None
