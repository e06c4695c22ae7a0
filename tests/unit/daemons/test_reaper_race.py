"""The reaper against rules that want a replica it is deleting (issue 15, defect 1).

Each test interleaves deterministically: the reaper has leased a batch, and a rule is created
from another transaction at the moment the reaper's first physical delete runs (or just after
it).  By then the first file is confirmed for deletion and the second only leased, so both of
the lock code's answers are exercised: the second replica is taken back (its file stays, the
lock is OK), the first is copied back by transfer (or STUCK without a source).  Whatever the
timing, no lock may end on a missing file, and every counter must match a recount.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from datamgmt.config import reset_config
from datamgmt.core import deletion, did, did_content, replica, rse, rule, scope
from datamgmt.core.db.constants import LockState, ReplicaState, RequestState, RuleState
from datamgmt.core.db.models import Lock, Replica, Request, Rule
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.protocols import create_protocol
from tests.invariants import check_invariants

DATA = {"old": b"o" * 300, "new": b"n" * 500}


class RuleDuringDelete:
    """A delete protocol that lets a rule be created right before (or after) the first delete."""

    def __init__(self, inner, make_rule, after: bool) -> None:
        self.inner, self.make_rule, self.after, self.deleted = inner, make_rule, after, []

    def space(self):
        return self.inner.space()

    def lfns2pfns(self, lfns):
        return self.inner.lfns2pfns(lfns)

    def delete(self, pfn: str) -> None:
        first = not self.deleted
        self.deleted.append(pfn)
        if first and not self.after:
            self.make_rule()
        self.inner.delete(pfn)
        if first and self.after:
            self.make_rule()


def put_files(session, rse_name: str, root: Path) -> None:
    """Register the two files on ``rse_name`` and write them below ``root``."""
    files = [{"scope": "data", "name": n, "bytes": len(b), "adler32": _adler(b)} for n, b in DATA.items()]
    replica.add_replicas(session, rse_name, files, "root")
    protocol = create_protocol(rse.list_protocols(session, rse_name)[0])
    for key, pfn in protocol.lfns2pfns(files).items():
        path = Path(pfn.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(DATA[key.split(":")[1]])


def _adler(data: bytes) -> str:
    import zlib

    return f"{zlib.adler32(data):08x}"


@pytest.fixture
def layout(session, root, tmp_path, monkeypatch):
    """SITE holds ``old`` and ``new`` unlocked and tombstoned (old first in LRU order) and is
    greedy; SRC holds them too when a test asks for a source.  Dataset ``ds`` has both."""
    monkeypatch.setenv("DATAMGMT_CONVEYOR_TRANSFERTOOL", "local")
    monkeypatch.setenv("DATAMGMT_CONVEYOR_POLL_INTERVAL", "0")
    reset_config()
    scope.add_scope(session, "data", "root")
    for name in ("SITE", "SRC"):
        rse.add_rse(session, name)
        rse.add_protocol(session, name, {"scheme": "file", "prefix": str(tmp_path / name), "impl": "posix"})
    rse.add_rse_attribute(session, "SITE", "greedyDeletion", True)
    did.add_collection(session, "data", "ds", "DATASET", "root")
    put_files(session, "SITE", tmp_path / "SITE")
    did_content.attach(session, "data", "ds", [{"scope": "data", "name": n} for n in DATA])
    start = utcnow() - timedelta(hours=1)
    for i, name in enumerate(DATA):
        session.execute(
            update(Replica)
            .where(Replica.name == name)
            .values(tombstone=start + timedelta(minutes=i), accessed_at=start + timedelta(minutes=i))
        )
    session.commit()
    yield tmp_path
    tools.reset()
    reset_config()


def site_file(tmp_path: Path, session, name: str) -> Path:
    protocol = create_protocol(rse.list_protocols(session, "SITE")[0])
    (pfn,) = protocol.lfns2pfns([{"scope": "data", "name": name}]).values()
    return Path(pfn.removeprefix("file://"))


def reap_with_rule_in_between(db: str, after: bool) -> tuple[Reaper, list[str]]:
    rule_ids: list[str] = []

    def make_rule() -> None:
        with transaction(db) as other:
            rule_ids.extend(rule.add_rule(other, [{"scope": "data", "name": "ds"}], "root", 1, "SITE"))

    reaper = Reaper("reaper-1", db_url=db)
    reaper.lease_seconds = 2
    reaper.protocol_factory = lambda record: RuleDuringDelete(create_protocol(record), make_rule, after)
    reaper.run_once(100)
    assert rule_ids, "the rule must have been created while the reaper worked"
    return reaper, rule_ids


def replica_on(session, name: str, rse_name: str) -> Replica | None:
    session.expire_all()
    return session.get(Replica, ("data", name, rse.get_rse_id(session, rse_name)))


@pytest.mark.parametrize("after", [False, True], ids=["rule-before-unlink", "rule-after-unlink"])
def test_a_rule_during_deletion_loses_nothing(session, db, layout, after):
    put_files(session, "SRC", layout / "SRC")
    session.commit()
    _, (rule_id,) = reap_with_rule_in_between(db, after)

    # "new" was only leased when the rule came: taken back, its file never touched.
    kept = replica_on(session, "new", "SITE")
    assert kept is not None and kept.state == ReplicaState.AVAILABLE and kept.lock_cnt == 1
    assert kept.claimed_by is None
    assert site_file(layout, session, "new").read_bytes() == DATA["new"]
    # "old" was confirmed: its file went, and the rule copies it back once the reaper's lease is over.
    copying = replica_on(session, "old", "SITE")
    assert copying is not None and copying.state == ReplicaState.COPYING and copying.lock_cnt == 1
    assert not site_file(layout, session, "old").exists()
    request = session.scalars(select(Request).where(Request.name == "old")).one()
    assert request.state == RequestState.QUEUED and request.not_before is not None
    locks = {lock.name: lock.state for lock in session.scalars(select(Lock).where(Lock.rule_id == rule_id))}
    assert locks == {"old": LockState.REPLICATING, "new": LockState.OK}
    check_invariants(session)
    session.rollback()

    drain_conveyor(db, session)
    assert site_file(layout, session, "old").read_bytes() == DATA["old"]
    assert site_file(layout, session, "new").read_bytes() == DATA["new"]
    done = session.get(Rule, rule_id)
    assert done.state == RuleState.OK and done.locks_ok_cnt == 2 and done.locks_replicating_cnt == 0
    check_invariants(session)


def drain_conveyor(db: str, session, rounds: int = 100) -> None:
    """Run the conveyor (local copies) until no request is pending; the first ones wait out
    the reaper's lease (``not_before``)."""
    import time

    daemons = (Submitter(db_url=db), Poller(db_url=db), Finisher(db_url=db))
    for _ in range(rounds):
        for daemon in daemons:
            daemon.run_once(100)
        session.expire_all()
        pending = session.scalar(
            select(Request.id).where(Request.state.not_in([RequestState.DONE, RequestState.FAILED])).limit(1)
        )
        session.rollback()
        if pending is None:
            return
        time.sleep(0.1)
    raise AssertionError("the copy back did not finish")


def test_without_a_source_the_lock_is_stuck_on_an_unavailable_replica(session, db, layout):
    _, (rule_id,) = reap_with_rule_in_between(db, after=False)
    gone = replica_on(session, "old", "SITE")
    assert gone is not None and gone.state == ReplicaState.UNAVAILABLE and gone.lock_cnt == 1
    assert not site_file(layout, session, "old").exists()
    assert site_file(layout, session, "new").read_bytes() == DATA["new"]
    stuck = session.get(Rule, rule_id)
    assert stuck.state == RuleState.STUCK and stuck.locks_stuck_cnt == 1 and stuck.locks_ok_cnt == 1
    check_invariants(session)


@pytest.mark.corrupts_catalogue(
    "deterministic_path", "shared_path"
)  # a shared path, built on purpose where no constraint forbids it yet
def test_a_path_another_replica_uses_is_not_unlinked(session, db, layout):
    """Two rows naming one file: reaping one drops its row, never the file the other lists."""
    path = "shared/file"
    try:
        session.execute(
            update(Replica).where(Replica.rse_id == rse.get_rse_id(session, "SITE")).values(path=path)
        )
        session.execute(update(Replica).where(Replica.name == "new").values(tombstone=None, lock_cnt=0))
        session.commit()
    except IntegrityError:
        pytest.skip("the catalogue refuses two replicas on one path: the case cannot arise")
    shared = layout / "SITE" / path
    shared.parent.mkdir(parents=True)
    shared.write_bytes(DATA["new"])
    reaper = Reaper("reaper-1", db_url=db)
    reaper.run_once(100)
    assert replica_on(session, "old", "SITE") is None
    assert shared.read_bytes() == DATA["new"]
    assert replica_on(session, "new", "SITE").state == ReplicaState.AVAILABLE


def test_a_rule_waits_for_a_confirmation_in_flight_and_sees_it(session, db, layout):
    """The rule reads the replicas before the reaper's confirmation commits, then has to lock
    the target row: it waits (PostgreSQL: the row lock; SQLite: the write lock) and decides
    on the committed BEING_DELETED, never on the AVAILABLE it read first."""
    import threading

    put_files(session, "SRC", layout / "SRC")
    did.add_collection(session, "data", "warm-up", "DATASET", "root")
    session.commit()
    with transaction(db) as other:  # compile the placement kernels now, not while racing
        rule.add_rule(other, [{"scope": "data", "name": "warm-up"}], "root", 1, "SITE")
    site = rse.get_rse_id(session, "SITE")
    session.rollback()  # SQLite: a writer of this test's own would hold the database lock
    with transaction(db) as reaper_tx:
        leased = deletion.claim_for_deletion(reaper_tx, site, "reaper-1", None, 100, 60)
    assert {r["name"] for r in leased} == set(DATA)
    created: list[str] = []
    with transaction(db) as reaper_tx:
        assert deletion.confirm_deletion(reaper_tx, "reaper-1", site, [("data", "old")], 60)
        rule_thread = threading.Thread(target=lambda: created.extend(_add_rule(db)))
        rule_thread.start()
        _wait_until_blocked(session, rule_thread)
    rule_thread.join(timeout=30)
    assert created
    states = {
        r.name: (r.state, r.lock_cnt) for r in session.scalars(select(Replica).where(Replica.rse_id == site))
    }
    assert states == {"old": (ReplicaState.COPYING, 1), "new": (ReplicaState.AVAILABLE, 1)}
    session.rollback()
    with transaction(db) as reaper_tx:
        assert deletion.forget_replicas(reaper_tx, "reaper-1", site, [("data", "old")]) == 0
    check_invariants(session)


def _wait_until_blocked(session, thread) -> None:
    """PostgreSQL: until another backend waits on a row lock; SQLite: a second (no other way to see it)."""
    import time

    if session.get_bind().dialect.name != "postgresql":
        thread.join(timeout=1.0)
    else:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            session.rollback()
            if waiting:
                break
            time.sleep(0.05)
    assert thread.is_alive(), "the rule must wait for the confirmation"


def _add_rule(db: str) -> list[str]:
    with transaction(db) as other:
        return rule.add_rule(other, [{"scope": "data", "name": "ds"}], "root", 1, "SITE")
