"""The FTS3 double's tape states (fts3.md §4): STAGING before the copy of a staging job, ARCHIVING
after the copy of a job with ``archive_timeout``, each with its delay, FTS's file fields, and the
two tape faults (a failed bring-online, an archive that never completes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.fts3_double import Fts3Double, Fts3DoubleServer

pytestmark = pytest.mark.integration


def _job(source: Path, destination: Path, **params) -> dict:
    source.write_bytes(b"tape data")
    return {
        "files": [{"sources": [f"file://{source}"], "destinations": [f"file://{destination}"]}],
        "params": {"overwrite": True, **params},
    }


def _states(
    server: Fts3DoubleServer, job_id: str, until: str, timeout: float = 15.0
) -> list[tuple[str, str]]:
    """(job_state, file_state) pairs seen through ``GET /jobs/{id}?files=`` until the job is ``until``."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = requests.get(f"{server.url}/jobs/{job_id}", params={"files": "file_state"}, timeout=5).json()
        pair = (entry["job_state"], entry["files"][0]["file_state"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if pair[0] == until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job never reached {until}: {seen}")


def test_staging_job_stages_then_copies_then_archives(tmp_path):
    double = Fts3Double(workers=1)
    double.faults.staging_seconds, double.faults.archive_seconds = 0.6, 0.6
    with Fts3DoubleServer(double) as server:
        payload = _job(
            tmp_path / "src", tmp_path / "dst", bring_online=3600, copy_pin_lifetime=600, archive_timeout=60
        )
        job_id = requests.post(f"{server.url}/jobs", json=payload, timeout=5).json()["job_id"]
        seen = _states(server, job_id, "FINISHED")
        job = requests.get(f"{server.url}/jobs/{job_id}", timeout=5).json()
        (row,) = requests.get(f"{server.url}/jobs/{job_id}/files", timeout=5).json()
    states = [file_state for _, file_state in seen]
    assert states[0] == "STAGING" and seen[0][0] == "STAGING"
    assert "ARCHIVING" in states and ("ARCHIVING", "ARCHIVING") in seen
    assert states.index("STAGING") < states.index("ARCHIVING") < states.index("FINISHED")
    assert (job["bring_online"], job["copy_pin_lifetime"], job["archive_timeout"]) == (3600, 600, 60)
    assert row["file_state_initial"] == "STAGING" and row["staging_host"]
    assert row["staging_start"] <= row["staging_finished"] <= row["start_time"]
    assert row["finish_time"] <= row["archive_start_time"] <= row["archive_finish_time"]
    assert (tmp_path / "dst").read_bytes() == b"tape data"


def test_plain_job_neither_stages_nor_archives(tmp_path):
    with Fts3DoubleServer(Fts3Double(workers=1)) as server:
        job_id = requests.post(
            f"{server.url}/jobs", json=_job(tmp_path / "s", tmp_path / "d"), timeout=5
        ).json()["job_id"]
        seen = _states(server, job_id, "FINISHED")
        (row,) = server.double.store.files(job_id)
    assert not {"STAGING", "ARCHIVING"} & {state for pair in seen for state in pair}
    assert row["staging_start"] is None and row["archive_start_time"] is None


def test_staging_failure_is_retried_like_a_copy_failure_then_fails(tmp_path):
    double = Fts3Double(workers=1)
    double.faults.fail_staging(f"file://{tmp_path}/src")
    with Fts3DoubleServer(double) as server:
        payload = _job(tmp_path / "src", tmp_path / "dst", bring_online=3600, retry=1)
        job_id = requests.post(f"{server.url}/jobs", json=payload, timeout=5).json()["job_id"]
        _states(server, job_id, "FAILED")
        (row,) = server.double.store.files(job_id)
        retries = server.double.store.retries(row["file_id"])
    assert row["file_state"] == "FAILED" and row["reason"].startswith("STAGING [70]")
    assert row["start_time"] is None  # the copy never started
    assert [r["attempt"] for r in retries] == [0, 1]
    assert not (tmp_path / "dst").exists()


def test_archive_timeout_fails_the_file_after_the_copy(tmp_path):
    double = Fts3Double(workers=1)
    double.faults.never_archive(f"file://{tmp_path}/tape")
    with Fts3DoubleServer(double) as server:
        payload = _job(tmp_path / "src", tmp_path / "tape", archive_timeout=1)
        job_id = requests.post(f"{server.url}/jobs", json=payload, timeout=5).json()["job_id"]
        seen = _states(server, job_id, "FAILED")
        (row,) = server.double.store.files(job_id)
    assert ("ARCHIVING", "ARCHIVING") in seen
    assert "Archiving timeout of 1 seconds exceeded" in row["reason"]
    assert row["archive_start_time"] is not None and row["archive_finish_time"] is not None


def test_archive_slower_than_its_timeout_fails_and_control_surface_sets_tape_knobs(tmp_path):
    with Fts3DoubleServer(Fts3Double(workers=1)) as server:
        requests.post(
            f"{server.url}/_double/faults", json={"archive_seconds": 5, "staging_seconds": 0.1}, timeout=5
        ).raise_for_status()
        payload = _job(tmp_path / "src", tmp_path / "tape", archive_timeout=1)
        job_id = requests.post(f"{server.url}/jobs", json=payload, timeout=5).json()["job_id"]
        _states(server, job_id, "FAILED")
        assert server.double.faults.staging_seconds == 0.1


def test_staging_only_file_finishes_once_online_without_a_copy(tmp_path):
    double = Fts3Double(workers=1)
    double.faults.staging_seconds = 0.3
    with Fts3DoubleServer(double) as server:
        payload = _job(tmp_path / "f", tmp_path / "f", bring_online=60, copy_pin_lifetime=3600)
        job_id = requests.post(f"{server.url}/jobs", json=payload, timeout=5).json()["job_id"]
        seen = _states(server, job_id, "FINISHED")
        (row,) = server.double.store.files(job_id)
    assert seen[0] == ("STAGING", "STAGING") and "ACTIVE" not in {state for pair in seen for state in pair}
    assert row["start_time"] is None and row["staging_finished"] is not None
