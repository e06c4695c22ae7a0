"""``datamgmt replica remove``: a user has the reaper delete its own copies that no rule
protects, and nothing else: locked copies, other accounts' copies and unknown ones are refused
with one line, and nothing is marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from datamgmt.client import Client
from datamgmt.client.uploads import items_for, upload
from datamgmt.daemons.reaper import Reaper
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


def uploaded(live: Live, tmp_path: Path, scope: str, name: str, *options: str) -> Path:
    """Upload one small file to LOCAL-A as the CLI's account; returns the file's path on storage."""
    source = tmp_path / "src" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(name.encode() * 100)
    result = live.user("upload", "--rse", "LOCAL-A", "--scope", scope, *options, str(source))
    assert result.exit_code == 0, result.output
    (replica,) = live.client.list_replicas([(scope, name)])
    return Path(replica["rses"]["LOCAL-A"][0].removeprefix("file://"))


def refused(result: Result, error_class: str) -> str:
    assert result.exit_code == 1 and error_class in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_own_unprotected_copy_is_reaped(live: Live, alice: Client, tmp_path: Path, db: str) -> None:
    path = uploaded(live, tmp_path, "user.alice", "loose.dat", "--no-rule")
    assert path.exists()
    removed = live.user("replica", "remove", "user.alice:loose.dat", "--rse", "LOCAL-A", "--json")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout) == {"rse": "LOCAL-A", "dids": ["user.alice:loose.dat"], "tombstoned": 1}
    for _ in range(3):
        Reaper(db_url=db).run_once(100)
    assert not path.exists()
    assert "loose.dat" not in live.user("replica", "list", "user.alice:loose.dat", "--all-states").stdout
    assert live.admin("check").exit_code == 0


def test_copies_a_rule_locks_are_never_marked(live: Live, alice: Client, tmp_path: Path, db: str) -> None:
    kept = uploaded(live, tmp_path, "user.alice", "kept.dat")  # with its rule on LOCAL-A
    loose = uploaded(live, tmp_path, "user.alice", "loose.dat", "--no-rule")
    message = refused(
        live.user("replica", "remove", "user.alice:loose.dat", "user.alice:kept.dat", "--rse", "LOCAL-A"),
        "ReplicaIsLocked",
    )
    assert "user.alice:kept.dat" in message and "1 rule lock" in message
    for _ in range(3):
        Reaper(db_url=db).run_once(100)
    assert kept.exists() and loose.exists()  # all or nothing: the unlocked one was not marked either


def test_other_accounts_and_unknown_copies_are_refused(
    live: Live, alice: Client, tmp_path: Path, db: str
) -> None:
    theirs = tmp_path / "theirs.dat"
    theirs.write_bytes(b"r" * 100)
    assert not upload(live.client, items_for([str(theirs)]), "user.root", "LOCAL-A").failed  # root's, no rule
    (replica,) = live.client.list_replicas([("user.root", "theirs.dat")])
    path = Path(replica["rses"]["LOCAL-A"][0].removeprefix("file://"))
    refused(live.user("replica", "remove", "user.root:theirs.dat", "--rse", "LOCAL-A"), "AccessDenied")
    refused(
        live.user("replica", "remove", "user.alice:ghost.dat", "--rse", "LOCAL-A"), "DataIdentifierNotFound"
    )
    mine = uploaded(live, tmp_path, "user.alice", "mine.dat", "--no-rule")
    refused(live.user("replica", "remove", "user.alice:mine.dat", "--rse", "NO-SUCH-RSE"), "RSENotFound")
    for _ in range(3):
        Reaper(db_url=db).run_once(100)
    assert path.exists() and mine.exists()


def test_a_datasets_copies_on_the_rse_are_removed_together(
    live: Live, alice: Client, tmp_path: Path, db: str
) -> None:
    paths = [
        uploaded(live, tmp_path, "user.alice", name, "--no-rule", "--dataset", "user.alice:set")
        for name in ("a.dat", "b.dat")
    ]
    removed = live.user("replica", "remove", "user.alice:set", "--rse", "LOCAL-A", "--json")
    assert removed.exit_code == 0, removed.output
    assert sorted(json.loads(removed.stdout)["dids"]) == ["user.alice:a.dat", "user.alice:b.dat"]
    for _ in range(3):
        Reaper(db_url=db).run_once(100)
    assert not any(path.exists() for path in paths)
    refused(live.user("replica", "remove", "user.alice:set", "--rse", "LOCAL-A"), "has no files on LOCAL-A")
    assert live.admin("check").exit_code == 0
