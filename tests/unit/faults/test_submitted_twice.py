"""The fault campaign's duplicate check (``tests/faults/cluster.submitted_twice``): a second FTS
job for a request is a duplicate unless every earlier file had failed or been canceled first."""

from __future__ import annotations

from tests.faults.cluster import submitted_twice


def row(job: str, accepted: str, state: str, finished: str | None = None) -> dict:
    return {
        "job_id": job,
        "file_metadata": {"request_id": "r1"},
        "accepted_at": accepted,
        "file_state": state,
        "finish_time": finished,
    }


def test_a_retry_after_a_failed_file_is_not_a_duplicate():
    rows = [
        row("A", "2026-12-03T15:27:10", "FAILED", "2026-12-03T15:27:21"),
        row("B", "2026-12-03T15:27:23", "FINISHED", "2026-12-03T15:27:30"),
    ]
    assert submitted_twice(rows) == {}


def test_a_second_job_while_the_first_was_live_or_copied_is_a_duplicate():
    live = [
        row("A", "2026-12-03T15:27:10", "FAILED", "2026-12-03T15:27:40"),
        row("B", "2026-12-03T15:27:23", "FINISHED", "2026-12-03T15:27:30"),
    ]
    copied = [
        row("A", "2026-12-03T15:27:10", "FINISHED", "2026-12-03T15:27:12"),
        row("B", "2026-12-03T15:27:23", "FINISHED", "2026-12-03T15:27:30"),
    ]
    assert submitted_twice(live) == {"r1": ["A", "B"]}
    assert submitted_twice(copied) == {"r1": ["A", "B"]}
