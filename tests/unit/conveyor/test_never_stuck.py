"""The catalogue side of "transfers never stuck": unanswered submissions, overdue and lost transfers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from datamgmt.core import inflight
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.db.types import utcnow
from datamgmt.transfertool.base import TransferState, TransferStatus
from tests.unit.conveyor.catalogue import add_posix_replica, add_request, random_file
from tests.unit.conveyor.test_routing import claim_all, sites  # noqa: F401 (fixture)


def submitted(request_id: str, job: str, age: float | None = 0.0) -> inflight.SubmittedRequest:
    at = None if age is None else utcnow() - timedelta(seconds=age)
    return inflight.SubmittedRequest(request_id, job, "http://fts", "fts3", at)


def status(
    request_id: str | None, job: str, state: TransferState = TransferState.SUBMITTED
) -> TransferStatus:
    return TransferStatus(request_id, job, state)


def test_unanswered_submission_is_held_only_where_its_job_lists_it():
    requests = [submitted("a", "J1"), submitted("b", "J1"), submitted("c", "J2"), submitted("d", "J3")]
    requests.append(submitted("e", "J4"))
    statuses = [
        status("a", "J1", TransferState.DONE),  # in the job, whatever its state
        status("x", "J1"),  # J1 also holds a request that is not ours to settle
        status("c", "J1"),  # c is in J1, but it was recorded under J2: not the same attempt
        status(None, "J3", TransferState.LOST),  # J3 does not exist (yet)
        status("y", "J4"),  # J4 exists without e
    ]
    found = inflight.held_by_tool(requests, statuses)
    assert found.held == {"a": "J1"}
    assert found.unsent == ["b", "c", "e"]  # their jobs exist without them: a new job is safe
    assert found.unknown == ["d"]  # its job may still arrive: only ever sent again as J3


def test_overdue_leaves_out_young_and_settled_requests():
    requests = [
        submitted("old", "J1", 120),
        submitted("young", "J1", 10),
        submitted("done", "J2", 120),
        submitted("lost", "J3", 120),
    ]
    stale = inflight.overdue(requests, ["done", "J3"], 60, utcnow())
    assert [r.id for r in stale] == ["old"]


def test_submitting_requests_are_looked_up_then_held_or_queued_again(session, sites, tmp_path):  # noqa: F811
    specs = [random_file(f"u{i}") for i in range(3)]
    for spec in specs:
        add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
        add_request(session, spec, sites["DEST"])
    plan = core.plan_transfers(session, claim_all(session))
    submissions = [
        inflight.Submission(
            p.request.id, "job-1", "http://fts", "fts3", p.source_rse_id, p.spec.destination, "sid-1"
        )
        for p in plan.transfers
    ]
    assert inflight.mark_submitting(session, "w", submissions, 60) == {s.request_id for s in submissions}
    assert inflight.claim_submitting(session, "other", 10, 60) == []  # the submitter's lease still runs

    session.execute(update(Request).values(claimed_until=utcnow() - timedelta(seconds=1)))
    found = inflight.claim_submitting(session, "other", 10, 60)
    assert {(r.external_id, r.transfertool) for r in found} == {("job-1", "fts3")}
    in_job, not_in_job = found[0].id, [r.id for r in found[1:]]
    looked_up = inflight.held_by_tool(found, [status(in_job, "job-1")])
    assert inflight.mark_submitted(session, "other", looked_up.held) == 1
    assert inflight.requeue_unsent(session, "other", looked_up.unsent) == 2
    rows = {r.id: r for r in session.scalars(select(Request))}
    assert (rows[in_job].state, rows[in_job].external_id) == (RequestState.SUBMITTED, "job-1")
    for request_id in not_in_job:  # sent afresh, not counted: nothing was tried
        row = rows[request_id]
        assert (row.state, row.external_id, row.retry_count, row.claimed_by) == (
            RequestState.QUEUED,
            None,
            0,
            None,
        )


def test_request_whose_job_fts_does_not_know_goes_out_again_under_the_same_key(session, sites, tmp_path):  # noqa: F811
    spec = random_file("again")
    add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
    add_request(session, spec, sites["DEST"])
    (planned,) = core.plan_transfers(session, claim_all(session)).transfers
    assert planned.spec.job_key is None  # a first submission: the tool chooses the job
    sent = inflight.Submission(
        planned.request.id,
        "job-1",
        "http://fts",
        "fts3",
        planned.source_rse_id,
        planned.spec.destination,
        "sid-1",
    )
    inflight.mark_submitting(session, "w", [sent], 60)
    session.execute(update(Request).values(claimed_until=utcnow() - timedelta(seconds=1)))
    found = inflight.claim_submitting(session, "other", 10, 60)
    looked_up = inflight.held_by_tool(found, [status(None, "job-1", TransferState.LOST)])
    assert inflight.requeue_unsent(session, "other", looked_up.unknown, same_job=True) == 1
    row = session.scalars(select(Request)).one()
    assert (row.state, row.external_id, row.external_key, row.retry_count) == (
        RequestState.QUEUED,
        "job-1",
        "sid-1",
        0,
    )
    (again,) = core.plan_transfers(session, claim_all(session)).transfers
    assert again.spec.job_key == "sid-1"
