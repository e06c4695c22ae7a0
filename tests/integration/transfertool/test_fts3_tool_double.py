"""The FTS3 transfer tool against the FTS3 REST double over HTTP, copying file:// → file://."""

from __future__ import annotations

import collections
import threading
import time

import pytest

from datamgmt.exceptions import TransferToolError
from datamgmt.transfertool.base import TransferJob, TransferSpec, TransferState
from datamgmt.transfertool.fts3 import FTS3TransferTool
from tests.fts3_double import Fts3Double, Fts3DoubleServer

pytestmark = pytest.mark.integration

MOCK_SLOW = "mock://localhost/slow/{name}?time=30&checksum=0a1b2c3d"
MOCK_SOURCE = "mock://localhost/src/{name}?size=100&checksum=0a1b2c3d"


@pytest.fixture
def tool(fts3_server):
    tool = FTS3TransferTool(fts3_server.url, token="test-token", timeout=5)
    yield tool
    tool.close()


def spec(request_id, source, destination, **kwargs):
    return TransferSpec(request_id=request_id, sources=[source], destination=destination, **kwargs)


def test_copies_and_verifies_adler32(tool, fts3_server, make_file, tmp_path, wait_final):
    files = [make_file() for _ in range(3)]
    specs = [
        spec(
            f"r{i}", f.url, f"file://{tmp_path}/dst/{i}", adler32=f.adler32, bytes=len(f.data), rule_id="rule"
        )
        for i, f in enumerate(files)
    ]
    submitted = tool.submit(tool.prepare(specs))
    assert set(submitted) == {"r0", "r1", "r2"}
    assert len(set(submitted.values())) == 1  # one rule → one FTS job
    statuses = wait_final(tool, submitted.values())
    for i, f in enumerate(files):
        assert statuses[f"r{i}"].state is TransferState.DONE, statuses[f"r{i}"].reason
        assert statuses[f"r{i}"].transferred_bytes == len(f.data)
        assert (tmp_path / "dst" / str(i)).read_bytes() == f.data
    job = fts3_server.double.store.job(next(iter(submitted.values())))
    assert job["verify_checksum"] == "b" and job["overwrite_flag"] == "Y"
    assert job["job_metadata"]["auth_method"] == "oauth2"


def test_missing_source_fails(tool, tmp_path, wait_final):
    submitted = tool.submit(
        tool.prepare([spec("r1", f"file://{tmp_path}/nope", f"file://{tmp_path}/dst", adler32="00000001")])
    )
    status = wait_final(tool, submitted.values())["r1"]
    assert status.state is TransferState.FAILED
    assert status.reason.startswith("SOURCE [2]")


def test_corrupt_source_fails_checksum_and_leaves_no_destination(tool, make_file, tmp_path, wait_final):
    f = make_file()
    f.path.write_bytes(b"corrupted" + f.data[9:])
    submitted = tool.submit(tool.prepare([spec("r1", f.url, f"file://{tmp_path}/dst", adler32=f.adler32)]))
    status = wait_final(tool, submitted.values())["r1"]
    assert status.state is TransferState.FAILED
    assert "CHECKSUM MISMATCH" in status.reason
    assert not (tmp_path / "dst").exists()


def test_target_only_verification_removes_a_bad_destination(tool, make_file, tmp_path, wait_final):
    f = make_file()
    submitted = tool.submit(
        tool.prepare(
            [spec("r1", f.url, f"file://{tmp_path}/dst", adler32="deadbeef", verify_checksum="target")]
        )
    )
    status = wait_final(tool, submitted.values())["r1"]
    assert status.state is TransferState.FAILED and status.reason.startswith("DESTINATION [5]")
    assert not (tmp_path / "dst").exists()


def test_destination_down(tool, fts3_server, make_file, tmp_path, wait_final):
    f = make_file()
    fts3_server.double.faults.fail_destination(f"file://{tmp_path}/down/")
    submitted = tool.submit(
        tool.prepare(
            [
                spec("down", f.url, f"file://{tmp_path}/down/x", adler32=f.adler32),
                spec("closed", f.url, "davs://127.0.0.1:1/closed/x", adler32=f.adler32),
            ]
        )
    )
    statuses = wait_final(tool, set(submitted.values()))
    assert statuses["down"].state is TransferState.FAILED
    assert statuses["down"].reason.startswith("DESTINATION [113]")
    assert statuses["closed"].state is TransferState.FAILED
    assert statuses["closed"].reason.startswith("DESTINATION")


def test_server_errors_raise_and_nothing_is_submitted(tool, fts3_server, make_file, tmp_path):
    f = make_file()
    tool.query([])  # nothing to ask: no request at all
    fts3_server.double.faults.fail_next(10)
    with pytest.raises(TransferToolError):
        tool.submit(tool.prepare([spec("r1", f.url, f"file://{tmp_path}/dst", adler32=f.adler32)]))
    with pytest.raises(TransferToolError):
        tool.query(["whatever"])
    assert fts3_server.double.store.submitted == []


def test_job_id_is_known_before_submission_and_a_resent_job_maps_only_its_files(
    fts3_server, make_file, tmp_path, wait_final
):
    """A submission whose answer times out left a job in FTS under the id chosen beforehand.  Sent
    again it answers 409, and only the requests whose files that job holds are mapped to it."""
    f = make_file()
    tool = FTS3TransferTool(fts3_server.url, token="t", timeout=1)
    (job,) = tool.prepare([spec("r1", f.url, f"file://{tmp_path}/dst", adler32=f.adler32)])
    fts3_server.double.faults.delay_next(1, 2.0, ("POST", "/jobs"))
    with pytest.raises(TransferToolError):
        tool.submit([job])
    time.sleep(1.5)  # let the delayed answer drain
    assert fts3_server.double.store.job(job.external_ids["r1"]) is not None  # FTS did create it

    regrouped = TransferJob(
        [*job.transfers, spec("r2", f.url, f"file://{tmp_path}/dst2", adler32=f.adler32)],
        {"r1": job.external_ids["r1"], "r2": job.external_ids["r1"]},
        job.key,
    )
    assert tool.submit([regrouped]) == job.external_ids  # r2 is not in that job: not mapped
    assert wait_final(tool, job.external_ids.values())["r1"].state is TransferState.DONE
    per_request = collections.Counter(
        s["file_metadata"]["request_id"] for s in fts3_server.double.store.submitted
    )
    assert per_request == {"r1": 1}
    tool.close()


def test_cancel_a_running_transfer(tool, fts3_server, wait_final):
    submitted = tool.submit(
        tool.prepare(
            [spec("r1", MOCK_SOURCE.format(name="a"), MOCK_SLOW.format(name="a"), adler32="0a1b2c3d")]
        )
    )
    job_id = submitted["r1"]
    deadline = time.monotonic() + 10
    while fts3_server.double.store.job(job_id)["job_state"] != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    tool.cancel([job_id, "00000000-0000-0000-0000-000000000000"])
    status = wait_final(tool, [job_id])["r1"]
    assert status.state is TransferState.FAILED and status.external_state == "CANCELED"
    assert time.monotonic() - started < 10
    assert fts3_server.double.store.job(job_id)["job_state"] == "CANCELED"


def test_bulk_query_with_unknown_id_reports_lost(tool, make_file, tmp_path, wait_final):
    f = make_file()
    submitted = tool.submit(tool.prepare([spec("r1", f.url, f"file://{tmp_path}/dst", adler32=f.adler32)]))
    unknown = "11111111-2222-3333-4444-555555555555"
    statuses = wait_final(tool, [*submitted.values(), unknown])
    assert statuses["r1"].state is TransferState.DONE
    assert statuses[unknown].state is TransferState.LOST and statuses[unknown].request_id is None
    assert wait_final(tool, [unknown])[unknown].state is TransferState.LOST  # single id: plain 404


def test_multi_source_falls_back_to_the_next_replica(tool, make_file, tmp_path, wait_final):
    f = make_file()
    transfer = TransferSpec(
        "r1", [f"file://{tmp_path}/missing", f.url], f"file://{tmp_path}/dst", adler32=f.adler32
    )
    submitted = tool.submit(tool.prepare([transfer]))
    status = wait_final(tool, submitted.values())["r1"]
    assert status.state is TransferState.DONE and status.source_url == f.url


def test_multihop_runs_hops_in_order(tool, fts3_server, make_file, tmp_path, wait_final):
    f = make_file()
    hops = [
        TransferSpec(
            "h2",
            [f"file://{tmp_path}/hop1"],
            f"file://{tmp_path}/hop2",
            adler32=f.adler32,
            multihop_path="p",
            hop_index=1,
        ),
        TransferSpec(
            "h1", [f.url], f"file://{tmp_path}/hop1", adler32=f.adler32, multihop_path="p", hop_index=0
        ),
    ]
    submitted = tool.submit(tool.prepare(hops))
    statuses = wait_final(tool, set(submitted.values()))
    assert statuses["h1"].state is statuses["h2"].state is TransferState.DONE
    assert fts3_server.double.store.job(submitted["h1"])["job_type"] == "H"
    assert (tmp_path / "hop2").read_bytes() == f.data


def test_token_is_sent_and_required(make_file, tmp_path, wait_final):
    f = make_file()
    with Fts3DoubleServer(Fts3Double(require_token="secret")) as server:
        with pytest.raises(TransferToolError):
            anonymous = FTS3TransferTool(server.url)
            anonymous.submit(
                anonymous.prepare([spec("r1", f.url, f"file://{tmp_path}/d", adler32=f.adler32)])
            )
        tool = FTS3TransferTool(server.url, token="secret")
        submitted = tool.submit(tool.prepare([spec("r1", f.url, f"file://{tmp_path}/d", adler32=f.adler32)]))
        assert wait_final(tool, submitted.values())["r1"].state is TransferState.DONE


def test_threads_sharing_a_tool_all_get_job_ids(fts3_server, make_file, tmp_path):
    """Two submitter threads share one tool per endpoint; while the first connects (``/whoami``
    answers slowly), the second must wait for the identity its job ids derive from."""
    f = make_file()
    tool = FTS3TransferTool(fts3_server.url, token="t", timeout=5)
    fts3_server.double.faults.delay_next(1, 0.5, ("GET", "/whoami"))
    results, errors = [], []

    def prepare(name: str) -> None:
        try:
            results.append(tool.prepare([spec(name, f.url, f"file://{tmp_path}/{name}", adler32=f.adler32)]))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(f"r{i}",)) for i in range(2)]
    threads[0].start()
    time.sleep(0.2)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2
    tool.close()
