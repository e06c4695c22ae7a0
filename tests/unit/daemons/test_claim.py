"""Lease claiming: exclusive, expiring, confirmable, and generic over single and composite keys."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from datamgmt.core import claim, did, replica, rse, scope
from datamgmt.core.db.models import Message, Replica
from datamgmt.core.db.types import utcnow
from tests.unit.daemons.toy import WORK, add_work


def claim_work(session, worker, limit=10, lease=60):
    rows = WORK.claim(session, worker, limit, lease)
    session.commit()
    return [row[0] for row in rows]


def test_two_workers_never_get_the_same_rows(session):
    add_work(session, 25)
    first = claim_work(session, "a", limit=10)
    second = claim_work(session, "b", limit=10)
    third = claim_work(session, "c", limit=10)
    assert len(first) == 10 and len(second) == 10 and len(third) == 5
    assert not set(first) & set(second) and not set(second) & set(third)
    assert claim_work(session, "d") == []


def test_expired_lease_is_claimed_again(session):
    add_work(session, 3)
    won = claim_work(session, "dead", limit=3)
    session.execute(update(Message).values(claimed_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert sorted(claim_work(session, "alive")) == sorted(won)


def test_confirm_fails_after_takeover(session):
    add_work(session, 1)
    (key,) = claim_work(session, "slow")
    session.execute(update(Message).values(claimed_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert claim_work(session, "fast") == [key]
    assert claim.confirm(session, Message, "slow", [(key,)], 60) == []
    assert claim.confirm(session, Message, "fast", [(key,)], 60) == [(key,)]


def test_release_with_hold_keeps_rows_back(session):
    add_work(session, 2)
    keys = claim_work(session, "w", limit=2)
    assert claim.release(session, Message, "w", [(keys[0],)], hold_seconds=3600) == 1
    assert claim.release(session, Message, "w", [(keys[1],)]) == 1
    assert claim.release(session, Message, "other", [(keys[1],)]) == 0
    session.commit()
    assert claim_work(session, "x") == [keys[1]]


def test_complete_delete_only_removes_own_rows(session):
    add_work(session, 2)
    keys = claim_work(session, "w", limit=2)
    assert claim.complete_delete(session, Message, "other", [(k,) for k in keys]) == 0
    assert claim.complete_delete(session, Message, "w", [(k,) for k in keys]) == 2


def test_composite_keys(session, root):
    scope.add_scope(session, "data", "root")
    rse_id = rse.add_rse(session, "SITE-A")
    files = [{"scope": "data", "name": f"f{i}", "bytes": 1, "adler32": "00000001"} for i in range(4)]
    did.add_files(session, files, "root")
    replica.add_replicas(session, "SITE-A", files, "root")
    session.commit()
    rows = claim.claim(
        session,
        Replica,
        "w",
        filters=[Replica.rse_id == rse_id],
        order_by=[Replica.name],
        limit=3,
        lease_seconds=60,
    )
    session.commit()
    assert sorted(tuple(r) for r in rows) == [("data", f"f{i}", rse_id) for i in range(3)]
    assert claim.claim_keys(session, Replica, "v", [("data", "f2", rse_id), ("data", "f3", rse_id)], 60) == [
        ("data", "f3", rse_id)
    ]
    assert sorted(claim.claimed_by(session, Replica, "w")) == [("data", f"f{i}", rse_id) for i in range(3)]
    held = session.scalars(select(Replica.claimed_by).order_by(Replica.name)).all()
    assert held == ["w", "w", "w", "v"]
