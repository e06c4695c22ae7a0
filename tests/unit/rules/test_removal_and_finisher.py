"""A rule removed while its transfer waits for the finisher (NO_SOURCES, SUBMISSION_FAILED,
LOST, …).  The reaper kept a destination's row only for QUEUED, SUBMITTING and SUBMITTED
requests, and a rule's removal cancelled only QUEUED ones: a request in a finisher's state
survived its rule, the reaper removed the unprotected row, and the finisher put the request
back in the queue, whose copy then landed on a path no row names (a dark file)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import deletion, inflight, rule_update
from datamgmt.core import rule as rules
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import ReplicaState, RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.request import request_done, requests_failed
from tests.unit.rules.conftest import Catalogue, sent_to_fts

RETRIES = 3


def _rule_to_r1_from_r3(cat: Catalogue, session: Session) -> tuple[dict, str, str]:
    """A file on R3, a rule that copies it to R1, and its request claimed by a submitter."""
    f = cat.files(1, on=("R3",))[0]
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    session.commit()
    (queued,) = core.claim_queued(session, "submitter", 10, 60)
    return f, rule_id, queued.id


def _reaped(session: Session, cat: Catalogue) -> list[dict]:
    leased = deletion.claim_for_deletion(session, cat.rse_ids["R1"], "reaper", None, 10, 60)
    session.commit()
    return leased


def test_a_request_never_sent_is_cancelled_with_its_rule(cat: Catalogue, session: Session) -> None:
    f, rule_id, request_id = _rule_to_r1_from_r3(cat, session)
    inflight.mark_unroutable(
        session, "submitter", {request_id: (RequestState.SUBMISSION_FAILED, "tool down")}
    )
    session.commit()
    rule_update.delete_rule(session, rule_id)
    session.commit()
    assert session.scalar(select(Request.id).where(Request.id == request_id)) is None
    assert requests_failed(session, {request_id: "tool down"}, RETRIES) == {}  # nothing to send again
    assert [item["name"] for item in _reaped(session, cat)] == [f["name"]]


def _lost(cat: Catalogue, session: Session, request_id: str) -> None:
    """Sent under a job that the tool then no longer knew (the poller's LOST)."""
    sent_to_fts(cat, session, request_id)
    assert inflight.mark_submitted(session, "submitter", {request_id: "job-1"}) == 1
    assert inflight.mark_lost(session, ["job-1"]) == 1
    session.commit()


def test_a_lost_request_keeps_its_destination_row_until_the_finisher_ends_it(
    cat: Catalogue, session: Session
) -> None:
    """Its job may be running until the tool says it knows none; then nobody needs the copy any
    more, so the finisher fails the request instead of sending it again, and the row goes."""
    f, rule_id, request_id = _rule_to_r1_from_r3(cat, session)
    _lost(cat, session, request_id)
    rule_update.delete_rule(session, rule_id)
    session.commit()
    assert session.scalar(select(Request.state).where(Request.id == request_id)) == RequestState.LOST
    assert _reaped(session, cat) == [], "the reaper took the row a lost job may still write"
    failed = requests_failed(session, {request_id: "unknown to the tool"}, RETRIES)
    assert failed == {request_id: RequestState.FAILED}
    session.commit()
    assert [item["name"] for item in _reaped(session, cat)] == [f["name"]]


def test_a_lost_request_another_rule_waits_for_is_sent_again(cat: Catalogue, session: Session) -> None:
    f, rule_id, request_id = _rule_to_r1_from_r3(cat, session)
    (other,) = rules.add_rule(session, [f], "root", 1, "R1")  # joins the transfer under way
    session.commit()
    _lost(cat, session, request_id)
    rule_update.delete_rule(session, rule_id)
    session.commit()
    assert requests_failed(session, {request_id: "unknown to the tool"}, RETRIES) == {
        request_id: RequestState.QUEUED
    }
    assert request_done(session, request_id)
    session.commit()
    assert cat.replica(f, "R1").state == ReplicaState.AVAILABLE
    assert cat.rule(other).locks_ok_cnt == 1
