"""Submitter → transfer tool → poller → finisher on posix RSEs, with the local tool and the FTS3 double."""

from __future__ import annotations

import os
import zlib

import pytest
from sqlalchemy import func, select

from datamgmt.config import reset_config
from datamgmt.core.db.constants import ReplicaState, RequestState
from datamgmt.core.db.models import Replica, Request
from datamgmt.core.db.session import transaction
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.rse.lfn2pfn import hash_path
from datamgmt.transfertool.local import LocalTransferTool
from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.unit.conveyor.catalogue import (
    SCOPE,
    add_posix_replica,
    add_posix_rse,
    add_request,
    ensure_scope,
    random_file,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def conveyor_env(monkeypatch):
    def configure(**options: str) -> None:
        for key, value in {"poll_interval": "0", "submit_retry_seconds": "0", **options}.items():
            monkeypatch.setenv(f"DATAMGMT_CONVEYOR_{key.upper()}", value)
        reset_config()

    yield configure
    tools.reset()
    reset_config()


@pytest.fixture
def layout(session, root, tmp_path):
    """SRC holds 6 files, DEST wants them (COPYING replicas and QUEUED requests)."""
    add_posix_rse(session, "SRC", tmp_path / "SRC")
    dest_id = add_posix_rse(session, "DEST", tmp_path / "DEST")
    ensure_scope(session)
    files = [random_file(f"file{i}") for i in range(6)]
    ids = []
    for spec in files:
        add_posix_replica(session, "SRC", tmp_path / "SRC", spec)
        ids.append(add_request(session, spec, dest_id))
    from datamgmt.core import replica

    replica.add_replicas(session, "DEST", [s.record() for s in files], "root", state=ReplicaState.COPYING)
    session.commit()
    return files, ids, tmp_path / "DEST"


def drain(db, *daemons, rounds: int = 200, seconds: float = 90) -> None:
    """Run the daemons until every request ended: at least ``rounds`` rounds and ``seconds``
    before giving up, so that a loaded machine (slow rounds, leases timing out late) is waited for."""
    import time

    deadline = time.monotonic() + seconds
    done = 0
    while done < rounds or time.monotonic() < deadline:
        for daemon in daemons:
            daemon.run_once(1000)
        done += 1
        with transaction(db) as session:
            pending = session.execute(
                select(Request.state, func.count())
                .where(Request.state.not_in([RequestState.DONE, RequestState.FAILED]))
                .group_by(Request.state)
            ).all()
        if not pending:
            return
        time.sleep(0.05)
    raise AssertionError(f"requests did not finish: {dict(pending)}")


def assert_all_done(db, files, dest_root):
    with transaction(db) as session:
        states = set(session.scalars(select(Request.state)))
        replicas = set(session.scalars(select(Replica.state).where(Replica.rse_id == Request.dest_rse_id)))
    assert states == {RequestState.DONE}
    assert replicas == {ReplicaState.AVAILABLE}
    for spec in files:
        data = (dest_root / hash_path(SCOPE, spec.name)).read_bytes()
        assert f"{zlib.adler32(data):08x}" == spec.adler32


def test_local_tool_end_to_end(db, layout, conveyor_env):
    files, _, dest_root = layout
    conveyor_env(transfertool="local")
    drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    assert_all_done(db, files, dest_root)


def test_tool_that_forgot_its_transfers_retries_them_as_attempts(db, layout, conveyor_env):
    files, _, dest_root = layout
    conveyor_env(transfertool="local")
    Submitter(db_url=db).run_once(1000)
    tools.set_local_tool(LocalTransferTool(threads=1)).close()  # an in-memory tool knows none of them
    poller, finisher = Poller(db_url=db), Finisher(db_url=db)
    poller.run_once(1000)
    with transaction(db) as session:
        assert set(session.scalars(select(Request.state))) == {RequestState.LOST}
    finisher.run_once(1000)
    with transaction(db) as session:  # a LOST transfer may have copied: it counts as an attempt
        assert set(session.scalars(select(Request.state))) == {RequestState.QUEUED}
        assert set(session.scalars(select(Request.retry_count))) == {1}
    drain(db, Submitter(db_url=db), poller, finisher)
    assert_all_done(db, files, dest_root)


def test_fts3_double_end_to_end_with_500_and_no_duplicates(db, layout, conveyor_env):
    files, ids, dest_root = layout
    with Fts3DoubleServer(Fts3Double()) as server:
        conveyor_env(transfertool="fts3", fts_host=server.url, files_per_job="4")
        server.double.faults.fail_next(1, 500)  # FTS answers the first call with 500
        submitter, poller = Submitter(db_url=db), Poller(db_url=db)
        submitter.run_once(1000)
        with transaction(db) as session:
            rows = session.execute(select(Request.state, Request.external_id, Request.claimed_by)).all()
        assert set(rows) == {(RequestState.QUEUED, None, None)}  # nothing half-written, released
        drain(db, submitter, poller, Finisher(db_url=db))
        submitted = [row["file_metadata"]["request_id"] for row in server.double.store.submitted]
    assert sorted(submitted) == sorted(ids)  # each request reached FTS exactly once
    assert_all_done(db, files, dest_root)


def test_failed_source_retries_from_second_source_then_gets_stuck(db, session, root, tmp_path, conveyor_env):
    from datamgmt.core import rse_distance
    from datamgmt.core.db.models import Source

    add_posix_rse(session, "BAD", tmp_path / "BAD")
    good_id = add_posix_rse(session, "GOOD", tmp_path / "GOOD")
    dest_id = add_posix_rse(session, "DEST", tmp_path / "DEST")
    ensure_scope(session)
    spec, lonely = random_file("twice"), random_file("lonely")
    add_posix_replica(session, "BAD", tmp_path / "BAD", spec, write=False)
    bad_copy = tmp_path / "BAD" / hash_path(SCOPE, spec.name)
    bad_copy.parent.mkdir(parents=True)
    bad_copy.write_bytes(b"x" * len(spec.data))  # corrupt: checksum mismatch
    add_posix_replica(session, "GOOD", tmp_path / "GOOD", spec)
    add_posix_replica(session, "BAD", tmp_path / "BAD", lonely, write=False)  # missing on storage
    for name in ("BAD", "GOOD"):
        rse_distance.set_distance(session, name, "DEST", 1)
    first = add_request(session, spec, dest_id)
    second = add_request(session, lonely, dest_id)
    # GOOD failed once before, so BAD is tried first; its failure must rank it below GOOD.
    session.add(
        Source(request_id=first, rse_id=good_id, scope=SCOPE, name="twice", dest_rse_id=dest_id, ranking=-1)
    )
    session.commit()
    conveyor_env(transfertool="local", max_retries="2")
    drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    with transaction(db) as s:
        rows = {r.id: r for r in s.scalars(select(Request))}
    assert rows[first].state is RequestState.DONE and rows[first].retry_count == 1
    assert rows[first].source_rse_id == good_id
    assert rows[second].state is RequestState.FAILED and rows[second].retry_count == 2
    assert (tmp_path / "DEST" / hash_path(SCOPE, spec.name)).read_bytes() == spec.data


def test_local_copy_never_writes_through_a_link_out_of_the_destination_prefix(
    db, layout, conveyor_env, tmp_path
):
    """A directory under DEST's prefix is a link to somewhere else (another user's data, /etc):
    the transfers whose hash path goes through it fail, and nothing is written there."""
    files, ids, dest_root = layout
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = hash_path(SCOPE, files[0].name).split("/")[0]
    dest_root.mkdir(exist_ok=True)
    os.symlink(outside, dest_root / planted)
    conveyor_env(transfertool="local", max_retries="0")
    drain(db, Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    assert list(outside.iterdir()) == []
    through_link = {spec.name for spec in files if hash_path(SCOPE, spec.name).startswith(planted + "/")}
    with transaction(db) as session:
        outcome = {
            name: (state, err)
            for name, state, err in session.execute(select(Request.name, Request.state, Request.err_msg))
        }
    for name, (state, err) in outcome.items():
        if name in through_link:
            assert state is RequestState.FAILED and "escapes its storage prefix" in err
        else:
            assert state is RequestState.DONE
