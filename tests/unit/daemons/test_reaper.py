"""The reaper: exactly enough, LRU first; never a locked replica or a transfer source; faults lose nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from datamgmt.core import did, replica, rse, scope
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import DataIdentifier, Message, Replica, Request, Source
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.daemons.reaper import Reaper
from datamgmt.exceptions import StorageError
from datamgmt.rse.protocols import create_protocol

SIZE = 200


@pytest.fixture
def site(session, root, tmp_path):
    """RSE SITE with a posix protocol below tmp_path, holding 250 files of 200 bytes, all unlocked and
    tombstoned; file i was last accessed i minutes after file 0."""
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE")
    rse.add_protocol(session, "SITE", {"scheme": "file", "prefix": str(tmp_path), "impl": "posix"})
    files = [{"scope": "data", "name": f"f{i:03d}", "bytes": SIZE, "adler32": "0000000a"} for i in range(250)]
    did.add_files(session, files, "root")
    replica.add_replicas(session, "SITE", files, "root")
    start = utcnow() - timedelta(days=1)
    for i in range(250):
        session.execute(
            update(Replica)
            .where(Replica.name == f"f{i:03d}")
            .values(tombstone=start + timedelta(minutes=i), accessed_at=start + timedelta(minutes=i))
        )
    protocol = create_protocol(rse.list_protocols(session, "SITE")[0])
    for pfn in protocol.lfns2pfns(files).values():
        path = Path(pfn.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * SIZE)
    session.commit()
    return protocol


def on_disk(protocol) -> set[str]:
    return {
        key.split(":")[1]
        for key, pfn in protocol.lfns2pfns(
            [{"scope": "data", "name": f"f{i:03d}"} for i in range(250)]
        ).items()
        if protocol.exists(pfn)
    }


def in_catalogue(session) -> set[str]:
    names = set(session.scalars(select(Replica.name)))
    session.rollback()
    return names


def drain(reaper: Reaper, rounds: int = 200) -> None:
    for _ in range(rounds):
        reaper.run_once(100)
        if reaper.idle:
            return


def test_frees_exactly_enough_least_recently_used_first(session, site):
    # The disk under tmp_path has far more than 10 kB free; the configured capacity less the
    # catalogue's 250 x 200 bytes is what makes space short (the smaller free space counts).
    rse.set_rse_limits(session, "SITE", "MinFreeSpace", 10_000)
    rse.set_rse_limits(session, "SITE", "MaxSpaceAvailable", 323 * 10**9)
    session.commit()
    drain(Reaper("r"))
    assert len(in_catalogue(session)) == 250

    rse.set_rse_limits(session, "SITE", "MaxSpaceAvailable", 250 * SIZE + 1)
    session.commit()
    drain(Reaper("r"))
    expected = {f"f{i:03d}" for i in range(50, 250)}  # 49 x 200 <= 9999 < 50 x 200; oldest first
    assert in_catalogue(session) == expected
    assert on_disk(site) == expected
    assert session.scalar(select(func.count()).where(Message.event_type == "deletion-done")) == 50
    removed = session.scalar(
        select(func.count()).select_from(DataIdentifier).where(DataIdentifier.name < "f050")
    )
    assert removed == 0  # their last replica went: the file DIDs went too


@pytest.mark.corrupts_catalogue("replica_lock_cnt", "locked_replica_tombstone")  # lock_cnt without locks
def test_greedy_never_takes_locked_replicas_or_transfer_sources(session, site):
    rse.add_rse_attribute(session, "SITE", "greedyDeletion", True)
    session.execute(update(Replica).where(Replica.name.in_(["f000", "f001"])).values(lock_cnt=1))
    rse.add_rse(session, "DEST")
    dest_id, site_id = rse.get_rse_id(session, "DEST"), rse.get_rse_id(session, "SITE")
    for name, state in (
        ("f002", RequestState.QUEUED),
        ("f003", RequestState.SUBMITTED),
        ("f004", RequestState.DONE),
    ):
        request_id = new_id()
        session.execute(
            insert(Request).values(id=request_id, scope="data", name=name, dest_rse_id=dest_id, state=state)
        )
        session.execute(
            insert(Source).values(
                request_id=request_id, rse_id=site_id, scope="data", name=name, dest_rse_id=dest_id
            )
        )
    session.execute(
        update(Replica).where(Replica.name == "f005").values(tombstone=utcnow() + timedelta(days=1))
    )
    session.commit()
    drain(Reaper("r"))
    kept = {"f000", "f001", "f002", "f003", "f005"}
    assert in_catalogue(session) == kept
    assert on_disk(site) == kept


class FlakyProtocol:
    """Fails 30% of deletions (before touching the file), like an overloaded endpoint."""

    def __init__(self, inner, rng: random.Random, log: list[str]) -> None:
        self.inner, self.rng, self.log = inner, rng, log

    def lfns2pfns(self, lfns):
        return self.inner.lfns2pfns(lfns)

    def delete(self, pfn: str) -> None:
        if self.rng.random() < 0.3:
            self.log.append(pfn)
            raise StorageError("injected failure")
        self.inner.delete(pfn)


def test_failing_storage_loses_nothing_and_everything_goes_eventually(session, site):
    rse.add_rse_attribute(session, "SITE", "greedyDeletion", True)
    session.commit()
    failures: list[str] = []
    reapers = []
    for name in ("r1", "r2"):
        reaper = Reaper(name)
        reaper.retry_base_seconds = 0
        reaper.protocol_factory = lambda record, rng=random.Random(name): FlakyProtocol(
            create_protocol(record), rng, failures
        )
        reapers.append(reaper)
    for _ in range(200):
        for reaper in reapers:
            reaper.run_once(40)
        remaining = in_catalogue(session)
        assert on_disk(site) == remaining  # a row goes only with its file, and a failure keeps both
        if not remaining:
            break
    assert in_catalogue(session) == set() and on_disk(site) == set()
    assert failures, "the wrapper must have failed some deletions"
    assert session.scalar(select(func.count()).where(Message.event_type == "deletion-failed")) == len(
        failures
    )
