"""FTS job/file states → request states, and how transfers are grouped into FTS jobs."""

from __future__ import annotations

from datetime import datetime

import pytest

from datamgmt.exceptions import TransferToolError
from datamgmt.transfertool.base import TransferSpec, TransferState
from datamgmt.transfertool.fts3 import group_jobs, job_statuses


def job(state, files, job_type="N", **extra):
    return {
        "job_id": "J",
        "job_state": state,
        "job_type": job_type,
        "http_status": "200 Ok",
        "files": files,
        **extra,
    }


def row(state, request_id="r1", **extra):
    return {
        "file_state": state,
        "file_metadata": {"request_id": request_id},
        "source_surl": "root://a/f",
        "filesize": 10,
        "reason": extra.pop("reason", ""),
        **extra,
    }


@pytest.mark.parametrize(
    ("job_state", "file_state", "expected"),
    [
        ("SUBMITTED", "SUBMITTED", TransferState.SUBMITTED),
        ("ACTIVE", "READY", TransferState.SUBMITTED),
        ("ACTIVE", "ACTIVE", TransferState.SUBMITTED),
        ("ACTIVE", "FINISHED", TransferState.DONE),
        ("FINISHED", "FINISHED", TransferState.DONE),
        ("ACTIVE", "FAILED", TransferState.FAILED),
        ("FINISHEDDIRTY", "FAILED", TransferState.FAILED),
        ("CANCELED", "CANCELED", TransferState.FAILED),
        ("ACTIVE", "CANCELED", TransferState.SUBMITTED),
        ("STAGING", "STAGING", TransferState.SUBMITTED),  # tape recall: running, shown as STAGING
        ("ARCHIVING", "ARCHIVING", TransferState.SUBMITTED),  # on the tape buffer, not on tape: not DONE
    ],
)
def test_single_source_states(job_state, file_state, expected):
    (status,) = job_statuses(job(job_state, [row(file_state, reason="SOURCE [2] gone")]))
    assert status.state is expected and status.external_id == "J" and status.request_id == "r1"
    assert status.external_state == file_state
    assert (status.transferred_bytes == 10) is (expected is TransferState.DONE)


def test_failure_reason_is_kept():
    (status,) = job_statuses(job("FAILED", [row("FAILED", reason="TRANSFER [5] CHECKSUM MISMATCH")]))
    assert status.reason == "TRANSFER [5] CHECKSUM MISMATCH"


def test_multi_source_waits_for_the_job_and_prefers_success():
    rows = [row("FAILED", source_surl="root://a/f"), row("SUBMITTED", source_surl="root://b/f")]
    assert [s.state for s in job_statuses(job("ACTIVE", rows, job_type="R"))] == [TransferState.SUBMITTED]
    rows = [row("FAILED"), row("FINISHED", source_surl="root://b/f"), row("NOT_USED")]
    (status,) = job_statuses(job("FINISHED", rows, job_type="R"))
    assert status.state is TransferState.DONE and status.source_url == "root://b/f"
    rows = [row("FAILED"), row("FAILED")]
    assert [s.state for s in job_statuses(job("FAILED", rows, job_type="R"))] == [TransferState.FAILED]


def test_unused_hops_of_a_failed_multihop_fail():
    rows = [row("FAILED", "h1", reason="DESTINATION [5] x"), row("NOT_USED", "h2")]
    statuses = {s.request_id: s for s in job_statuses(job("FAILED", rows, job_type="H"))}
    assert statuses["h1"].state is statuses["h2"].state is TransferState.FAILED
    assert statuses["h2"].reason == "Unused hop in multi-hop"


def test_unknown_job_is_lost_and_other_http_statuses_raise():
    (status,) = job_statuses({"job_id": "X", "http_status": "404 Not Found", "http_message": "No job"})
    assert status.state is TransferState.LOST and status.request_id is None and status.external_id == "X"
    with pytest.raises(TransferToolError):
        job_statuses({"job_id": "X", "http_status": "403 Forbidden", "http_message": "no"})


def test_rows_without_request_id_are_ignored():
    assert job_statuses(job("FINISHED", [{"file_state": "FINISHED", "file_metadata": None}])) == []


def spec(request_id, source="root://a.example//f", destination="davs://b.example//f", **kwargs):
    return TransferSpec(request_id, [source], destination, **kwargs)


def test_grouping_by_rule_bulks_and_chunks():
    specs = [spec(f"r{i}", rule_id="R1") for i in range(5)] + [spec("o", rule_id="R2")]
    jobs = group_jobs(specs, max_files=2)
    assert sorted(len(j) for j in jobs) == [1, 1, 2, 2]
    assert {s.rule_id for j in jobs for s in j if len(j) == 2} == {"R1"}


def test_grouping_by_route_and_job_parameters():
    specs = [
        spec("a", rule_id="R1"),
        spec("b", rule_id="R2"),
        spec("c", destination="root://c.example//f"),
        spec("d", priority=5),
        spec("e", verify_checksum="target"),
        spec("f", bring_online=60, copy_pin_lifetime=60),
        spec("g", archive_timeout=60),
    ]
    jobs = group_jobs(specs, grouping="src_dest")
    assert sorted(sorted(s.request_id for s in j) for j in jobs) == [
        ["a", "b"],
        ["c"],
        ["d"],
        ["e"],
        ["f"],
        ["g"],
    ]


def test_multi_source_and_multihop_get_their_own_jobs():
    multi = TransferSpec("m", ["root://a.example//f", "root://b.example//f"], "davs://b.example//f")
    hop2 = spec("h2", multihop_path="p", hop_index=1)
    hop1 = spec("h1", multihop_path="p", hop_index=0)
    jobs = group_jobs([multi, hop2, spec("x"), hop1])
    assert [[s.request_id for s in j] for j in jobs] == [["m"], ["h1", "h2"], ["x"]]


def test_bad_grouping_arguments():
    with pytest.raises(ValueError):
        group_jobs([spec("a")], grouping="dest")
    with pytest.raises(ValueError):
        group_jobs([spec("a")], max_files=0)


def test_spec_checksum_preference_and_validation():
    assert spec("a", adler32="1A2B", md5="ff").checksum == ("ADLER32", "00001a2b")
    assert spec("a", md5="FF").checksum == ("MD5", "ff")
    assert spec("a").checksum is None
    with pytest.raises(ValueError):
        TransferSpec("a", [], "davs://b//f")
    with pytest.raises(ValueError):
        spec("a", verify_checksum="maybe")


def test_end_of_staging_is_reported_so_the_copy_is_timed_from_there():
    times = {"staging_start": "2026-12-03T06:59:00", "staging_finished": "2026-12-03T07:00:05"}
    (staged,) = job_statuses(job("ACTIVE", [row("ACTIVE", **times)]))
    (plain,) = job_statuses(job("ACTIVE", [row("ACTIVE", staging_start=None, staging_finished="garbled")]))
    assert (staged.staging_started, staged.staging_finished) == (
        datetime(2026, 12, 3, 6, 59),
        datetime(2026, 12, 3, 7, 0, 5),
    )
    assert plain.staging_started is None and plain.staging_finished is None
