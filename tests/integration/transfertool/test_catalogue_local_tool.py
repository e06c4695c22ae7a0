"""The conveyor's ``local`` tool (state in the catalogue) keeps its copy slots busy (issue 18).

Its syncing thread records ended copies and claims new ones; between syncs it sleeps a fifth of
the lease.  A slot whose copy ended must be refilled at once, not at the next periodic sync: with
small files the sleep, not the copy, was what the scale-out run measured (about 7 copies/s).
"""

from __future__ import annotations

import time

import pytest

from datamgmt.daemons.conveyor.local_transfers import CatalogueLocalTool
from datamgmt.transfertool.base import TransferSpec, TransferState
from datamgmt.transfertool.local import LocalTransferTool

pytestmark = pytest.mark.integration

#: A periodic sync every 12 s: far longer than the copies below take together.
LEASE = 60


def test_a_slot_is_refilled_when_its_copy_ends_not_at_the_next_periodic_sync(
    db, make_file, tmp_path, wait_final, gfal2_options
):
    files = [make_file(1024) for _ in range(5)]
    specs = [
        TransferSpec(f"r{i}", [f.url], f"file://{tmp_path}/dst/{i}", adler32=f.adler32)
        for i, f in enumerate(files)
    ]
    tool = CatalogueLocalTool(db, lease_seconds=LEASE)
    tool.start_copying(LocalTransferTool(threads=1, gfal2_options=gfal2_options), slots=1)
    try:
        started = time.monotonic()
        submitted = tool.submit(tool.prepare(specs))
        statuses = wait_final(tool, submitted.values(), timeout=LEASE / 5)
        elapsed = time.monotonic() - started
    finally:
        tool.close()
    assert {s.state for s in statuses.values()} == {TransferState.DONE}, statuses
    assert elapsed < LEASE / 10, f"5 copies through one slot took {elapsed:.1f} s"
    for i, f in enumerate(files):
        assert (tmp_path / "dst" / str(i)).read_bytes() == f.data
