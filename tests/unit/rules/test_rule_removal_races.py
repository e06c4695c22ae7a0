"""Locks released while another transaction changes what they protect (PostgreSQL: SQLite runs
one writer at a time, so none of these interleavings can arise there).

* A rule removed while the submitter is sending its transfers (found by the FTS-outage fault
  test: five dark files on a destination after the run).  Removing a rule cancels its QUEUED
  requests that no job holds.  It chose them with one SELECT and deleted them by id with the
  next statements; a submitter that recorded one of them as SUBMITTING under its job in between
  lost the request while FTS took the job, the reaper removed the unprotected replica row, and
  the copy landed on a path no row names.  The requests are now chosen under a row lock, which
  re-reads each row's latest version.
* One rule removed twice at once (the API and the judge-cleaner), and a file attached again while
  the evaluator releases its lock.  Each statement of the release re-evaluated which locks go:
  the second removal still saw the locks in its snapshot and took a second ``lock_cnt`` off a
  replica another rule locks; the evaluator lowered ``lock_cnt`` for a lock it then kept.  Either
  left a locked replica at ``lock_cnt`` 0 with a tombstone, for the reaper to delete.  Which locks
  go is now read once, under row locks, and every statement acts on those keys.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import deletion, did_content, rule_update
from datamgmt.core import rule as rules
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import ReplicaState, RequestState
from datamgmt.core.db.models import Replica, Request
from datamgmt.core.db.session import transaction
from datamgmt.core.replica import touch_replicas
from datamgmt.core.request import request_done
from tests.unit.rules.conftest import Catalogue, behind_a_lock, sent_to_fts


def postgresql_only(db: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot arise")


def test_a_request_sent_while_its_rule_is_removed_stays_with_its_replica_row(
    cat: Catalogue, session: Session, db: str
) -> None:
    postgresql_only(db)
    f = cat.files(1, on=("R3",))[0]
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    session.commit()
    with transaction(db) as submitter:
        (queued,) = core.claim_queued(submitter, "submitter", 10, 60)
        sent_to_fts(cat, submitter, queued.id)
        removal = behind_a_lock(submitter, db, lambda judge: rule_update.delete_rule(judge, rule_id))
    assert removal() is None, "the rule's removal failed"
    session.expire_all()
    request = session.scalar(select(Request).where(Request.id == queued.id))
    assert request is not None, "the request FTS was given was deleted with its rule"
    assert (request.state, request.external_id) == (RequestState.SUBMITTING, "job-1")
    replica = cat.replica(f, "R1")
    assert replica is not None and replica.lock_cnt == 0
    # FTS copies after all: the row is there for the copy, and the reaper may remove both after.
    assert request_done(session, queued.id)
    assert cat.replica(f, "R1").state == ReplicaState.AVAILABLE
    session.commit()
    assert session.scalar(select(Replica.tombstone).where(Replica.rse_id == cat.rse_ids["R1"])) is not None


def test_a_rule_removed_twice_at_once_releases_its_locks_once(
    cat: Catalogue, session: Session, db: str
) -> None:
    postgresql_only(db)
    f = cat.files(1, on=("R3",))[0]
    (doomed,) = rules.add_rule(session, [f], "jdoe", 1, "R3")
    (kept,) = rules.add_rule(session, [f], "jdoe", 1, "T2")  # T2 is R3: a second lock on the replica
    session.commit()
    assert cat.replica(f, "R3").lock_cnt == 2
    with transaction(db) as cleaner:
        rule_update.delete_rule(cleaner, doomed)
        again = behind_a_lock(cleaner, db, lambda api: rule_update.delete_rule(api, doomed))
    assert again() is None
    replica = cat.replica(f, "R3")
    assert cat.locks(kept) == {(f["scope"], f["name"]): {"R3"}}
    assert (replica.lock_cnt, replica.tombstone) == (1, None), "the kept rule's replica lost its protection"
    with transaction(db) as reaper:
        assert deletion.claim_for_deletion(reaper, cat.rse_ids["R3"], "reaper", None, 10, 60) == []


def test_a_file_attached_again_while_the_evaluator_releases_its_lock_keeps_both_in_step(
    cat: Catalogue, session: Session, db: str
) -> None:
    """The evaluator reads the dataset without the file, then waits for the replica's row, which
    a transaction attaching the file again holds; after it, lock and ``lock_cnt`` agree."""
    postgresql_only(db)
    f, g = cat.files(2, on=("R1",))
    ds = cat.dataset([f, g])
    (rule_id,) = rules.add_rule(session, [ds], "jdoe", 1, "R1")
    session.commit()
    did_content.detach(session, ds["scope"], ds["name"], [f])
    session.commit()
    with transaction(db) as client:
        touch_replicas(client, cat.rse_ids["R1"], [(f["scope"], f["name"])])  # holds f's replica row
        did_content.attach(client, ds["scope"], ds["name"], [f])
        evaluation = behind_a_lock(
            client, db, lambda judge: rules.evaluate_did_changes(judge, ds["scope"], ds["name"])
        )
    assert evaluation() == 1
    replica = cat.replica(f, "R1")
    locked = (f["scope"], f["name"]) in cat.locks(rule_id)
    assert replica.lock_cnt == int(locked), (replica.lock_cnt, cat.locks(rule_id))
    if not locked:  # released: the next evaluation (the attach queued one) locks the file again
        assert rules.evaluate_did_changes(session, ds["scope"], ds["name"]) == 1
        assert (f["scope"], f["name"]) in cat.locks(rule_id) and cat.replica(f, "R1").lock_cnt == 1
