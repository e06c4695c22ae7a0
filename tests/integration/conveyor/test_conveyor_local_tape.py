"""Tape through the embedded ``local`` transfer tool (issue 23): the default shape handles tape.

A TAPE RSE served by local storage gets the states and lock semantics of the FTS path: a copy to
tape is ARCHIVING, and its lock REPLICATING, until the tape system (``local_archive_seconds``)
has it; a source on tape is STAGING (``local_staging_seconds``) before it is read, then pinned
online; an archive that outlasts ``archive_timeout`` is retried and then STUCK; a STAGEIN rule
is served in place, and removing it releases the pin (the staged marker) without ever deleting
the tape copy.  Every request keeps its staging and archiving times, in its history too.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from datamgmt.api.app import create_app
from datamgmt.core import rse, rse_distance
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RequestType, RuleState
from datamgmt.core.db.models import (
    RSE,
    LocalPin,
    LocalTransfer,
    PinRelease,
    Replica,
    Request,
    RequestHistory,
    Rule,
)
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.core.rule import add_rule
from datamgmt.core.rule_update import delete_rule
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.lfn2pfn import hash_path
from tests.conftest import ROOT_PASSWORD
from tests.integration.conveyor.test_conveyor_posix import conveyor_env, drain  # noqa: F401 (fixture)
from tests.integration.conveyor.test_conveyor_tape import (  # noqa: F401 (fixture)
    cli_locks,
    dataset_on,
    locks_by_rse,
    on_storage,
    poll_until_phase,
    rule,
    tape_site,
)
from tests.integration.conveyor.test_local_tool_processes import DAEMON, ROOT, daemon_env
from tests.unit.api.test_web_ui import sign_in
from tests.unit.conveyor.catalogue import SCOPE, tpc_domains

pytestmark = pytest.mark.integration


def daemons(db: str) -> tuple[Submitter, Poller, Finisher]:
    return Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db)


def test_copy_to_tape_is_ok_only_once_archived(db, session, tape_site, conveyor_env):  # noqa: F811
    files = dataset_on(session, tape_site, "raw", ["DISK1"])
    backup = rule(session, "raw", 1, "rse_type=TAPE")
    session.rollback()
    conveyor_env(transfertool="local", local_archive_seconds="1.5")
    submitter, poller, finisher = daemons(db)
    poll_until_phase(db, "ARCHIVING", submitter, poller)
    assert on_storage(tape_site, "VAULT", files)  # on the tape buffer ...
    assert locks_by_rse(db, backup) == {"VAULT": {LockState.REPLICATING}}  # ... not yet on tape
    assert cli_locks(db, backup) == {"VAULT": Counter(ARCHIVING=3)}
    browser = create_app(database_url=db).test_client()
    sign_in(browser, "root", ROOT_PASSWORD)
    assert browser.get(f"/ui/rules/{backup}").get_data(as_text=True).count("(ARCHIVING, tape)") == 3
    drain(db, submitter, poller, finisher)
    assert locks_by_rse(db, backup) == {"VAULT": {LockState.OK}}
    assert (
        browser.get(f"/ui/rules/{backup}").get_data(as_text=True).count("archived 20") == 3
    )  # the web shows when
    with transaction(db) as s:
        assert s.get(Rule, backup).state is RuleState.OK
        live = s.execute(
            select(Request.archive_started_at, Request.archive_finished_at, Request.staging_started_at)
        ).all()
        kept = s.execute(select(RequestHistory.archive_started_at, RequestHistory.archive_finished_at)).all()
    assert len(live) == 3 and all(row.staging_started_at is None for row in live)  # a disk source: no recall
    for started, finished in [*((r[0], r[1]) for r in live), *kept]:
        assert started is not None and finished is not None and (finished - started).total_seconds() >= 1


def test_tape_source_is_staged_then_read_and_pinned(db, session, tape_site, conveyor_env):  # noqa: F811
    files = dataset_on(session, tape_site, "cold", ["VAULT"], count=2)
    recall = rule(session, "cold", 1, "NEWDISK")
    session.rollback()
    conveyor_env(transfertool="local", local_staging_seconds="1.5")
    submitter, poller, finisher = daemons(db)
    poll_until_phase(db, "STAGING", submitter, poller)
    assert cli_locks(db, recall) == {"NEWDISK": Counter(STAGING=2)}
    assert not (tape_site / "NEWDISK").exists() or not any(
        (tape_site / "NEWDISK").rglob("cold.*")
    )  # not read yet
    drain(db, submitter, poller, finisher)
    assert locks_by_rse(db, recall) == {"NEWDISK": {LockState.OK}}
    assert on_storage(tape_site, "NEWDISK", files)
    with transaction(db) as s:
        times = s.execute(
            select(Request.staging_started_at, Request.staging_finished_at, Request.archive_started_at)
        ).all()
        pinned = set(s.scalars(select(LocalPin.url)))
    assert len(times) == 2 and all(
        a is not None and b is not None and (b - a).total_seconds() >= 1 for a, b, _ in times
    )
    assert all(row.archive_started_at is None for row in times)  # to disk: nothing to archive
    assert pinned == {f"file://{tape_site / 'VAULT' / hash_path(SCOPE, s.name)}" for s in files}


def test_archive_timeout_is_retried_then_stuck(db, session, tape_site, conveyor_env):  # noqa: F811
    dataset_on(session, tape_site, "hot", ["DISK1"], count=2)
    rse.add_rse_attribute(session, "VAULT", "archive_timeout", "1")
    session.commit()
    backup = rule(session, "hot", 1, "rse_type=TAPE")
    session.rollback()
    conveyor_env(transfertool="local", local_archive_seconds="30", max_retries="1")
    drain(db, *daemons(db))
    with transaction(db) as s:
        found = s.get(Rule, backup)
        assert found.state is RuleState.STUCK and found.locks_stuck_cnt == 2
        assert "Archiving timeout of 1 seconds exceeded" in found.error
        assert (
            sorted(s.execute(select(Request.state, Request.retry_count)).tuples())
            == [(RequestState.FAILED, 1)] * 2
        )
        states = set(
            s.scalars(select(Replica.state).join(RSE, RSE.id == Replica.rse_id).where(RSE.rse == "VAULT"))
        )
    assert states == {ReplicaState.UNAVAILABLE}  # on the buffer, never on tape: not a usable replica


def test_stagein_in_place_then_removal_releases_the_pin_not_the_tape_copy(
    db, session, tape_site, conveyor_env
):  # noqa: F811
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
        purge_replicas=True,
    )
    session.commit()
    conveyor_env(transfertool="local", local_staging_seconds="1")
    submitter, poller, finisher = daemons(db)
    poll_until_phase(db, "STAGING", submitter, poller)
    assert cli_locks(db, online) == {"VAULT": Counter(STAGING=2)}
    drain(db, submitter, poller, finisher)
    assert locks_by_rse(db, online) == {"VAULT": {LockState.OK}}
    urls = {f"file://{tape_site / 'VAULT' / hash_path(SCOPE, s.name)}" for s in files}
    with transaction(db) as s:
        pins = dict(s.execute(select(LocalPin.url, LocalPin.pinned_until)).tuples().all())
        kinds = set(s.scalars(select(Request.request_type)))
    assert set(pins) == urls and kinds == {RequestType.STAGEIN}
    with transaction(db) as s:  # the rule goes, purge asked for: the pin is released, the tape copy stays
        delete_rule(s, online, issuer="root")
        assert s.scalar(select(PinRelease.id).limit(1)) is not None
    finisher.run_once(100)
    Reaper(db_url=db).run_once(1000)
    with transaction(db) as s:
        assert not s.scalars(select(LocalPin.url)).all() and not s.scalars(select(PinRelease.id)).all()
        assert not s.scalars(select(Request.id)).all()  # its STAGEIN requests went with the pin
        replicas = s.execute(
            select(Replica.state, Replica.tombstone).join(RSE, RSE.id == Replica.rse_id)
        ).all()
    assert len(replicas) == 2 and all(r.state is ReplicaState.AVAILABLE for r in replicas)
    assert on_storage(tape_site, "VAULT", files)


def test_removing_a_stagein_rule_while_staging_cancels_the_recall(db, session, tape_site, conveyor_env):  # noqa: F811
    rse.add_rse_attribute(session, "VAULT", "staging_required", True)
    files = dataset_on(session, tape_site, "slow", ["VAULT"], count=2)
    (online,) = add_rule(
        session,
        [{"scope": SCOPE, "name": "slow"}],
        "root",
        1,
        "VAULT",
        lifetime=3600,
        ignore_account_limit=True,
    )
    session.commit()
    conveyor_env(transfertool="local", local_staging_seconds="60")
    submitter, poller, finisher = daemons(db)
    poll_until_phase(db, "STAGING", submitter, poller)
    with transaction(db) as s:
        delete_rule(s, online, issuer="root")
    finisher.run_once(100)
    for daemon in (submitter, poller, finisher):
        daemon.run_once(100)
    with transaction(db) as s:
        assert not s.scalars(select(Request.id)).all() and not s.scalars(select(LocalPin.url)).all()
        states = set(s.execute(select(RSE.rse, Replica.state).join(RSE, RSE.id == Replica.rse_id)).tuples())
        ended = set(s.execute(select(LocalTransfer.state, LocalTransfer.reason)).tuples())
    assert states == {("VAULT", ReplicaState.AVAILABLE)}
    assert {state for state, _ in ended} == {"FAILED"} and all(
        "cancel" in reason.lower() for _, reason in ended
    )
    assert on_storage(tape_site, "VAULT", files)


def test_a_staging_buffer_recalls_from_its_tape_through_the_stager_only(db, session, tape_site, conveyor_env):  # noqa: F811
    """Rucio's staging area: BUFFER (``staging_area``) fronts VAULT (``staging_buffer=BUFFER``).
    A rule on BUFFER recalls its files from VAULT, never from the disk copy on DISK1, with
    STAGEIN requests that only the conveyor-stager submits when ``separate_stager`` is set."""
    from datamgmt.daemons.conveyor.stager import Stager

    buffer_id = rse.add_rse(session, "BUFFER", staging_area=True)
    rse.add_protocol(
        session,
        "BUFFER",
        {"scheme": "file", "prefix": str(tape_site / "BUFFER"), "impl": "posix", "domains": tpc_domains()},
    )
    rse.add_rse_attribute(session, "VAULT", "staging_buffer", "BUFFER")
    for source in ("VAULT", "DISK1"):
        rse_distance.set_distance(session, source, "BUFFER", 1)
    files = dataset_on(session, tape_site, "recall", ["VAULT", "DISK1"], count=2)
    (buffered,) = add_rule(
        session,
        [{"scope": SCOPE, "name": "recall"}],
        "root",
        1,
        "BUFFER",
        lifetime=3600,
        ignore_account_limit=True,
    )
    session.commit()
    with transaction(db) as s:
        queued = set(s.execute(select(Request.request_type, Request.dest_rse_id)).tuples())
    assert queued == {(RequestType.STAGEIN, buffer_id)}
    conveyor_env(transfertool="local", local_staging_seconds="0.5", separate_stager="true")
    submitter, poller, finisher = daemons(db)
    for _ in range(3):
        submitter.run_once(100)
    with transaction(db) as s:
        assert set(s.scalars(select(Request.state))) == {RequestState.QUEUED}  # not the submitter's
    drain(db, Stager(db_url=db), poller, finisher)
    assert locks_by_rse(db, buffered) == {"BUFFER": {LockState.OK}}
    assert on_storage(tape_site, "BUFFER", files)
    with transaction(db) as s:
        sources = set(s.execute(select(RSE.rse).join(Request, Request.source_rse_id == RSE.id)).scalars())
        staged = s.execute(select(Request.staging_started_at, Request.staging_finished_at)).all()
        pinned = set(s.scalars(select(LocalPin.url)))
    assert sources == {"VAULT"} and all(start and end for start, end in staged)
    assert pinned == {f"file://{tape_site / 'VAULT' / hash_path(SCOPE, s.name)}" for s in files}


def _run_once(db: str, name: str, **options: str) -> None:
    """``datamgmt-daemon NAME --run-once`` as its own OS process, with ``[conveyor]`` ``options``."""
    env = {**daemon_env(db), **{f"DATAMGMT_CONVEYOR_{key.upper()}": value for key, value in options.items()}}
    result = subprocess.run(
        [DAEMON, name, "--run-once"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _phases(db: str) -> set[tuple[RequestState, str | None, str]]:
    with transaction(db) as s:
        return set(
            s.execute(
                select(Request.state, Request.external_state, LocalTransfer.state).join(
                    LocalTransfer, LocalTransfer.id == Request.external_id
                )
            ).tuples()
        )


def _time_passes(db: str) -> None:
    """The tape phases under way reach their end (rather than waiting for them in the test)."""
    with transaction(db) as s:
        s.execute(
            update(LocalTransfer)
            .where(LocalTransfer.phase_until.is_not(None))
            .values(phase_until=utcnow() - timedelta(seconds=1))
        )


def test_tape_phases_end_across_processes(db, session, tape_site):  # noqa: F811
    """Submitter and poller as separate processes: the tape phases hold no lease and end by time,
    so a poller in another process ends an archive, and a recall staged under one submitter
    process is copied by the next."""
    files = dataset_on(session, tape_site, "apart", ["DISK1"], count=2)
    backup = rule(session, "apart", 1, "VAULT")
    session.rollback()
    tape = {"local_archive_seconds": "600", "local_staging_seconds": "600"}
    _run_once(db, "conveyor-submitter", **tape)  # copied to the buffer, then ARCHIVING
    _run_once(db, "conveyor-poller", **tape)
    assert _phases(db) == {(RequestState.SUBMITTED, "ARCHIVING", "ARCHIVING")}
    assert locks_by_rse(db, backup) == {"VAULT": {LockState.REPLICATING}}
    _time_passes(db)
    _run_once(db, "conveyor-poller", **tape)  # the archive is over: this process ends it
    assert _phases(db) == {(RequestState.DONE, "DONE", "DONE")}
    assert locks_by_rse(db, backup) == {"VAULT": {LockState.OK}}

    with transaction(db) as s:  # the disk copies go; a recall to NEWDISK must come from tape
        delete_rule(s, rule(s, "apart", 1, "DISK1"), issuer="root", purge_replicas=True)
    Reaper(db_url=db).run_once(1000)
    recall = rule(session, "apart", 1, "NEWDISK")
    session.rollback()
    _run_once(db, "conveyor-submitter", **tape)  # stored STAGING; nothing to copy yet
    assert {state for _, _, state in _phases(db)} == {"DONE", "STAGING"}
    _time_passes(db)
    _run_once(db, "conveyor-poller", **tape)  # staging over: QUEUED for a copier
    _run_once(db, "conveyor-submitter", **tape)  # another process copies it
    _run_once(db, "conveyor-poller", **tape)
    assert locks_by_rse(db, recall) == {"NEWDISK": {LockState.OK}}
    assert on_storage(tape_site, "NEWDISK", files)
