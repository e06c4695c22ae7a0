"""MinFreeSpace against real free space (issue 15, defect 9).

The reaper's free space comes from the storage (statvfs on a posix RSE) or, where the
storage cannot tell, from the ``MaxSpaceAvailable`` capacity less the catalogue's bytes, so
``bytes_to_free`` follows files as they are written and deleted instead of a counter that
only ever grew as the reaper freed space.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from datamgmt.core import deletion, did, replica, rse, scope
from datamgmt.core.db.models import Replica, RSEUsage
from datamgmt.core.db.types import utcnow
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.protocols import create_protocol
from datamgmt.rse.protocols.base import Protocol

MiB = 1 << 20
#: Other processes share this disk: what they write between two readings stays well below this.
SLACK = 16 * MiB


def posix_rse(session, name: str, root: Path) -> Protocol:
    rse.add_rse(session, name)
    rse.add_protocol(session, name, {"scheme": "file", "prefix": str(root), "impl": "posix"})
    return create_protocol(rse.list_protocols(session, name)[0])


def write(session, protocol: Protocol, rse_name: str, name: str, size: int, tombstone=None) -> Path:
    """A real file of ``size`` bytes on the RSE, registered as its replica."""
    replica.add_replicas(
        session, rse_name, [{"scope": "data", "name": name, "bytes": size, "adler32": "00000001"}], "root"
    )
    session.execute(update(Replica).where(Replica.name == name).values(tombstone=tombstone))
    (pfn,) = protocol.lfns2pfns([{"scope": "data", "name": name}]).values()
    path = Path(pfn.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            out.write(os.urandom(MiB))
        out.write(b"x" * (size % MiB))
        out.flush()
        os.fsync(out.fileno())
    session.commit()
    return path


def storage_free(session, rse_name: str) -> int | None:
    session.expire_all()
    free = session.scalar(
        select(RSEUsage.free).where(
            RSEUsage.rse_id == rse.get_rse_id(session, rse_name), RSEUsage.source == "storage"
        )
    )
    session.rollback()
    return free


def needed(session, rse_name: str) -> int | None:
    value = deletion.bytes_to_free(session, rse.get_rse_id(session, rse_name))
    session.rollback()
    return value


def test_posix_space_is_statvfs_of_the_prefix_or_its_nearest_parent(tmp_path):
    protocol = create_protocol(
        {"scheme": "file", "prefix": str(tmp_path / "not" / "made" / "yet"), "impl": "posix"}
    )
    space = protocol.space()
    info = os.statvfs(tmp_path)
    assert space is not None
    assert space.total == info.f_blocks * info.f_frsize
    assert abs(space.free - info.f_bavail * info.f_frsize) < SLACK


def test_storage_usage_follows_the_disk_as_files_are_written_and_deleted(session, root, tmp_path):
    scope.add_scope(session, "data", "root")
    protocol = posix_rse(session, "DISK", tmp_path / "DISK")
    session.commit()
    reaper = Reaper("r")
    reaper.run_once(10)
    before = storage_free(session, "DISK")
    assert before is not None
    assert abs(before - os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize) < SLACK

    big = write(session, protocol, "DISK", "big", 128 * MiB, tombstone=utcnow() - timedelta(minutes=1))
    reaper.run_once(10)  # no MinFreeSpace yet: nothing to free, but the space is read again
    after_write = storage_free(session, "DISK")
    assert big.exists()
    assert before - after_write > 128 * MiB - SLACK

    rse.set_rse_limits(session, "DISK", "MinFreeSpace", after_write + MiB)
    session.commit()
    reaper.run_once(10)  # short by about 1 MiB: the only candidate, "big", goes
    assert not big.exists()
    reaper.run_once(10)
    assert storage_free(session, "DISK") - after_write > 128 * MiB - SLACK
    assert needed(session, "DISK") == 0


def test_capacity_less_catalogue_bytes_when_the_storage_cannot_tell(session, root, tmp_path):
    """An RSE without a protocol that reports space: MaxSpaceAvailable less what the catalogue holds."""
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "TAPE-LIKE")
    rse.set_rse_limits(session, "TAPE-LIKE", "MaxSpaceAvailable", 10_000)
    rse.set_rse_limits(session, "TAPE-LIKE", "MinFreeSpace", 4_000)
    files = [{"scope": "data", "name": f"t{i}", "bytes": 1_000, "adler32": "00000001"} for i in range(5)]
    did.add_files(session, files, "root")
    replica.add_replicas(session, "TAPE-LIKE", files, "root")
    session.commit()
    Reaper("r").run_once(10)
    assert storage_free(session, "TAPE-LIKE") == 5_000
    assert needed(session, "TAPE-LIKE") == 0

    more = [{"scope": "data", "name": f"u{i}", "bytes": 1_000, "adler32": "00000001"} for i in range(2)]
    did.add_files(session, more, "root")
    replica.add_replicas(session, "TAPE-LIKE", more, "root")
    session.commit()
    Reaper("r").run_once(10)
    assert storage_free(session, "TAPE-LIKE") == 3_000
    assert needed(session, "TAPE-LIKE") == 1_000


def test_bytes_to_free_follows_writes_and_deletes(session, root, tmp_path):
    """Capacity 10 kB, MinFreeSpace 4 kB: writes make space short, the reaper frees exactly
    the shortfall, and then nothing more (the old counter went up by every deletion and never
    down by a write, so the reaper either never started or never stopped)."""
    scope.add_scope(session, "data", "root")
    protocol = posix_rse(session, "SITE", tmp_path / "SITE")
    rse.set_rse_limits(session, "SITE", "MaxSpaceAvailable", 10_000)
    rse.set_rse_limits(session, "SITE", "MinFreeSpace", 4_000)
    session.commit()
    reaper = Reaper("r")
    start = utcnow() - timedelta(hours=1)
    paths = [
        write(session, protocol, "SITE", f"f{i}", 1_000, tombstone=start + timedelta(minutes=i))
        for i in range(5)
    ]
    reaper.run_once(10)
    assert needed(session, "SITE") == 0 and all(p.exists() for p in paths)

    paths += [
        write(session, protocol, "SITE", f"f{i}", 1_000, tombstone=start + timedelta(minutes=i))
        for i in (5, 6)
    ]
    reaper.run_once(10)  # 7 kB used, 3 kB free: 1 kB short, so the oldest file goes
    assert [p.exists() for p in paths] == [False] + [True] * 6
    reaper.run_once(10)
    assert needed(session, "SITE") == 0
    reaper.run_once(10)
    assert [p.exists() for p in paths] == [False] + [True] * 6
