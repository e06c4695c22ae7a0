"""The ``local`` transfer tool with the conveyor daemons as separate OS processes (issue 18).

Each daemon runs as ``datamgmt-daemon NAME --run-once`` (or without it, killed with SIGKILL),
on the test catalogue (SQLite, or PostgreSQL with ``DATAMGMT_TEST_DB_URL``), copying between
posix RSEs.  The local tool's transfers live in the catalogue, so a poller in another process
learns their outcome, and a copy whose process died is taken over once its lease has run out,
never while it is live.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from datamgmt.core import local_transfer
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import LocalTransfer, Request
from datamgmt.core.db.session import transaction
from datamgmt.rse.lfn2pfn import hash_path
from tests.integration.conveyor.test_conveyor_posix import assert_all_done, layout  # noqa: F401 (fixture)
from tests.unit.conveyor.catalogue import SCOPE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DAEMON = str(Path(sys.executable).parent / "datamgmt-daemon")
LEASE = 4


def daemon_env(db: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATAMGMT_DATABASE_URL": db,
        "DATAMGMT_CONVEYOR_TRANSFERTOOL": "local",
        "DATAMGMT_CONVEYOR_LOCAL_LEASE_SECONDS": str(LEASE),
        "DATAMGMT_CONVEYOR_POLL_INTERVAL": "0",
        "DATAMGMT_CONVEYOR_SUBMIT_RETRY_SECONDS": "0",
    }


def run_once(db: str, name: str) -> None:
    result = subprocess.run(
        [DAEMON, name, "--run-once"],
        env=daemon_env(db),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def rows(db: str, model: type) -> list:
    with transaction(db) as session:
        found = list(session.scalars(select(model)))
        session.expunge_all()
    return found


def test_submitter_and_poller_in_separate_processes_with_run_once(db, layout):  # noqa: F811
    files, ids, dest_root = layout
    run_once(db, "conveyor-submitter")  # submits, copies, records the outcomes, exits
    assert {r.state for r in rows(db, Request)} == {RequestState.SUBMITTED}
    assert {(t.state, t.attempts) for t in rows(db, LocalTransfer)} == {("DONE", 1)}
    run_once(db, "conveyor-poller")  # another process: reads the outcomes from the catalogue
    assert {(r.state, r.retry_count) for r in rows(db, Request)} == {(RequestState.DONE, 0)}
    assert_all_done(db, files, dest_root)


def test_copy_whose_process_died_is_run_again_after_its_lease_not_before(db, layout, tmp_path):  # noqa: F811
    """The submitter is SIGKILLed while it copies (its source is a FIFO nobody writes, so the
    copy hangs).  Nobody may claim the chain while the dead worker's lease is live; once it has
    run out another submitter process copies it again, and the poller, a third, sees it done."""
    files, ids, dest_root = layout
    source = tmp_path / "SRC" / hash_path(SCOPE, files[0].name)
    source.unlink()
    os.mkfifo(source)
    env = {**daemon_env(db), "DATAMGMT_CONVEYOR_LOCAL_THREADS": "1"}
    first = subprocess.Popen(
        [DAEMON, "conveyor-submitter"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not [t for t in rows(db, LocalTransfer) if t.state == "ACTIVE"]:
            assert time.monotonic() < deadline, "the first submitter never started a copy"
            time.sleep(0.1)
        time.sleep(LEASE)  # it is stuck on the FIFO and keeps renewing its lease meanwhile
        (stuck,) = [t for t in rows(db, LocalTransfer) if t.state == "ACTIVE"]
        assert stuck.attempts == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with transaction(db) as session:  # the dead worker's lease is still live: nobody may copy it
        claimed = local_transfer.claim_due(session, "probe", 10, LEASE)
        assert stuck.id not in {t.id for t in claimed}  # only the five still queued
        local_transfer.give_back(session, "probe", [t.chain for t in claimed])
    source.unlink()
    source.write_bytes(files[0].data)

    time.sleep(LEASE + 0.5)
    run_once(db, "conveyor-submitter")
    again = {t.id: t for t in rows(db, LocalTransfer)}[stuck.id]
    assert (again.state, again.attempts) == ("DONE", 2)
    run_once(db, "conveyor-poller")
    assert {(r.state, r.retry_count) for r in rows(db, Request)} == {(RequestState.DONE, 0)}
    assert_all_done(db, files, dest_root)
