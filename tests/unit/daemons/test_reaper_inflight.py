"""The reaper and a transfer still writing the replica it would delete (found by the fault campaign).

A rule removed while its transfer is SUBMITTED leaves the destination replica unlocked,
UNAVAILABLE and OBSOLETE.  Had the reaper deleted that row at once, the copy still in
flight would land afterwards on a path no replica row names: a dark file, which no daemon
would ever delete (``storage_dark`` in ``datamgmt-admin check --storage``; the FTS outage run
left dozens).  The reaper must wait until the transfer has ended, then delete file and row.
"""

from __future__ import annotations

from sqlalchemy import update

from datamgmt.core import did, did_content, request, rse, rule, rule_update
from datamgmt.core.db.constants import OBSOLETE, ReplicaState, RequestState
from datamgmt.core.db.models import Replica, Request
from datamgmt.core.invariants import check_storage
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.lfn2pfn import hash_path
from tests.unit.conveyor.catalogue import SCOPE, add_posix_replica, add_posix_rse, ensure_scope, random_file


def test_a_replica_a_transfer_still_writes_is_reaped_only_after_the_transfer(session, db, root, tmp_path):
    ensure_scope(session)
    add_posix_rse(session, "SRC", tmp_path / "SRC")
    dst_id = add_posix_rse(session, "DST", tmp_path / "DST")
    rse.add_rse_attribute(session, "DST", "greedyDeletion", True)
    spec = random_file("inflight")
    add_posix_replica(session, "SRC", tmp_path / "SRC", spec)
    did.add_collection(session, SCOPE, "ds", "DATASET", "root")
    did_content.attach(session, SCOPE, "ds", [{"scope": SCOPE, "name": spec.name}])
    (rule_id,) = rule.add_rule(session, [{"scope": SCOPE, "name": "ds"}], "root", 1, "DST")
    # The submitter handed the copy to the transfer tool; then the owner's rule went.
    request_id = session.execute(
        update(Request)
        .where(Request.name == spec.name)
        .values(state=RequestState.SUBMITTED, external_id="job-1")
        .returning(Request.id)
    ).scalar_one()
    rule_update.delete_rule(session, rule_id)
    session.commit()
    dst_replica = session.get(Replica, (SCOPE, spec.name, dst_id))
    assert dst_replica.state == ReplicaState.UNAVAILABLE and dst_replica.tombstone == OBSOLETE
    session.rollback()  # no read transaction left open while the reaper writes (SQLite)

    reaper = Reaper("reaper-1", db_url=db)
    reaper.run_once(100)
    session.expire_all()
    assert session.get(Replica, (SCOPE, spec.name, dst_id)) is not None, "reaped while the copy was in flight"
    session.rollback()

    # The copy lands and the poller applies it: the replica is whole, and unwanted.
    arrived = tmp_path / "DST" / hash_path(SCOPE, spec.name)
    arrived.parent.mkdir(parents=True, exist_ok=True)
    arrived.write_bytes(spec.data)
    assert request.requests_done(session, [request_id]) == [request_id]
    session.commit()
    session.rollback()

    reaper.run_once(100)
    session.expire_all()
    assert session.get(Replica, (SCOPE, spec.name, dst_id)) is None
    assert not arrived.exists(), "the copy that arrived after its rule went is deleted, not left dark"
    report = check_storage(session, rses=["DST"])
    assert report.ok, report.render()
    session.rollback()
