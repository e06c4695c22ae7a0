"""Tape through the whole conveyor and the FTS3 double (issue 23).

"Two copies on tier-1 disk and a backup on tape": a dataset's rule on ``tier=1&rse_type=DISK``
and one on ``rse_type=TAPE`` put each copy where it belongs; the tape locks turn OK only once
FTS reports the files archived, not when the copy reached the tape buffer.  Then the disk
copies are purged, and a rule to a new disk RSE is served from tape: staged first, then copied.
A failed bring-online and an archive that never completes are retried like any failure, and
then the rule is STUCK with FTS's reason.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from datamgmt.cli.rules import locks_by_rse as cli_locks_by_rse
from datamgmt.cli.rules import tape_text
from datamgmt.core import did, did_content, rse, rse_distance
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import RSE, Lock, Replica, Request, RequestHistory, Rule
from datamgmt.core.db.session import transaction
from datamgmt.core.rule import add_rule, list_rule_locks
from datamgmt.core.rule_update import delete_rule
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.lfn2pfn import hash_path
from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.integration.conveyor.test_conveyor_posix import conveyor_env, drain  # noqa: F401 (fixture)
from tests.unit.conveyor.catalogue import (
    SCOPE,
    FileSpec,
    add_posix_replica,
    add_posix_rse,
    ensure_scope,
    random_file,
)

pytestmark = pytest.mark.integration

RSES = {"DISK1": "DISK", "DISK2": "DISK", "VAULT": "TAPE", "NEWDISK": "DISK"}


@pytest.fixture
def tape_site(session, root, tmp_path) -> Path:
    """Tier-1 disks DISK1 and DISK2, the tape VAULT (tier 1 too) and NEWDISK (tier 2), all posix."""
    for name, rse_type in RSES.items():
        add_posix_rse(session, name, tmp_path / name, rse_type=rse_type)
        rse.add_rse_attribute(session, name, "tier", "2" if name == "NEWDISK" else "1")
    for source in RSES:
        for destination in RSES:
            if source != destination:
                rse_distance.set_distance(session, source, destination, 1)
    ensure_scope(session)
    session.commit()
    return tmp_path


def dataset_on(session, root: Path, name: str, rses: list[str], count: int = 3) -> list[FileSpec]:
    files = [random_file(f"{name}.{i}", 2048 + i) for i in range(count)]
    for spec in files:
        for rse_name in rses:
            add_posix_replica(session, rse_name, root / rse_name, spec)
    did.add_collection(session, SCOPE, name, "DATASET", "root")
    did_content.attach(session, SCOPE, name, [{"scope": SCOPE, "name": s.name} for s in files])
    return files


def rule(session, dataset: str, copies: int, expression: str) -> str:
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


def locks_by_rse(db: str, rule_id: str) -> dict[str, set[LockState]]:
    with transaction(db) as session:
        rows = session.execute(
            select(RSE.rse, Lock.state).join(RSE, RSE.id == Lock.rse_id).where(Lock.rule_id == rule_id)
        ).all()
    found: dict[str, set[LockState]] = {}
    for rse_name, state in rows:
        found.setdefault(rse_name, set()).add(state)
    return found


def cli_locks(db: str, rule_id: str) -> dict[str, Counter[str]]:
    """What ``datamgmt rule watch`` counts per RSE, from the locks the REST API lists."""
    with transaction(db) as session:
        return cli_locks_by_rse(list(list_rule_locks(session, rule_id)))


def poll_until_phase(db: str, phase: str, *daemons, timeout: float = 20.0) -> None:
    """Run the daemons until every SUBMITTED request shows the tool's ``phase``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for daemon in daemons:
            daemon.run_once(1000)
        with transaction(db) as session:
            phases = session.execute(
                select(Request.state, Request.external_state).where(Request.state != RequestState.DONE)
            ).all()
        if phases and set(phases) == {(RequestState.SUBMITTED, phase)}:
            return
        time.sleep(0.05)
    raise AssertionError(f"requests never all in {phase}: {phases}")


def on_storage(root: Path, rse_name: str, files: list[FileSpec]) -> bool:
    return all((root / rse_name / hash_path(SCOPE, s.name)).read_bytes() == s.data for s in files)


def test_disk_and_tape_copies_then_recall_from_tape(db, session, tape_site, conveyor_env):  # noqa: F811 (the imported fixture)
    files = dataset_on(session, tape_site, "raw", ["DISK1", "DISK2"])
    disk_rule = rule(session, "raw", 2, "tier=1&rse_type=DISK")
    assert locks_by_rse(db, disk_rule) == {"DISK1": {LockState.OK}, "DISK2": {LockState.OK}}  # already there
    tape_rule = rule(session, "raw", 1, "rse_type=TAPE")
    assert session.get(Rule, tape_rule).locked  # a rule on tape without a lifetime is locked
    session.rollback()  # end the read transaction: the daemons write from their own sessions

    double = Fts3Double()
    double.faults.archive_seconds = 1.5
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url)
        submitter, poller, finisher = Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)
        # Writing to tape: copied to the tape buffer, then ARCHIVING; the locks wait for the archive.
        poll_until_phase(db, "ARCHIVING", submitter, poller)
        assert on_storage(tape_site, "VAULT", files)  # the bytes reached the buffer ...
        assert locks_by_rse(db, tape_rule) == {"VAULT": {LockState.REPLICATING}}  # ... not yet tape
        shown = cli_locks(db, tape_rule)  # the CLI's rule watch counts them as ARCHIVING
        assert shown == {"VAULT": Counter(ARCHIVING=3)} and tape_text(shown) == " (of which archiving=3)"
        with transaction(db) as s:
            assert s.get(Rule, tape_rule).state is RuleState.REPLICATING
        drain(db, submitter, poller, finisher)
        assert locks_by_rse(db, tape_rule) == {"VAULT": {LockState.OK}}
        jobs = server.double.store.jobs()
        assert {(j["bring_online"], j["archive_timeout"]) for j in jobs} == {(-1, 86400)}  # disk source

        # The disk copies go: an admin removes the disk rule with purge, the reaper deletes them.
        with transaction(db) as s:
            delete_rule(s, disk_rule, issuer="root", purge_replicas=True)
        Reaper(db_url=db).run_once(1000)
        with transaction(db) as s:
            left = set(s.scalars(select(RSE.rse).join(Replica, Replica.rse_id == RSE.id)))
        assert left == {"VAULT"}
        assert not any(
            (tape_site / d / hash_path(SCOPE, s.name)).exists() for d in ("DISK1", "DISK2") for s in files
        )

        # Reading from tape: a rule to a new disk RSE stages from VAULT first, then copies.
        double.faults.staging_seconds = 1.5
        recall = rule(session, "raw", 1, "NEWDISK")
        poll_until_phase(db, "STAGING", submitter, poller)
        assert locks_by_rse(db, recall) == {"NEWDISK": {LockState.REPLICATING}}
        assert cli_locks(db, recall) == {"NEWDISK": Counter(STAGING=3)}
        drain(db, submitter, poller, finisher)
        staged = [j for j in server.double.store.jobs() if j["bring_online"] > 0]
        assert staged and all(j["copy_pin_lifetime"] == 172800 and j["archive_timeout"] == -1 for j in staged)
    with transaction(db) as s:  # the request shows its time on tape apart from the copy
        phases = s.execute(
            select(
                RSE.rse,
                Request.state,
                Request.external_state,
                Request.staging_started_at,
                Request.staging_finished_at,
            ).join(RSE, RSE.id == Request.dest_rse_id)
        ).all()
    recalled = [row for row in phases if row.rse == "NEWDISK"]
    assert len(recalled) == 3 and all(row.state is RequestState.DONE for row in recalled)
    assert all(row.staging_started_at <= row.staging_finished_at for row in recalled)
    assert {row.external_state for row in recalled} == {"FINISHED"}
    assert all(row.staging_started_at is None for row in phases if row.rse == "VAULT")  # disk → tape
    with transaction(db) as s:  # and when the tape system confirmed each copy to tape, in its history too
        archived = s.execute(
            select(RequestHistory.archive_started_at, RequestHistory.archive_finished_at)
            .join(RSE, RSE.id == RequestHistory.dest_rse_id)
            .where(RSE.rse == "VAULT")
        ).all()
    assert len(archived) == 3 and all(
        start is not None and end is not None and end >= start for start, end in archived
    )
    with transaction(db) as s:
        assert s.get(Rule, recall).state is RuleState.OK and s.get(Rule, tape_rule).state is RuleState.OK
    assert on_storage(tape_site, "NEWDISK", files)


def _stuck_after_retries(db: str, rule_id: str) -> tuple[Rule, list[tuple[RequestState, int]]]:
    with transaction(db) as session:
        found = session.get(Rule, rule_id)
        session.expunge(found)
        requests = session.execute(select(Request.state, Request.retry_count)).tuples().all()
    return found, requests


def test_staging_failure_is_retried_then_stuck_with_the_reason(db, session, tape_site, conveyor_env):  # noqa: F811 (the imported fixture)
    dataset_on(session, tape_site, "cold", ["VAULT"], count=2)
    recall = rule(session, "cold", 1, "NEWDISK")
    double = Fts3Double()
    double.faults.fail_staging(f"file://{tape_site / 'VAULT'}")
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, max_retries="2")
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        attempts = len(server.double.store.submitted)
    found, requests = _stuck_after_retries(db, recall)
    assert found.state is RuleState.STUCK and found.locks_stuck_cnt == 2
    assert found.error.startswith("STAGING [70] Bring-online failed")
    assert sorted(requests) == [(RequestState.FAILED, 2)] * 2 and attempts == 2 * 3  # 1 try + 2 retries each
    assert locks_by_rse(db, recall) == {"NEWDISK": {LockState.STUCK}}


def test_archive_timeout_is_retried_then_stuck_with_the_reason(db, session, tape_site, conveyor_env):  # noqa: F811 (the imported fixture)
    dataset_on(session, tape_site, "hot", ["DISK1"], count=2)
    rse.add_rse_attribute(session, "VAULT", "archive_timeout", "1")
    session.commit()
    backup = rule(session, "hot", 1, "rse_type=TAPE")
    double = Fts3Double()
    double.faults.never_archive(f"file://{tape_site / 'VAULT'}")
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, max_retries="1")
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        attempts = len(server.double.store.submitted)
    found, requests = _stuck_after_retries(db, backup)
    assert found.state is RuleState.STUCK and found.locks_stuck_cnt == 2
    assert "Archiving timeout of 1 seconds exceeded" in found.error
    assert sorted(requests) == [(RequestState.FAILED, 1)] * 2 and attempts == 2 * 2
    with transaction(db) as s:  # on the buffer but never on tape: not a usable replica
        states = set(
            s.scalars(select(Replica.state).join(RSE, RSE.id == Replica.rse_id).where(RSE.rse == "VAULT"))
        )
    assert states == {ReplicaState.UNAVAILABLE}


def test_reaper_never_deletes_tape_copies_unless_an_admin_purges(db, session, tape_site, monkeypatch):
    from datamgmt.config import reset_config
    from datamgmt.exceptions import RuleLocked

    monkeypatch.setenv("DATAMGMT_REAPER_GREEDY", "true")  # the disk would be emptied of anything unlocked
    reset_config()
    files = dataset_on(session, tape_site, "archive", ["VAULT", "DISK1"], count=2)
    backup = rule(session, "archive", 2, "VAULT|DISK1")
    with pytest.raises(RuleLocked):
        delete_rule(session, backup)  # a rule on tape is locked: not even its owner removes it
    session.rollback()
    reaper = Reaper(db_url=db)

    def replicas_on(name: str) -> int:
        with transaction(db) as s:
            return len(
                s.scalars(
                    select(Replica.name).join(RSE, RSE.id == Replica.rse_id).where(RSE.rse == name)
                ).all()
            )

    with transaction(db) as s:  # an admin removes the rule, without purging
        delete_rule(s, backup, issuer="root", force=True)
    reaper.run_once(1000)
    assert replicas_on("VAULT") == 2 and on_storage(tape_site, "VAULT", files)  # unlocked, tombstoned: kept
    assert replicas_on("DISK1") == 0  # the same copies on disk go (greedy)

    purge = rule(session, "archive", 1, "VAULT")  # an admin purges explicitly
    with transaction(db) as s:
        delete_rule(s, purge, issuer="root", force=True, purge_replicas=True)
    reaper.run_once(1000)
    reset_config()
    assert replicas_on("VAULT") == 0
    assert not any((tape_site / "VAULT" / hash_path(SCOPE, s.name)).exists() for s in files)


def test_staging_longer_than_submitted_timeout_is_not_cancelled(db, session, tape_site, conveyor_env):  # noqa: F811 (the imported fixture)
    """FTS bounds a recall by ``bring_online`` itself: the poller's ``submitted_timeout`` must not
    cancel and retry a transfer that FTS reports STAGING (nor one ARCHIVING), and the copy after
    the recall is timed from the end of staging, not from submission."""
    files = dataset_on(session, tape_site, "slow", ["VAULT"], count=2)
    recall = rule(session, "slow", 1, "NEWDISK")
    double = Fts3Double()
    double.faults.staging_seconds = 5
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, submitted_timeout="3")
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        attempts = len(server.double.store.submitted)
        canceled = [j for j in server.double.store.jobs() if j["job_state"] == "CANCELED"]
    with transaction(db) as s:
        assert s.get(Rule, recall).state is RuleState.OK
    assert attempts == 2 and not canceled
    assert on_storage(tape_site, "NEWDISK", files)


def test_stagein_brings_files_online_in_place_pinned_for_the_rule_lifetime(
    db, session, tape_site, conveyor_env
):  # noqa: F811 (the imported fixture)
    """A rule on a tape RSE with ``staging_required`` asks for its present files to be online:
    STAGEIN requests, staged in place by FTS (source = destination, nothing copied), pinned for
    the rule's remaining lifetime; the locks are OK once staged."""
    rse.add_rse_attribute(session, "VAULT", "staging_required", True)
    files = dataset_on(session, tape_site, "pinned", ["VAULT"], count=2)
    (online,) = add_rule(
        session,
        [{"scope": SCOPE, "name": "pinned"}],
        "root",
        1,
        "VAULT",
        lifetime=3600,
        ignore_account_limit=True,
    )
    session.commit()
    with transaction(db) as s:
        kinds = set(s.execute(select(Request.request_type, Request.source_rse_id, Request.state)).tuples())
    assert {(kind.name, state) for kind, _, state in kinds} == {("STAGEIN", RequestState.QUEUED)}
    assert locks_by_rse(db, online) == {"VAULT": {LockState.REPLICATING}}
    double = Fts3Double()
    double.faults.staging_seconds = 1
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url)
        submitter, poller, finisher = Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)
        poll_until_phase(db, "STAGING", submitter, poller)
        assert cli_locks(db, online) == {"VAULT": Counter(STAGING=2)}
        drain(db, submitter, poller, finisher)
        jobs = server.double.store.jobs()
        rows = [row for job in jobs for row in server.double.store.files(job["job_id"])]
    assert all(3500 < j["copy_pin_lifetime"] <= 3600 and j["bring_online"] > 0 for j in jobs)
    assert all(r["source_surl"] == r["dest_surl"] and r["start_time"] is None for r in rows)  # nothing copied
    assert locks_by_rse(db, online) == {"VAULT": {LockState.OK}}
    assert on_storage(tape_site, "VAULT", files)


def test_removing_a_stagein_rule_cancels_its_recall_and_keeps_the_tape_copy(
    db, session, tape_site, conveyor_env
):  # noqa: F811 (the imported fixture)
    """Pin release through FTS: the rule of a recall still STAGING is removed (purge asked for):
    the finisher cancels the job, FTS aborts the bring-online and pins nothing, the STAGEIN
    requests go without a retry, and the tape copy stays."""
    rse.add_rse_attribute(session, "VAULT", "staging_required", True)
    files = dataset_on(session, tape_site, "wanted", ["VAULT"], count=2)
    (online,) = add_rule(
        session,
        [{"scope": SCOPE, "name": "wanted"}],
        "root",
        1,
        "VAULT",
        lifetime=3600,
        ignore_account_limit=True,
        purge_replicas=True,
    )
    session.commit()
    double = Fts3Double()
    double.faults.staging_seconds = 30
    with Fts3DoubleServer(double) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url)
        submitter, poller, finisher = Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)
        poll_until_phase(db, "STAGING", submitter, poller)
        with transaction(db) as s:
            delete_rule(s, online, issuer="root")
        finisher.run_once(100)
        for daemon in (submitter, poller, finisher, Reaper(db_url=db)):
            daemon.run_once(1000)
        jobs = server.double.store.jobs()
        pins = server.double.store.pins()
    assert [j["job_state"] for j in jobs] == ["CANCELED"] and not pins
    with transaction(db) as s:
        assert not s.scalars(select(Request.id)).all()
        states = set(s.execute(select(RSE.rse, Replica.state).join(RSE, RSE.id == Replica.rse_id)).tuples())
    assert states == {("VAULT", ReplicaState.AVAILABLE)}
    assert on_storage(tape_site, "VAULT", files)


def test_the_double_pins_what_it_staged_for_the_pin_lifetime(db, session, tape_site, conveyor_env):  # noqa: F811 (the imported fixture)
    """The double keeps a recalled file online for the job's ``copy_pin_lifetime`` (the
    STAGEIN's remaining rule lifetime)."""
    rse.add_rse_attribute(session, "VAULT", "staging_required", True)
    files = dataset_on(session, tape_site, "held", ["VAULT"], count=1)
    add_rule(
        session,
        [{"scope": SCOPE, "name": "held"}],
        "root",
        1,
        "VAULT",
        lifetime=600,
        ignore_account_limit=True,
    )
    session.commit()
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url)
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        pins = server.double.store.pins()
    (url,) = pins
    assert url.endswith(hash_path(SCOPE, files[0].name))
    remaining = (pins[url] - max(j["submit_time"] for j in server.double.store.jobs())).total_seconds()
    assert 500 < remaining <= 600
