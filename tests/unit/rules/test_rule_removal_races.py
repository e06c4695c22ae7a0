"""A rule removed while the submitter is sending its transfers (found by the FTS-outage fault
test on PostgreSQL: five dark files on a destination after the run).

Removing a rule cancels its QUEUED requests that no job holds.  It chose them with one SELECT
and deleted them by id with the next statements; a submitter that recorded one of them as
SUBMITTING under its job in between (or whose uncommitted record the DELETE waited for) lost
the request while FTS took the job.  With the request gone nothing protected the replica row,
the reaper removed it, and the copy landed on a path no row names.  The requests are now
chosen under a row lock, which re-reads each row's latest version: a request sent meanwhile is
no longer QUEUED without a job, so it stays and runs to its end.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import inflight, rule_update
from datamgmt.core import rule as rules
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import ReplicaState, RequestState
from datamgmt.core.db.models import Replica, Request
from datamgmt.core.db.session import transaction
from datamgmt.core.request import request_done
from tests.unit.rules.conftest import Catalogue, behind_a_lock


def test_a_request_sent_while_its_rule_is_removed_stays_with_its_replica_row(
    cat: Catalogue, session: Session, db: str
) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot arise")
    f = cat.files(1, on=("R3",))[0]
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    session.commit()
    with transaction(db) as submitter:
        (queued,) = core.claim_queued(submitter, "submitter", 10, 60)
        sent = inflight.Submission(
            request_id=queued.id,
            external_id="job-1",
            external_host="https://fts:8446",
            transfertool="fts3",
            source_rse_id=cat.rse_ids["R3"],
            dest_url="file:///r1/file",
            external_key="key-1",
        )
        assert inflight.mark_submitting(submitter, "submitter", [sent], 60) == {queued.id}
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
