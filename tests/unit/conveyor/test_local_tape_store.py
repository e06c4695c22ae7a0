"""The local tool's model of tape in the catalogue (:mod:`datamgmt.core.local_tape`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from datamgmt.core import local_tape
from datamgmt.core import local_transfer as store
from datamgmt.core.db.models import LocalPin, LocalTransfer
from datamgmt.core.db.types import utcnow


def on_tape(tmp_path: Path, name: str = "f") -> str:
    path = tmp_path / name
    path.write_bytes(b"tape")
    return f"file://{path}"


def transfer(transfer_id: str, source: str, destination: str, **spec: object) -> store.StoredTransfer:
    return store.StoredTransfer(
        transfer_id, f"r-{transfer_id}", transfer_id, 0, destination, {"sources": [source], **spec}
    )


def phase_over(session, *ids: str) -> None:
    session.execute(
        update(LocalTransfer)
        .where(LocalTransfer.id.in_(ids))
        .values(phase_until=utcnow() - timedelta(seconds=1))
    )


def pins(session) -> dict[str, object]:
    return dict(session.execute(select(LocalPin.url, LocalPin.pinned_until)).tuples().all())


def test_a_tape_source_is_staged_before_it_may_be_copied_then_stays_online(session, tmp_path):
    source = on_tape(tmp_path)
    store.add_transfers(
        session,
        [transfer("a", source, "file:///d/a", bring_online=60, copy_pin_lifetime=600)],
        staging_seconds=30,
    )
    row = store.transfer_rows(session, ["a"])["a"]
    assert row.state == local_tape.STAGING and row.staging_started is not None
    assert local_tape.advance(session) == 0  # not due yet
    assert store.claim_due(session, "w", 10, 60) == []  # nobody reads a file still on tape
    phase_over(session, "a")
    assert local_tape.advance(session) == 1
    assert local_tape.advance(session) == 0  # a second process advancing finds nothing left to do
    row = store.transfer_rows(session, ["a"])["a"]
    assert row.state == store.QUEUED and row.staging_finished is not None
    assert [t.id for t in store.claim_due(session, "w", 10, 60)] == ["a"]
    (until,) = pins(session).values()
    assert 590 <= (until - utcnow()).total_seconds() <= 600
    # The file is online now: the next transfer from it is not staged again.
    store.add_transfers(session, [transfer("b", source, "file:///d/b", bring_online=60)], staging_seconds=30)
    assert store.transfer_rows(session, ["b"])["b"].state == store.QUEUED


def test_a_bring_online_of_a_file_not_on_tape_fails(session, tmp_path):
    missing = f"file://{tmp_path / 'gone'}"
    store.add_transfers(session, [transfer("a", missing, "file:///d/a", bring_online=60)])
    local_tape.advance(session)
    row = store.transfer_rows(session, ["a"])["a"]
    assert row.state == store.FAILED and row.reason.startswith("STAGING [2] Bring-online failed")
    assert pins(session) == {}


def test_a_stagein_in_place_is_done_once_online_without_a_copy(session, tmp_path):
    url = on_tape(tmp_path)
    store.add_transfers(session, [transfer("a", url, url, bring_online=60, copy_pin_lifetime=100)])
    local_tape.advance(session)
    assert store.transfer_rows(session, ["a"])["a"].state == store.DONE
    assert store.claim_due(session, "w", 10, 60) == [] and list(pins(session)) == [url]


def test_a_copy_to_tape_is_done_only_once_archived(session, tmp_path):
    source = on_tape(tmp_path)
    store.add_transfers(
        session,
        [
            transfer("a", source, "file:///tape/a", archive_timeout=60),
            transfer("b", source, "file:///tape/b", archive_timeout=1),
        ],
    )
    store.claim_due(session, "w", 10, 60)
    outcomes = [store.Outcome(i, store.DONE, transferred_bytes=4) for i in ("a", "b")]
    assert store.finish(session, "w", outcomes, archive_seconds=5) == {"a", "b"}
    rows = store.transfer_rows(session, ["a", "b"])
    assert {r.state for r in rows.values()} == {local_tape.ARCHIVING} and not any(
        r.running for r in rows.values()
    )
    phase_over(session, "a", "b")
    local_tape.advance(session)
    rows = store.transfer_rows(session, ["a", "b"])
    assert rows["a"].state == store.DONE and rows["a"].archive_finished is not None
    assert rows["b"].state == store.FAILED and rows["b"].archive_finished is None
    assert rows["b"].reason == "TRANSFER [62] Archiving timeout of 1 seconds exceeded: file not on tape"


def test_cancel_ends_a_recall_at_once_and_pins_nothing(session, tmp_path):
    source = on_tape(tmp_path)
    store.add_transfers(session, [transfer("a", source, "file:///d/a", bring_online=60)], staging_seconds=60)
    store.cancel(session, ["a"])
    row = store.transfer_rows(session, ["a"])["a"]
    assert (row.state, row.reason) == (store.FAILED, store.CANCELED_REASON)
    phase_over(session, "a")
    assert local_tape.advance(session) == 0 and pins(session) == {}


def test_a_pin_is_extended_never_shortened_and_release_drops_it(session, tmp_path):
    url = on_tape(tmp_path)
    store.add_transfers(
        session,
        [
            transfer("long", url, url, bring_online=1, copy_pin_lifetime=1000),
            transfer("short", url, url, bring_online=1, copy_pin_lifetime=10),
        ],
    )
    local_tape.advance(session)
    assert (pins(session)[url] - utcnow()).total_seconds() > 900
    assert local_tape.release(session, [url]) == 1 and pins(session) == {}
    assert local_tape.online(session, [url]) == set()
