"""Every transfer outcome applied leaves an attempt in ``requests_history``: the tool's error text,
source, destination, tool and external id survive the retry that clears them on the request."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from datamgmt.core import rule as rules
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request, RequestHistory
from datamgmt.core.request import requests_done, requests_failed
from datamgmt.core.request_history import list_attempts, lock_transfers, request_metrics
from tests.unit.rules.test_request_bulk import submitted


def _history(session: Session) -> list[tuple]:
    return [
        (h.request_id, h.state, h.retry_count, h.err_msg, h.external_id, h.transfertool, h.source_rse_id)
        for h in session.scalars(select(RequestHistory).order_by(RequestHistory.id))
    ]


def test_attempts_are_kept_through_retries(cat, session):
    (rule_id,) = rules.add_rule(session, [cat.dataset(cat.files(3, on=("R3",)))], "jdoe", 1, "R1")
    requests = submitted(session, rule_id, cat.rse_ids["R3"])
    for request in requests:
        request.transfertool = "fts3"
    first, second, third = (r.id for r in requests)
    session.flush()

    requests_failed(session, {first: "SOURCE [5] gfal: permission denied", second: "timeout"}, retry_limit=1)
    requests_done(session, [third])
    session.expire_all()
    assert session.get(Request, first).external_id is None  # the retry cleared it ...
    src = cat.rse_ids["R3"]
    assert sorted(_history(session), key=str) == sorted(
        [  # ... the history did not
            (first, RequestState.FAILED, 0, "SOURCE [5] gfal: permission denied", "x", "fts3", src),
            (second, RequestState.FAILED, 0, "timeout", "x", "fts3", src),
            (third, RequestState.DONE, 0, None, "x", "fts3", src),
        ],
        key=str,
    )

    # The second attempt of ``first`` never reaches a tool: it is recorded under its own state.
    session.get(Request, first).state = RequestState.NO_SOURCES
    session.flush()
    assert requests_failed(session, {first: "no AVAILABLE replica"}, retry_limit=1) == {
        first: RequestState.FAILED
    }
    assert _history(session)[-1][:4] == (first, RequestState.NO_SOURCES, 1, "no AVAILABLE replica")
    # A repeated report is not a new attempt.
    requests_failed(session, {first: "again"}, retry_limit=1)
    requests_done(session, [third])
    assert len(_history(session)) == 4

    failed = list_attempts(session, rule_id=rule_id, failed=True)
    assert failed[0]["err_msg"] == "no AVAILABLE replica"  # newest first
    assert sorted(a["err_msg"] for a in failed[1:]) == ["SOURCE [5] gfal: permission denied", "timeout"]
    assert failed[0]["dest_rse"] == "R1" and failed[1]["source_rse"] == "R3"
    locks = lock_transfers(session, rule_id)
    name_of = {r.id: r.name for r in requests}
    assert locks[("mock", name_of[first], cat.rse_ids["R1"])]["attempts"] == 2
    assert locks[("mock", name_of[first], cat.rse_ids["R1"])]["last_error"] == "no AVAILABLE replica"
    assert locks[("mock", name_of[second], cat.rse_ids["R1"])]["request_state"] == "QUEUED"
    assert locks[("mock", name_of[third], cat.rse_ids["R1"])] == {
        "attempts": 1,
        "last_error": None,
        "request_state": "DONE",
        "next_retry": None,
        "transfer_phase": None,
        "staging_started_at": None,
        "staging_finished_at": None,
        "archive_started_at": None,
        "archive_finished_at": None,
    }
    metric = request_metrics(session)["R3:R1"]
    assert metric["files"]["done-total-1h"] == 1 and metric["files"]["failed-total-6h"] == 3


def statements_into(statements: list[str]):  # type: ignore[no-untyped-def]
    def listener(*args) -> None:  # type: ignore[no-untyped-def]
        statements.append(args[2])

    return listener


def test_history_is_written_set_based(cat, session):
    """The number of statements does not grow with the batch."""
    counts = []
    for size in (5, 50):
        (rule_id,) = rules.add_rule(session, [cat.dataset(cat.files(size, on=("R3",)))], "jdoe", 1, "R1")
        ids = [r.id for r in submitted(session, rule_id, cat.rse_ids["R3"])]
        statements: list[str] = []
        listener = statements_into(statements)
        event.listen(session.get_bind(), "before_cursor_execute", listener)
        try:
            requests_failed(session, {i: "boom" for i in ids[: size // 2]}, retry_limit=0)
            requests_done(session, ids[size // 2 :])
        finally:
            event.remove(session.get_bind(), "before_cursor_execute", listener)
        counts.append(sum("requests_history" in s for s in statements))
    assert counts[0] == counts[1] == 2
