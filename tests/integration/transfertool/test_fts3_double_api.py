"""The FTS3 double speaks FTS's REST dialect (fts3.md §2-§4): validation, ids, bulk and cancel answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import fts3.rest.client.easy as fts3
import pytest
import requests

from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.fts3_double.builder import deterministic_job_id

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def body(files, **params):
    return {"files": files, "params": params}


def entry(source="root://a.example//f", destination="davs://b.example//f", **extra):
    return {"sources": [source], "destinations": [destination], **extra}


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"params": {}}, 400, "No transfers operations specified"),
        (body([{"destinations": ["davs://b//f"]}]), 400, "Missing parameter: sources"),
        (body([entry(source="nohost")]), 400, "Invalid value within the request"),
        (body([entry(), entry()], multihop=True, reuse=True), 400, "reuse"),
        (body([entry(), entry()], overwrite=True, overwrite_on_retry=True), 400, "overwrite"),
        (body([entry()], verify_checksum="sometimes"), 400, "verify_checksum"),
        (body([entry()], priority="high"), 400, "priority"),
        (
            {"files": [entry()], "delete": [{"surl": "root://a//f"}]},
            405,
            "Deletion jobs are no longer supported",
        ),
    ],
)
def test_submission_validation(payload, status, message):
    with Fts3DoubleServer(Fts3Double(instant=True)) as server:
        answer = requests.post(f"{server.url}/jobs", json=payload, timeout=5)
        assert answer.status_code == status
        assert answer.json()["status"].startswith(str(status)) and message in answer.json()["message"]
        assert server.double.store.submitted == []


def test_local_files_are_refused_like_real_fts():
    with Fts3DoubleServer(Fts3Double(allow_local_files=False)) as server:
        answer = requests.post(f"{server.url}/jobs", json=body([entry(source="file:///tmp/x")]), timeout=5)
        assert (answer.status_code, answer.json()["message"]) == (400, "Can not transfer local files")


def test_job_rows_follow_jobbuilder_rules():
    with Fts3DoubleServer(Fts3Double(instant=True)) as server:
        payload = body(
            [entry(checksum="ADLER32:0a1b2c3d", metadata="label-only", filesize=5)],
            priority=9,
            verify_checksum=False,
            id_generator="deterministic",
            sid="s1",
            overwrite=True,
        )
        job_id = requests.post(f"{server.url}//jobs", json=payload, timeout=5).json()["job_id"]
        assert job_id == deterministic_job_id("datamgmt", "s1")
        job = requests.get(f"{server.url}//jobs/{job_id}", timeout=5).json()
        assert (job["priority"], job["verify_checksum"], job["job_type"], job["overwrite_flag"]) == (
            5,
            "t",
            "N",
            "Y",
        )
        assert (job["source_se"], job["dest_se"], job["job_state"]) == (
            "root://a.example",
            "davs://b.example",
            "FINISHED",
        )
        (row,) = requests.get(f"{server.url}/jobs/{job_id}/files", timeout=5).json()
        assert row["file_metadata"] == {"label": "label-only"} and row["user_filesize"] == 5
        assert len(row["finish_time"]) == 19 and row["finish_time"][10] == "T"
        again = requests.post(f"{server.url}/jobs", json=payload, timeout=5)
        assert again.status_code == 409
        assert requests.get(f"{server.url}/jobs/{job_id}/job_state", timeout=5).json() == "FINISHED"


def test_multi_replica_and_multihop_initial_states():
    with Fts3DoubleServer(Fts3Double(instant=False, workers=0)) as server:
        multi = {"files": [{"sources": ["root://a//f", "root://c//f"], "destinations": ["davs://b//f"]}]}
        job_id = requests.post(f"{server.url}/jobs", json=multi, timeout=5).json()["job_id"]
        rows = requests.get(f"{server.url}/jobs/{job_id}/files", timeout=5).json()
        assert [r["file_state"] for r in rows] == ["SUBMITTED", "NOT_USED"]
        assert requests.get(f"{server.url}/jobs/{job_id}", timeout=5).json()["job_type"] == "R"
        hops = body(
            [entry(), entry(source="davs://b.example//f", destination="root://c.example//f")], multihop=True
        )
        job_id = requests.post(f"{server.url}/jobs", json=hops, timeout=5).json()["job_id"]
        rows = requests.get(f"{server.url}/jobs/{job_id}/files", timeout=5).json()
        assert [(r["file_index"], r["file_state"]) for r in rows] == [(0, "SUBMITTED"), (1, "NOT_USED")]


def test_bulk_get_and_cancel_status_codes():
    with Fts3DoubleServer(Fts3Double(instant=False, workers=0)) as server:
        job_id = requests.post(f"{server.url}/jobs", json=body([entry()]), timeout=5).json()["job_id"]
        answer = requests.get(f"{server.url}/jobs/{job_id},nope?files=file_state", timeout=5)
        assert answer.status_code == 207
        found, missing = answer.json()
        assert found["http_status"] == "200 Ok" and found["files"] == [{"file_state": "SUBMITTED"}]
        assert missing == {
            "job_id": "nope",
            "http_status": "404 Not Found",
            "http_message": 'No job with the id "nope" has been found',
        }
        assert requests.get(f"{server.url}/jobs/nope", timeout=5).status_code == 404
        canceled = requests.delete(f"{server.url}/jobs/{job_id}", timeout=5)
        assert canceled.status_code == 200 and canceled.json()["job_state"] == "CANCELED"
        again = requests.delete(f"{server.url}/jobs/{job_id}", timeout=5).json()
        assert again["http_status"] == "304 Not Modified"
        assert requests.delete(f"{server.url}/jobs/{job_id},nope", timeout=5).status_code == 207
        assert requests.delete(f"{server.url}/jobs/nope", timeout=5).status_code == 404
        (row,) = requests.get(f"{server.url}/jobs/{job_id}/files", timeout=5).json()
        assert (row["file_state"], row["reason"]) == ("CANCELED", "Job canceled by the user")


def test_official_client_without_credentials_skips_delegation():
    with Fts3DoubleServer(Fts3Double(instant=True)) as server:
        context = fts3.Context(server.url)
        assert fts3.whoami(context)["method"] == "unauthenticated"
        job_id = fts3.submit(context, fts3.new_job([fts3.new_transfer("root://a//f", "davs://b//f")]))
        assert fts3.get_job_status(context, job_id, list_files=True)["files"][0]["file_state"] == "FINISHED"


def test_runs_as_a_subprocess_with_control_endpoints():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fts3_double", "--port", "0", "--instant"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        requests.post(f"{url}/_double/faults", json={"fail_next": 1, "status": 503}, timeout=5)
        assert requests.get(f"{url}/whoami", timeout=5).status_code == 503
        requests.post(f"{url}/jobs", json=body([entry()]), timeout=5).raise_for_status()
        assert [s["source_surl"] for s in requests.get(f"{url}/_double/submissions", timeout=5).json()] == [
            "root://a.example//f"
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_fault_switches_for_lost_answers_stalled_and_forgotten_jobs(tmp_path):
    """The switches the conveyor's regression tests use, through the control surface."""
    source = tmp_path / "src"
    source.write_bytes(b"data")
    job = body([entry(f"file://{source}", f"file://{tmp_path}/dst")], overwrite=True)
    with Fts3DoubleServer(Fts3Double()) as server:
        faults = f"{server.url}/_double/faults"
        requests.post(
            faults, json={"delay_next": 1, "seconds": 2, "method": "POST", "path": "/jobs"}, timeout=5
        )
        assert requests.get(f"{server.url}/whoami", timeout=5).ok  # not the delayed route: answered at once
        with pytest.raises(requests.Timeout):
            requests.post(f"{server.url}/jobs", json=job, timeout=1)
        (created,) = server.double.store.jobs()  # served, only the answer was late

        requests.post(faults, json={"hold_copies": True}, timeout=5)
        held = requests.post(f"{server.url}/jobs", json=job, timeout=5).json()["job_id"]
        time.sleep(0.5)
        assert server.double.store.files(held)[0]["file_state"] == "SUBMITTED"

        requests.post(faults, json={"forget_jobs": True}, timeout=5)
        assert requests.get(f"{server.url}/jobs/{held}", timeout=5).status_code == 404
        assert requests.get(f"{server.url}/jobs/{created['job_id']},{held}", timeout=5).status_code == 207
        assert requests.delete(f"{server.url}/jobs/{held}", timeout=5).status_code == 404

        requests.post(faults, json={"hold_copies": False, "forget_jobs": False}, timeout=5)
        deadline = time.monotonic() + 10
        while server.double.store.job(held)["job_state"] != "FINISHED" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert requests.get(f"{server.url}/jobs/{held}", timeout=5).json()["job_state"] == "FINISHED"
