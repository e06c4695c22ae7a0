"""The local transfer tool's state in the catalogue (:mod:`datamgmt.core.local_transfer`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from datamgmt.core import local_transfer as store
from datamgmt.core.db.models import LocalTransfer
from datamgmt.core.db.types import utcnow


def transfer(transfer_id: str, destination: str, request_id: str = "r") -> store.StoredTransfer:
    return store.StoredTransfer(
        transfer_id, request_id, transfer_id, 0, destination, {"sources": ["file:///s"]}
    )


def expire(session, *ids: str) -> None:
    session.execute(
        update(LocalTransfer)
        .where(LocalTransfer.id.in_(ids))
        .values(claimed_until=utcnow() - timedelta(seconds=1))
    )


def test_a_transfer_stored_twice_is_kept_once(session):
    assert store.add_transfers(session, [transfer("a", "file:///d/1")]) == {"a"}
    assert store.add_transfers(session, [transfer("a", "file:///d/1"), transfer("b", "file:///d/2")]) == {
        "a",
        "b",
    }
    assert store.add_transfers(session, [transfer("a", "file:///d/1", request_id="other")]) == set()
    assert session.scalar(select(LocalTransfer.request_id).where(LocalTransfer.id == "a")) == "r"


def test_no_two_live_copies_of_one_destination(session):
    store.add_transfers(session, [transfer("first", "file:///d/x")])
    assert [t.id for t in store.claim_due(session, "w1", 10, 60)] == ["first"]
    store.add_transfers(session, [transfer("retry", "file:///d/x")])  # a new attempt, same file
    assert store.claim_due(session, "w2", 10, 60) == []  # w1's copy may still be writing it
    expire(session, "first")  # w1 died: its lease ran out
    taken = store.claim_due(session, "w2", 1, 60)
    assert [(t.id, t.spec["sources"]) for t in taken] == [("first", ["file:///s"])]
    assert session.scalar(select(LocalTransfer.attempts).where(LocalTransfer.id == "first")) == 2
    assert store.renew(session, "w1", ["first"], 60) == (set(), set())  # w1 must stop if it lives
    assert store.finish(session, "w1", [store.Outcome("first", store.DONE)]) == set()
    assert store.finish(session, "w2", [store.Outcome("first", store.DONE, transferred_bytes=3)]) == {"first"}
    assert [t.id for t in store.claim_due(session, "w2", 10, 60)] == ["retry"]
    rows = store.transfer_rows(session, ["first", "retry", "unknown"])
    assert (rows["first"].state, rows["first"].transferred_bytes) == (store.DONE, 3)
    assert (rows["retry"].state, rows["retry"].running) == (store.ACTIVE, True)
    assert "unknown" not in rows


def test_cancel_fails_queued_at_once_and_flags_running_for_their_worker(session):
    store.add_transfers(session, [transfer("run", "file:///d/1"), transfer("wait", "file:///d/2")])
    store.claim_due(session, "w", 1, 60)
    store.cancel(session, ["run", "wait"])
    rows = store.transfer_rows(session, ["run", "wait"])
    assert (rows["wait"].state, rows["wait"].reason) == (store.FAILED, store.CANCELED_REASON)
    assert rows["run"].state == store.ACTIVE
    assert store.renew(session, "w", ["run"], 60) == ({"run"}, {"run"})
    expire(session, "run")  # its worker died before it stopped: nobody runs it again
    assert store.claim_due(session, "w2", 10, 60) == []
    assert store.transfer_rows(session, ["run"])["run"].state == store.FAILED
