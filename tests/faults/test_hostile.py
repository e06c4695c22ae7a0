"""Two accounts attack each other through the REST API; the victim (alice) loses nothing.

bob, an ordinary user, tries: registering a replica of his own at alice's physical path and
purging it; purging alice's unprotected replica through a rule of his; a name built to make a
download write outside the target directory; and a subscription regex that backtracks
exponentially, to wedge the transmogrifier for everyone.  After each attack the service drains,
alice's bytes are checked on disk and through the catalogue, and the checker must find nothing.

Each attack is blocked by a fix of issue 15 (defects 2 to 5 and the linear-time subscription
regexes); an attack that succeeded would also spoil the checks of the fault tests after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from datamgmt.client import downloads
from datamgmt.client.client import Client
from datamgmt.exceptions import DatamgmtError
from datamgmt.rse.lfn2pfn import hash_path
from datamgmt.rse.protocols import create_protocol, select_protocol
from datamgmt.rse.upload import upload_file
from tests.faults.checks import check, quiesce
from tests.faults.site import SCOPE, SOURCE, Site
from tests.faults.workload import client_for


@pytest.fixture
def alice(cluster, site, workdir) -> Client:
    return client_for(site, cluster.api_url, "alice", workdir)


@pytest.fixture
def bob(cluster, site, workdir) -> Client:
    return client_for(site, cluster.api_url, "bob", workdir)


def put(
    client: Client, site: Site, rse: str, scope: str, name: str, data: bytes, workdir: Path
) -> dict[str, Any]:
    """Upload ``data`` as ``scope:name`` to ``rse`` and register it as ``client``'s account."""
    local = workdir / f"{scope}-{name.replace('/', '_')}"
    local.write_bytes(data)
    record = select_protocol(client.get_rse(rse)["protocols"], "write", "wan")
    protocol = create_protocol(record)
    pfn = protocol.lfns2pfns([{"scope": scope, "name": name}])[f"{scope}:{name}"]
    result = upload_file(protocol, str(local), pfn)
    item = {"scope": scope, "name": name, "bytes": result.size, "adler32": result.adler32, "md5": result.md5}
    client.add_replicas(rse, [item])
    return {**item, "path": site.rse_dir(rse) / hash_path(scope, name)}


def attempt(action) -> None:  # type: ignore[no-untyped-def]
    """An attack step; being refused is the point, so a refusal is not an error of the test."""
    try:
        action()
    except DatamgmtError:
        pass


def assert_intact(db_url: str, client: Client, victim: dict[str, Any], data: bytes, rse: str) -> None:
    """After the drain: the victim's bytes on disk, the replica AVAILABLE, the checker clean."""
    assert quiesce(db_url) == {}
    assert victim["path"].read_bytes() == data, "the victim's file was destroyed or overwritten"
    (line,) = list(client.list_replicas([(victim["scope"], victim["name"])], all_states=True))
    assert line["states"].get(rse) == "AVAILABLE", line
    assert check(db_url) == []


def test_replica_at_the_victims_path_then_purged(cluster, site, workdir, alice, bob):
    data = os.urandom(3000)
    victim = put(alice, site, "DST1", "user.alice", "precious", data, workdir)
    alice.add_rule([("user.alice", "precious")], 1, "DST1")
    path = "/" + hash_path("user.alice", "precious")
    decoy = {"scope": "user.bob", "bytes": victim["bytes"], "adler32": victim["adler32"]}
    attempt(lambda: bob.add_replicas("DST1", [{**decoy, "name": "decoy-path", "path": path}]))
    attempt(
        lambda: bob.add_replicas("DST1", [{**decoy, "name": "decoy-pfn", "pfn": f"file://{victim['path']}"}])
    )
    for name in ("decoy-path", "decoy-pfn"):
        for rule_id in _rules(bob, "user.bob", name, "DST1", purge=True):
            attempt(lambda rule_id=rule_id: drop_now(bob, rule_id))
    assert_intact(cluster.db_url, alice, victim, data, "DST1")


def test_rule_with_purge_on_the_victims_unprotected_replica(cluster, site, workdir, alice, bob):
    data = os.urandom(2000)
    victim = put(alice, site, "DST2", "user.alice", "loose", data, workdir)
    for rule_id in _rules(bob, "user.alice", "loose", "DST2", purge=True):
        attempt(lambda rule_id=rule_id: drop_now(bob, rule_id))
    assert_intact(cluster.db_url, alice, victim, data, "DST2")


def drop_now(client: Client, rule_id: str) -> None:
    """Delete a rule with purge and make it go now: the REST deletion is soft, so the owner
    also cuts its lifetime to zero and the judge-cleaner removes it at once."""
    client.delete_rule(rule_id, purge_replicas=True)
    client.update_rule(rule_id, lifetime=0)


def _rules(client: Client, scope: str, name: str, rse: str, *, purge: bool) -> list[str]:
    try:
        return client.add_rule([(scope, name)], 1, rse, purge_replicas=purge)
    except DatamgmtError:
        return []


def test_download_of_hostile_names_stays_inside_the_directory(cluster, site, workdir, alice):
    root = client_for(site, cluster.api_url, "root", workdir)
    outside = workdir / "outside"
    outside.mkdir()
    names = [f"{outside}/absolute", f"{outside}/.hidden", "/store/mc/legal"]  # legal names: '/' may lead
    root.add_did(SCOPE, "hostile-names", "DATASET")
    for name in names:
        put(root, site, SOURCE, SCOPE, name, b"not yours", workdir)
    root.attach(SCOPE, "hostile-names", [(SCOPE, name) for name in names])
    target = workdir / "downloads"
    target.mkdir()
    replicas = list(alice.list_replicas([(SCOPE, "hostile-names")]))
    attempt(lambda: downloads.download(alice, replicas, str(target)))
    assert list(outside.iterdir()) == [], "a download wrote outside its directory"
    written = [p for p in target.rglob("*") if p.is_file()]
    assert len(written) == len(names), "legal names ('/' may lead) are downloaded, inside the directory"
    assert all(os.path.realpath(p).startswith(str(target.resolve()) + os.sep) for p in written)


def test_backtracking_subscription_regex_does_not_wedge_the_transmogrifier(
    cluster, site, workdir, alice, bob
):
    rules = [{"copies": 1, "rse_expression": "DST3", "lifetime": None}]
    evil = {"filter": {"pattern": "(a+)+$"}, "replication_rules": rules}
    attempt(lambda: bob.call("POST", "/subscriptions/bob/evil", body={"options": evil}))
    attempt(lambda: bob.add_did("user.bob", "a" * 36 + "-", "DATASET"))
    watch = {"filter": {"scope": ["user.alice"], "pattern": "^watched-"}, "replication_rules": rules}
    alice.call("POST", "/subscriptions/alice/watch", body={"options": watch})
    try:
        data = os.urandom(1000)
        put(alice, site, "DST1", "user.alice", "watched-file", data, workdir)
        alice.add_did("user.alice", "watched-ds", "DATASET")
        alice.attach("user.alice", "watched-ds", [("user.alice", "watched-file")])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(alice.list_did_rules("user.alice", "watched-ds")):
            time.sleep(1)
        assert list(alice.list_did_rules("user.alice", "watched-ds")), (
            "alice's subscription never made its rule"
        )
    finally:
        root = client_for(site, cluster.api_url, "root", workdir)
        for account, name in (("bob", "evil"), ("alice", "watch")):
            attempt(
                lambda a=account, n=name: root.call(
                    "PUT", f"/subscriptions/{a}/{n}", body={"options": {"state": "INACTIVE"}}
                )
            )
        transmogrifier = cluster.daemons["transmogrifier"]
        transmogrifier.kill9()  # a wedged one never comes back by itself
        transmogrifier.start()
