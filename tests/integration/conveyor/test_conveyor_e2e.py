"""Rules through the whole conveyor onto real storage: XRootD (root://), XrdHttp (davs://), S3 (moto).

A rule queues requests; submitter → transfer tool (FTS3 double or the local tool) → poller →
finisher carry them out until the rule is OK, and every replica is then checked on storage
(adler32; md5 on S3, which has no adler32).  Then the failure paths, the judge-repairer picking
up a STUCK rule, and two of each conveyor daemon racing on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from datamgmt.core import did, did_content, replica, rse, rse_distance
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import RSE, Lock, Replica, Request, Rule, Source
from datamgmt.core.db.session import transaction
from datamgmt.core.rule import add_rule
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.judge.repairer import Repairer
from datamgmt.rse.lfn2pfn import hash_path
from datamgmt.transfertool import gfal2copy
from datamgmt.transfertool.local import LocalTransferTool
from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.integration.conveyor.test_conveyor_posix import conveyor_env, drain  # noqa: F401 (fixture)
from tests.unit.conveyor.catalogue import (
    SCOPE,
    FileSpec,
    add_posix_rse,
    ensure_scope,
    random_file,
    tpc_domains,
)

from .conftest import S3_BUCKET

pytestmark = [pytest.mark.integration, pytest.mark.long]

#: Files in the end-to-end dataset, and in the smaller one that also goes to davs:// (see below).
FILES = int(os.environ.get("CONVEYOR_E2E_FILES", "200"))
DAVS_FILES = int(os.environ.get("CONVEYOR_E2E_DAVS_FILES", "20"))


@dataclass(frozen=True)
class Endpoint:
    """A destination RSE on real storage and how to find a file on it without the conveyor's help."""

    rse: str
    base: str  # scheme://host:port followed by the prefix
    algorithm: str  # what the storage can checksum

    def url(self, name: str) -> str:
        return f"{self.base}/{hash_path(SCOPE, name)}"


@dataclass
class Site:
    src: Path
    endpoints: dict[str, Endpoint]


def _add_storage_rse(session, name: str, scheme: str, host_port: str, prefix: str, impl: str) -> Endpoint:
    host, port = host_port.rsplit(":", 1)
    rse.add_rse(session, name)
    rse.add_protocol(
        session,
        name,
        {
            "scheme": scheme,
            "hostname": host,
            "port": int(port),
            "prefix": prefix,
            "impl": impl,
            "domains": tpc_domains(),
        },
    )
    slash = "/" if scheme == "root" else ""  # xroot paths are absolute after a double slash
    return Endpoint(
        name, f"{scheme}://{host_port}/{slash}{prefix.strip('/')}", "MD5" if scheme == "s3" else "ADLER32"
    )


def _host_port(url: str) -> str:
    return url.split("://", 1)[1].strip("/")


@pytest.fixture
def site(session, root, tmp_path, storage) -> Site:
    """A posix source RSE SRC and destinations XRD (root://), DAVS (davs://) and S3 (s3://),
    each under a fresh prefix so runs never see each other's files."""
    run = uuid.uuid4().hex[:10]
    add_posix_rse(session, "SRC", tmp_path / "SRC")
    endpoints = {
        "XRD": _add_storage_rse(
            session, "XRD", "root", _host_port(storage["XROOTD_URL"]), f"/conveyor/{run}/XRD", "gfal"
        ),
        "DAVS": _add_storage_rse(
            session, "DAVS", "davs", _host_port(storage["DAVS_URL"]), f"/conveyor/{run}/DAVS", "gfal"
        ),
        "S3": _add_storage_rse(
            session,
            "S3",
            "s3",
            _host_port(storage["S3_ENDPOINT_URL"]),
            f"/{S3_BUCKET}/conveyor/{run}/S3",
            "s3",
        ),
    }
    for name in endpoints:
        rse_distance.set_distance(session, "SRC", name, 1)
    ensure_scope(session)
    session.commit()
    return Site(tmp_path / "SRC", endpoints)


def add_dataset(session, site: Site, dataset: str, count: int, *, write: bool = True) -> list[FileSpec]:
    """``count`` files uploaded to SRC (bytes at the hash path unless ``write`` is False), attached to
    ``dataset``.  Files carry adler32 and md5, as an upload records them."""
    files = [random_file(f"{dataset}.{i:04d}", 1024 + 37 * i) for i in range(count)]
    if write:
        for spec in files:
            write_source(site, spec)
    records = [{**spec.record(), "md5": hashlib.md5(spec.data).hexdigest()} for spec in files]
    replica.add_replicas(session, "SRC", records, "root")
    did.add_collection(session, SCOPE, dataset, "DATASET", "root")
    did_content.attach(session, SCOPE, dataset, [{"scope": SCOPE, "name": s.name} for s in files])
    return files


def write_source(site: Site, spec: FileSpec) -> None:
    path = site.src / hash_path(SCOPE, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(spec.data)


def rule_on(session, dataset: str, copies: int, expression: str) -> str:
    (rule_id,) = add_rule(
        session,
        [{"scope": SCOPE, "name": dataset}],
        "root",
        copies,
        expression,
        grouping="NONE",
        ignore_account_limit=True,
    )
    session.commit()
    return rule_id


def conveyor(db: str) -> tuple[Submitter, Poller, Finisher]:
    return Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)


@pytest.fixture
def checksummer(gfal2_options):
    ctx = gfal2copy.new_context(gfal2_options)
    return lambda url, algorithm: ctx.checksum(url, algorithm).lower()


def assert_rule_ok_on_storage(
    db: str, rule_id: str, site: Site, files: list[FileSpec], checksummer
) -> Counter:
    """The rule is OK, each of its locks OK on an AVAILABLE replica, and each replica's bytes are on
    storage with the right checksum.  Returns the number of copies per RSE."""
    by_name = {spec.name: spec for spec in files}
    with transaction(db) as session:
        rule = session.get(Rule, rule_id)
        assert (rule.state, rule.locks_stuck_cnt, rule.locks_replicating_cnt) == (RuleState.OK, 0, 0)
        locks = session.execute(
            select(Lock.name, RSE.rse, Lock.state, Replica.state)
            .join(RSE, RSE.id == Lock.rse_id)
            .join(
                Replica,
                (Replica.rse_id == Lock.rse_id) & (Replica.scope == Lock.scope) & (Replica.name == Lock.name),
            )
            .where(Lock.rule_id == rule_id)
        ).all()
        assert session.scalar(select(func.count()).select_from(Source)) == 0
    assert rule.locks_ok_cnt == len(locks) == 2 * len(files)
    per_rse: Counter = Counter()
    for name, rse_name, lock_state, replica_state in locks:
        assert (lock_state, replica_state) == (LockState.OK, ReplicaState.AVAILABLE), (name, rse_name)
        endpoint, spec = site.endpoints[rse_name], by_name[name]
        expected = spec.adler32 if endpoint.algorithm == "ADLER32" else hashlib.md5(spec.data).hexdigest()
        assert checksummer(endpoint.url(name), endpoint.algorithm) == expected, endpoint.url(name)
        per_rse[rse_name] += 1
    return per_rse


@pytest.fixture(params=["fts3", "local"])
def tool(request, conveyor_env, gfal2_options):  # noqa: F811 (the imported fixture)
    """Configure the conveyor for one transfer tool; yields the FTS3 double's server (None: local)."""
    if request.param == "local":
        conveyor_env(transfertool="local")
        tools.set_local_tool(LocalTransferTool(threads=8, gfal2_options=gfal2_options))
        yield None
        return
    with Fts3DoubleServer(Fts3Double(gfal2_options=gfal2_options, workers=8)) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, files_per_job="50", fts_timeout="1")
        yield server


def test_rules_with_two_copies_end_on_storage(db, session, site, tool, checksummer):
    """200 files with copies=2 over root:// and s3://, and (davs:// streaming costs ≈0.15 s a
    file) a 20-file dataset with copies=2 over root://, davs:// and s3://, so every endpoint pairs
    with every other."""
    files = add_dataset(session, site, "ds", FILES)
    small = add_dataset(session, site, "dsdavs", DAVS_FILES)
    rule_id = rule_on(session, "ds", 2, "XRD|S3")
    small_rule = rule_on(session, "dsdavs", 2, "XRD|DAVS|S3")
    drain(db, *conveyor(db), rounds=3000)
    assert assert_rule_ok_on_storage(db, rule_id, site, files, checksummer) == {"XRD": FILES, "S3": FILES}
    per_rse = assert_rule_ok_on_storage(db, small_rule, site, small, checksummer)
    assert sum(per_rse.values()) == 2 * DAVS_FILES and per_rse["DAVS"] > 0
    if tool is not None:  # each request reached FTS exactly once
        submitted = [row["file_metadata"]["request_id"] for row in tool.double.store.submitted]
        assert len(submitted) == len(set(submitted)) == 2 * (FILES + DAVS_FILES)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_stuck(db: str, rule_id: str, count: int, dest: str) -> None:
    """The rule and its ``count`` locks STUCK, requests FAILED after the retries, the replicas at
    ``dest`` UNAVAILABLE, no source rows left: nothing half-written."""
    with transaction(db) as session:
        rule = session.get(Rule, rule_id)
        assert (rule.state, rule.locks_stuck_cnt, rule.locks_ok_cnt, rule.locks_replicating_cnt) == (
            RuleState.STUCK,
            count,
            0,
            0,
        )
        assert rule.error
        assert set(session.scalars(select(Lock.state).where(Lock.rule_id == rule_id))) == {LockState.STUCK}
        requests = session.execute(
            select(Request.state, Request.retry_count, Request.claimed_by).where(Request.rule_id == rule_id)
        ).all()
        assert sorted(requests) == [(RequestState.FAILED, 1, None)] * count
        dest_id = session.scalar(select(RSE.id).where(RSE.rse == dest))
        assert set(session.scalars(select(Replica.state).where(Replica.rse_id == dest_id))) == {
            ReplicaState.UNAVAILABLE
        }
        assert session.scalar(select(func.count()).select_from(Source)) == 0


def test_destination_down_sticks_the_rule(db, session, site, tool, conveyor_env):  # noqa: F811
    port = _closed_port()
    rse.add_rse(session, "DOWN")
    rse.add_protocol(
        session,
        "DOWN",
        {
            "scheme": "root",
            "hostname": "127.0.0.1",
            "port": port,
            "prefix": "//down",
            "impl": "gfal",
            "domains": tpc_domains(),
        },
    )
    add_dataset(session, site, "dsdown", 3)
    rule_id = rule_on(session, "dsdown", 1, "DOWN")
    if tool is not None:
        conveyor_env(transfertool="fts3", fts_host=tool.url, max_retries="1")
    else:
        conveyor_env(transfertool="local", max_retries="1")
    drain(db, *conveyor(db))
    assert_stuck(db, rule_id, 3, "DOWN")


def test_fts_500_and_timeout_hold_requests_back_then_each_is_submitted_once(
    db,
    session,
    site,
    gfal2_options,
    conveyor_env,
    checksummer,
    monkeypatch,  # noqa: F811
):
    files = add_dataset(session, site, "dsfts", 10)
    rule_id = rule_on(session, "dsfts", 2, "XRD|S3")
    monkeypatch.setenv("DATAMGMT_DAEMONS_LEASE_SECONDS", "4")  # unanswered submissions are looked up soon
    with Fts3DoubleServer(Fts3Double(gfal2_options=gfal2_options)) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, fts_timeout="1")
        submitter, poller, finisher = conveyor(db)

        server.double.faults.fail_next(1, 500)
        submitter.run_once(1000)
        assert queued_rows(db) == {(RequestState.QUEUED, None, None)} and server.double.store.submitted == []

        tools.fts_tool(server.url)._client()  # connected: the delay below hits POST /jobs
        server.double.faults.delay_next(1, 3.0, ("POST", "/jobs"))  # FTS takes the job, answers too late
        submitter.run_once(1000)
        rows = queued_rows(db)
        assert {state for state, _, _ in rows} == {RequestState.SUBMITTING}  # under the ids chosen first
        assert {row["job_id"] for row in server.double.store.submitted} <= {job for _, job, _ in rows}

        drain(db, submitter, poller, finisher)
        submitted = [row["file_metadata"]["request_id"] for row in server.double.store.submitted]
    with transaction(db) as s:
        ids = list(s.scalars(select(Request.id).where(Request.rule_id == rule_id)))
    assert sorted(submitted) == sorted(ids)  # the job that answered late was found, not sent again
    assert assert_rule_ok_on_storage(db, rule_id, site, files, checksummer) == {"XRD": 10, "S3": 10}


def queued_rows(db: str) -> set[tuple[Any, ...]]:
    with transaction(db) as session:
        return set(session.execute(select(Request.state, Request.external_id, Request.claimed_by)).all())


def test_retries_exhausted_stick_then_the_repairer_picks_the_rule_up(
    db,
    session,
    site,
    tool,
    conveyor_env,
    checksummer,  # noqa: F811
):
    files = add_dataset(session, site, "dsmissing", 4, write=False)  # registered, never uploaded
    rule_id = rule_on(session, "dsmissing", 1, "XRD")
    if tool is not None:
        conveyor_env(transfertool="fts3", fts_host=tool.url, max_retries="1")
    else:
        conveyor_env(transfertool="local", max_retries="1")
    drain(db, *conveyor(db))
    assert_stuck(db, rule_id, 4, "XRD")

    for spec in files:  # the source turns up; the repairer must give the locks another chance
        write_source(site, spec)
    assert Repairer(db_url=db).run_once(10) == 1
    with transaction(db) as s:
        assert s.get(Rule, rule_id).state is RuleState.REPLICATING
        assert set(s.scalars(select(Lock.state).where(Lock.rule_id == rule_id))) == {LockState.REPLICATING}
        queued = s.scalar(
            select(func.count()).where(Request.rule_id == rule_id, Request.state == RequestState.QUEUED)
        )
    assert queued == 4
    drain(db, *conveyor(db))
    with transaction(db) as s:
        rule = s.get(Rule, rule_id)
        assert (rule.state, rule.locks_ok_cnt) == (RuleState.OK, 4)
    for spec in files:
        assert checksummer(site.endpoints["XRD"].url(spec.name), "ADLER32") == spec.adler32


def test_two_of_each_daemon_submit_every_request_once(db, session, site, gfal2_options, conveyor_env):  # noqa: F811
    if not db.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set DATAMGMT_TEST_DB_URL (SQLite serialises writers)")
    files = add_dataset(session, site, "dsrace", FILES)
    rule_id = rule_on(session, "dsrace", 1, "XRD")
    with Fts3DoubleServer(Fts3Double(gfal2_options=gfal2_options, workers=8)) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, files_per_job="10")
        daemons = [
            cls(worker_id=f"{cls.name}-{i}", db_url=db)
            for cls in (Submitter, Poller, Finisher)
            for i in range(2)
        ]
        done, errors = threading.Event(), []

        def run(daemon) -> None:
            try:
                while not done.is_set():
                    daemon.run_once(25)
                    time.sleep(0.01)
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for d in daemons]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 180
        try:
            while time.monotonic() < deadline and not errors:
                with transaction(db) as s:
                    if s.get(Rule, rule_id).state is RuleState.OK:
                        break
                time.sleep(0.2)
        finally:
            done.set()
            for thread in threads:
                thread.join()
        submitted = [row["file_metadata"]["request_id"] for row in server.double.store.submitted]
    assert not errors
    with transaction(db) as s:
        assert s.get(Rule, rule_id).state is RuleState.OK
        ids = list(s.scalars(select(Request.id).where(Request.rule_id == rule_id)))
    assert len(ids) == len(files)
    duplicates = [rid for rid, n in Counter(submitted).items() if n > 1]
    assert duplicates == [] and sorted(submitted) == sorted(ids)
