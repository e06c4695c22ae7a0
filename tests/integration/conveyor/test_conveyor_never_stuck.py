"""Transfers never stuck (issue 15, defect 6): on posix RSEs, with the FTS3 double and the local tool.

* A submission whose answer timed out although FTS created the job must not be mapped to a job
  that lacks the request, nor copied a second time, however the next batch is grouped.
* A transfer its tool never finishes (or never reports on) leaves SUBMITTED after
  ``[conveyor] submitted_timeout``: its job is cancelled and the request retried as an attempt.
* A tool that keeps answering LOST cannot loop: each LOST is a counted attempt, logged, and
  after ``[conveyor] max_retries`` the request fails like any other failure.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from datamgmt.config import reset_config
from datamgmt.core import rule as rules
from datamgmt.core import rule_update
from datamgmt.core.db.constants import ReplicaState, RequestState
from datamgmt.core.db.models import Replica, Request
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.core.invariants import check_catalogue
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.reaper import Reaper
from datamgmt.transfertool.base import TransferStatus
from datamgmt.transfertool.local import LocalTransferTool
from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.integration.conveyor.test_conveyor_posix import (  # noqa: F401 (fixtures)
    assert_all_done,
    conveyor_env,
    drain,
    layout,
)
from tests.unit.conveyor.catalogue import SCOPE, add_posix_replica, add_posix_rse, ensure_scope, random_file

pytestmark = pytest.mark.integration

#: The double's answer to POST /jobs comes this late; the tool gives up after FTS_TIMEOUT.
FTS_TIMEOUT, SUBMIT_DELAY = 1.0, 2.5


@pytest.fixture
def short_leases(monkeypatch):
    """Leases short enough that work held back by a lease comes round again within a test."""
    monkeypatch.setenv("DATAMGMT_DAEMONS_LEASE_SECONDS", "4")
    reset_config()


def rule_to_dest(session, tmp_path: Path, prefix: str) -> tuple[list, list[str]]:
    """Three files on SRC and a rule (``purge_replicas``) that wants them on DEST; returns the
    files and the rule ids."""
    add_posix_rse(session, "SRC", tmp_path / "SRC")
    add_posix_rse(session, "DEST", tmp_path / "DEST")
    ensure_scope(session)
    files = [random_file(f"{prefix}{i}") for i in range(3)]
    for spec in files:
        add_posix_replica(session, "SRC", tmp_path / "SRC", spec)
    rule_ids = rules.add_rule(
        session, [{"scope": SCOPE, "name": s.name} for s in files], "root", 1, "DEST", purge_replicas=True
    )
    session.commit()
    return files, rule_ids


def assert_no_dark_file(db: str, tmp_path: Path) -> None:
    """DEST holds no file and no replica row, and the catalogue checks clean."""
    assert [path for path in (tmp_path / "DEST").rglob("*") if path.is_file()] == []
    with transaction(db) as tx:
        assert not tx.scalars(select(Replica.name).where(Replica.rse_id == Request.dest_rse_id)).all()
        assert check_catalogue(tx).ok


def requests_by_id(db: str) -> dict[str, Request]:
    with transaction(db) as session:
        rows = {r.id: r for r in session.scalars(select(Request))}
        session.expunge_all()
    return rows


def submissions_per_request(server: Fts3DoubleServer) -> Counter[str]:
    return Counter(row["file_metadata"]["request_id"] for row in server.double.store.submitted)


@pytest.mark.parametrize("regrouping", ["new_member", "new_leader"])
def test_timed_out_submission_is_never_mapped_wrongly_nor_copied_twice(
    db,
    layout,
    conveyor_env,
    short_leases,
    regrouping,  # noqa: F811
):
    """FTS creates the job of a batch of two but its answer is lost; the next batch holds all six.

    ``new_member``: the next job starts with the same request, so a job id derived from it
    names the first job, which lacks the four others.  ``new_leader``: another request leads
    the next job, which then carries the first two a second time.
    """
    files, ids, dest_root = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT))
        submitter = Submitter(db_url=db)
        tools.fts_tool(tools.fts_endpoint(None))._client()  # connect first: only POST /jobs is slow
        server.double.faults.delay_next(1, SUBMIT_DELAY, ("POST", "/jobs"))
        submitter.run_once(2)
        first_job = {row["file_metadata"]["request_id"] for row in server.double.store.submitted}
        assert len(first_job) == 2  # FTS took the job, the submitter never heard of it
        time.sleep(SUBMIT_DELAY - FTS_TIMEOUT + 0.2)  # the late answer drains
        if regrouping == "new_leader":  # the oldest request is claimed first: it leads the next job
            leader = sorted(set(ids) - first_job)[0]
            with transaction(db) as session:
                oldest = session.scalar(select(func.min(Request.created_at)))
                session.execute(
                    update(Request).where(Request.id == leader).values(created_at=oldest - timedelta(hours=1))
                )

        drain(db, submitter, Poller(db_url=db), Finisher(db_url=db))

        assert submissions_per_request(server) == Counter(ids)  # each request reached FTS once
        for request in requests_by_id(db).values():  # and is recorded under the job that holds it
            rows = server.double.store.files(request.external_id) or []
            assert request.id in {row["file_metadata"]["request_id"] for row in rows}
    assert_all_done(db, files, dest_root)


def expire_leases(db: str) -> None:
    with transaction(db) as session:
        session.execute(update(Request).values(claimed_until=utcnow() - timedelta(seconds=1)))


def test_submission_that_reaches_fts_after_its_look_up_is_not_copied_twice(
    db,
    layout,
    conveyor_env,  # noqa: F811
):
    """The submission's POST reaches FTS only after the submitter gave up on it, and after the
    look-up found no such job.  The requests go out again under the same job id, so FTS takes
    them once: whichever of the two POSTs comes second is answered 409."""
    files, ids, dest_root = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT))
        submitter = Submitter(db_url=db)
        tools.fts_tool(tools.fts_endpoint(None))._client()
        server.double.faults.stall_next(1, ("POST", "/jobs"))  # on its way while FTS is asked
        submitter.run_once(1000)
        assert {r.state for r in requests_by_id(db).values()} == {RequestState.SUBMITTING}
        (job_id,) = {r.external_id for r in requests_by_id(db).values()}
        expire_leases(db)
        submitter.run_once(1000)  # the look-up: FTS knows no such job (yet)
        assert {(r.state, r.external_id) for r in requests_by_id(db).values()} == {
            (RequestState.SUBMITTED, job_id)
        }
        server.double.faults.release()  # the first POST arrives now
        assert server.double.faults.wait_stalled_served(1)

        drain(db, submitter, Poller(db_url=db), Finisher(db_url=db))
        assert submissions_per_request(server) == Counter(ids)
        assert {row["job_id"] for row in server.double.store.submitted} == {job_id}
    assert_all_done(db, files, dest_root)


def test_submission_unknown_to_fts_stays_under_its_job_id_through_a_failed_attempt(
    db,
    layout,
    conveyor_env,  # noqa: F811
):
    """A request waiting to go out again under its job id fails before reaching FTS (here: no
    source left).  Its retry keeps the job id, so the late first POST is still a duplicate."""
    files, ids, dest_root = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT))
        submitter, finisher = Submitter(db_url=db), Finisher(db_url=db)
        tools.fts_tool(tools.fts_endpoint(None))._client()
        server.double.faults.stall_next(1, ("POST", "/jobs"))
        submitter.run_once(1000)
        (job_id,) = {r.external_id for r in requests_by_id(db).values()}
        server.double.faults.fail_next(1, 503)  # the look-up: no answer, nothing changes
        expire_leases(db)
        submitter.run_once(1000)
        assert {r.state for r in requests_by_id(db).values()} == {RequestState.SUBMITTING}
        with transaction(db) as session:  # an unanswered submission given up as a failed attempt
            session.execute(
                update(Request).values(
                    state=RequestState.SUBMISSION_FAILED, claimed_by=None, claimed_until=None
                )
            )
        finisher.run_once(1000)
        assert {(r.state, r.retry_count, r.external_id) for r in requests_by_id(db).values()} == {
            (RequestState.QUEUED, 1, job_id)
        }
        server.double.faults.release()
        assert server.double.faults.wait_stalled_served(1)
        drain(db, submitter, Poller(db_url=db), finisher)
        assert submissions_per_request(server) == Counter(ids)
    assert_all_done(db, files, dest_root)


def test_transfer_never_finished_by_fts_is_cancelled_and_retried(db, layout, conveyor_env):  # noqa: F811
    files, ids, dest_root = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, submitted_timeout="1")
        server.double.faults.hold_copies = True  # FTS accepts the job and never runs it
        submitter, poller = Submitter(db_url=db), Poller(db_url=db)
        submitter.run_once(1000)
        (stale_job,) = {row["job_id"] for row in server.double.store.submitted}
        poller.run_once(1000)
        assert {r.state for r in requests_by_id(db).values()} == {RequestState.SUBMITTED}
        time.sleep(1.1)
        poller.run_once(1000)

        rows = requests_by_id(db).values()
        assert {(r.state, r.retry_count, r.external_id) for r in rows} == {(RequestState.QUEUED, 1, None)}
        assert all("submitted_timeout" in r.err_msg for r in rows)
        assert server.double.store.job(stale_job)["job_state"] == "CANCELED"
        server.double.faults.hold_copies = False
        drain(db, submitter, poller, Finisher(db_url=db))
        assert submissions_per_request(server) == Counter(ids * 2)  # the retry is a new job
    assert {r.retry_count for r in requests_by_id(db).values()} == {1}
    assert_all_done(db, files, dest_root)


def test_overdue_transfer_whose_cancel_fails_keeps_its_job_for_the_retry(db, layout, conveyor_env):  # noqa: F811
    """FTS is gone when the transfer is given up, so its job may still run: the retry keeps the
    job's id and key, and can only meet that job again as a duplicate, never copy a second time."""
    server = Fts3DoubleServer(Fts3Double()).start()
    conveyor_env(
        transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT), submitted_timeout="1"
    )
    server.double.faults.hold_copies = True
    Submitter(db_url=db).run_once(1000)
    jobs = {r.id: (r.external_id, r.external_key) for r in requests_by_id(db).values()}
    assert all(job and key for job, key in jobs.values())
    server.stop()
    time.sleep(1.1)
    Poller(db_url=db).run_once(1000)
    rows = requests_by_id(db).values()
    assert {(r.state, r.retry_count) for r in rows} == {(RequestState.QUEUED, 1)}
    assert {r.id: (r.external_id, r.external_key) for r in rows} == jobs
    assert all("its cancel failed" in r.err_msg for r in rows)


class SilentTool(LocalTransferTool):
    """Accepts transfers and never says anything about them (not even LOST)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.queried: Counter[str] = Counter()

    def query(self, external_ids) -> list[TransferStatus]:
        self.queried.update(external_ids)
        return []


def test_transfer_its_tool_never_reports_on_ends_failed(db, layout, conveyor_env, short_leases):  # noqa: F811
    conveyor_env(transfertool="local", submitted_timeout="5", max_retries="1")
    silent = SilentTool(threads=1)
    tools.set_local_tool(silent)
    daemons = Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)
    drain(db, *daemons, rounds=600)
    rows = requests_by_id(db).values()
    assert {(r.state, r.retry_count) for r in rows} == {(RequestState.FAILED, 1)}
    assert len(silent.queried) == 2 * len(rows)  # one transfer per attempt
    assert min(silent.queried.values()) >= 2  # each asked again after its lease, before giving up
    with transaction(db) as session:
        dest = set(session.scalars(select(Replica.state).where(Replica.rse_id == Request.dest_rse_id)))
    assert dest == {ReplicaState.UNAVAILABLE}


def test_tool_that_keeps_losing_transfers_fails_them_after_the_retry_limit(
    db,
    layout,
    conveyor_env,
    caplog,  # noqa: F811
):
    _, ids, _ = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, max_retries="2")
        server.double.faults.forget_jobs = True  # every job is 404 as soon as it exists
        with caplog.at_level(logging.WARNING, logger="datamgmt.daemons"):
            drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        assert submissions_per_request(server) == Counter(ids * 3)  # the first try and two retries
    rows = requests_by_id(db)
    assert {(r.state, r.retry_count) for r in rows.values()} == {(RequestState.FAILED, 2)}
    lost = [r for r in caplog.records if "lost" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(lost) == 3 * len(ids)
    fields = lost[0].fields
    request = rows[fields["request"]]
    assert fields["did"] == f"{request.scope}:{request.name}" and fields["rse"] == "DEST"


def test_job_fts_refuses_fails_as_an_attempt_instead_of_looping(db, layout, conveyor_env):  # noqa: F811
    """Real FTS refuses file:// ("Can not transfer local files", 400): sent again unchanged it
    would be refused for ever, so each refusal is a failed attempt."""
    _, ids, _ = layout
    with Fts3DoubleServer(Fts3Double(allow_local_files=False)) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, max_retries="1")
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        assert server.double.store.submitted == []
    rows = requests_by_id(db).values()
    assert {(r.state, r.retry_count) for r in rows} == {(RequestState.FAILED, 1)}
    assert all("Can not transfer local files" in r.err_msg for r in rows)
    assert len(rows) == len(ids)


def test_unconfirmed_submission_to_a_vanished_fts_is_retried_after_the_timeout(
    db,
    layout,
    conveyor_env,
    short_leases,  # noqa: F811
):
    """The answer to a submission is lost, then FTS is gone: the requests cannot be looked up.
    They stay SUBMITTING (the job may exist) until ``submitted_timeout``, then fail as attempts."""
    server = Fts3DoubleServer(Fts3Double()).start()
    conveyor_env(
        transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT), submitted_timeout="2"
    )
    submitter = Submitter(db_url=db)
    tools.fts_tool(tools.fts_endpoint(None))._client()
    server.double.faults.delay_next(1, SUBMIT_DELAY, ("POST", "/jobs"))
    submitter.run_once(1000)
    server.stop()
    assert {r.state for r in requests_by_id(db).values()} == {RequestState.SUBMITTING}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        submitter.run_once(1000)
        if RequestState.SUBMITTING not in {r.state for r in requests_by_id(db).values()}:
            break
        time.sleep(0.2)
    rows = requests_by_id(db).values()
    assert {r.state for r in rows} == {RequestState.SUBMISSION_FAILED}
    assert all("unreachable" in r.err_msg for r in rows)
    Finisher(db_url=db).run_once(1000)
    assert {(r.state, r.retry_count) for r in requests_by_id(db).values()} == {(RequestState.QUEUED, 1)}


def test_rule_removed_while_its_job_may_still_reach_fts_leaves_no_dark_file(
    db,
    session,
    root,
    tmp_path,
    conveyor_env,  # noqa: F811
):
    """The rule goes between the look-up that found no such job (the requests QUEUED again under
    their job's id) and the late arrival of the first POST.  The requests and their replica rows
    must stay until that job has run, and the reaper then removes what it wrote: removed with
    the rule, the rows would be reaped first and the job's copies land as dark files."""
    rule_ids = rule_to_dest(session, tmp_path, "late")[1]
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, fts_timeout=str(FTS_TIMEOUT))
        submitter = Submitter(db_url=db)
        tools.fts_tool(tools.fts_endpoint(None))._client()
        server.double.faults.stall_next(1, ("POST", "/jobs"))
        submitter.run_once(1000)
        expire_leases(db)
        submitter._look_up_unanswered(1000)  # FTS knows no such job (yet): QUEUED, same job id
        with transaction(db) as tx:
            for rule_id in rule_ids:
                rule_update.delete_rule(tx, rule_id)
        Reaper(db_url=db).run_once(100)
        server.double.faults.release()  # the first POST arrives now
        assert server.double.faults.wait_stalled_served(1)
        drain(db, submitter, Poller(db_url=db), Finisher(db_url=db))
        for _ in range(3):
            Reaper(db_url=db).run_once(100)
    assert_no_dark_file(db, tmp_path)


def test_last_attempt_whose_cancel_fails_stays_under_its_job_and_leaves_no_dark_file(
    db,
    session,
    root,
    tmp_path,
    conveyor_env,  # noqa: F811
):
    """FTS answers nothing when the last attempt is given up, so its job may still copy.  Failed,
    the request would no longer protect its replica row: with the rule removed the reaper would
    remove the row, and the job's late copy would land as a dark file.  It stays SUBMITTED under
    its job until FTS answers for it, and the reaper then removes what the job wrote."""
    rule_ids = rule_to_dest(session, tmp_path, "held")[1]
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(
            transfertool="fts3",
            fts_host=server.url,
            fts_timeout=str(FTS_TIMEOUT),
            submitted_timeout="1",
            max_retries="0",
        )
        server.double.faults.hold_copies = True
        submitter, poller = Submitter(db_url=db), Poller(db_url=db)
        submitter.run_once(1000)
        jobs = {r.id: r.external_id for r in requests_by_id(db).values()}
        time.sleep(1.1)
        server.double.faults.fail_next(1000)  # FTS answers neither the status query nor the cancel
        poller.run_once(1000)
        rows = requests_by_id(db).values()
        assert {(r.state, r.retry_count) for r in rows} == {(RequestState.SUBMITTED, 0)}
        assert {r.id: r.external_id for r in rows} == jobs
        with transaction(db) as tx:
            for rule_id in rule_ids:
                rule_update.delete_rule(tx, rule_id)
        Reaper(db_url=db).run_once(100)

        server.double.faults.fail_next(0)
        server.double.faults.hold_copies = False  # FTS is back, and the jobs copy after all
        deadline = time.monotonic() + 30
        while {server.double.store.job(job)["job_state"] for job in set(jobs.values())} != {"FINISHED"}:
            assert time.monotonic() < deadline, "FTS did not finish the held jobs"
            time.sleep(0.1)
        expire_leases(db)
        drain(db, submitter, poller, Finisher(db_url=db))
        for _ in range(3):
            Reaper(db_url=db).run_once(100)
    assert {r.state for r in requests_by_id(db).values()} <= {RequestState.DONE}  # the jobs' copies arrived
    assert_no_dark_file(db, tmp_path)


def test_last_submission_unconfirmed_while_fts_is_away_waits_for_it_and_leaves_no_dark_file(
    db,
    session,
    root,
    tmp_path,
    conveyor_env,
    short_leases,  # noqa: F811
):
    """FTS created the job of the last attempt but its answer was lost, then FTS answered nothing
    past ``submitted_timeout``.  Failed, the requests would no longer protect their replica rows:
    with the rule removed the reaper would remove the rows, and the job's copies would land as
    dark files.  They stay SUBMITTING until FTS answers, then follow their job to its end."""
    files, rule_ids = rule_to_dest(session, tmp_path, "lost")
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(
            transfertool="fts3",
            fts_host=server.url,
            fts_timeout=str(FTS_TIMEOUT),
            submitted_timeout="2",
            max_retries="0",
        )
        submitter = Submitter(db_url=db)
        tools.fts_tool(tools.fts_endpoint(None))._client()
        server.double.faults.hold_copies = True
        server.double.faults.delay_next(1, SUBMIT_DELAY, ("POST", "/jobs"))
        submitter.run_once(1000)  # FTS creates the job; its answer comes too late
        server.double.faults.fail_next(100_000)  # then FTS answers nothing
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            submitter.run_once(1000)
            time.sleep(0.2)
        assert {r.state for r in requests_by_id(db).values()} == {RequestState.SUBMITTING}
        with transaction(db) as tx:
            for rule_id in rule_ids:
                rule_update.delete_rule(tx, rule_id)
        Reaper(db_url=db).run_once(100)

        server.double.faults.fail_next(0)  # FTS is back, and its job copies after all
        server.double.faults.hold_copies = False
        # Long enough now for the copies to finish before the poller would give them up.
        conveyor_env(
            transfertool="fts3",
            fts_host=server.url,
            fts_timeout=str(FTS_TIMEOUT),
            submitted_timeout="60",
            max_retries="0",
        )
        expire_leases(db)
        drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
        for _ in range(3):
            Reaper(db_url=db).run_once(100)
        assert len(server.double.store.submitted) == len(files)  # one job, never sent again
    assert {r.state for r in requests_by_id(db).values()} <= {RequestState.DONE}
    assert_no_dark_file(db, tmp_path)
