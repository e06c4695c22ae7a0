"""The embedded transfer tool: real gfal2 copies in a thread pool, verified at both ends."""

from __future__ import annotations

import time

import pytest

from datamgmt.transfertool.base import TransferSpec, TransferState
from datamgmt.transfertool.local import LocalTransferTool, local_jobs

pytestmark = pytest.mark.integration


@pytest.fixture
def tool(gfal2_options):
    tool = LocalTransferTool(threads=2, gfal2_options=gfal2_options)
    yield tool
    tool.close()


def test_copies_and_verifies(tool, make_file, tmp_path, wait_final):
    files = [make_file() for _ in range(4)]
    submitted = tool.submit(
        tool.prepare(
            [
                TransferSpec(f"r{i}", [f.url], f"file://{tmp_path}/dst/{i}", adler32=f.adler32)
                for i, f in enumerate(files)
            ]
        )
    )
    assert len(set(submitted.values())) == 4 and all(v.startswith("local-") for v in submitted.values())
    statuses = wait_final(tool, submitted.values())
    for i, f in enumerate(files):
        assert statuses[f"r{i}"].state is TransferState.DONE, statuses[f"r{i}"].reason
        assert statuses[f"r{i}"].transferred_bytes == len(f.data)
        assert (tmp_path / "dst" / str(i)).read_bytes() == f.data


def test_failures_have_clear_reasons(tool, make_file, tmp_path, wait_final):
    good, corrupt = make_file(), make_file()
    corrupt.path.write_bytes(b"corrupted" + corrupt.data[9:])
    submitted = tool.submit(
        tool.prepare(
            [
                TransferSpec(
                    "missing", [f"file://{tmp_path}/nope"], f"file://{tmp_path}/d1", adler32="00000001"
                ),
                TransferSpec("corrupt", [corrupt.url], f"file://{tmp_path}/d2", adler32=corrupt.adler32),
                TransferSpec("down", [good.url], "davs://127.0.0.1:1/closed/x", adler32=good.adler32),
                TransferSpec(
                    "exists", [good.url], f"file://{good.path}", adler32=good.adler32, overwrite=False
                ),
            ]
        )
    )
    statuses = wait_final(tool, submitted.values())
    assert all(s.state is TransferState.FAILED for s in statuses.values())
    assert statuses["missing"].reason.startswith("SOURCE [2]")
    assert statuses["corrupt"].reason.startswith("SOURCE [5] SOURCE CHECKSUM MISMATCH")
    assert statuses["down"].reason.startswith("DESTINATION")
    assert (
        statuses["exists"].reason == "DESTINATION [17] Destination file exists and overwrite is not enabled"
    )
    assert not (tmp_path / "d2").exists()


def test_second_source_is_used_when_the_first_fails(tool, make_file, tmp_path, wait_final):
    f = make_file()
    submitted = tool.submit(
        tool.prepare(
            [TransferSpec("r", [f"file://{tmp_path}/nope", f.url], f"file://{tmp_path}/d", adler32=f.adler32)]
        )
    )
    status = wait_final(tool, submitted.values())["r"]
    assert status.state is TransferState.DONE and status.source_url == f.url


def test_cancel_running_and_queued(gfal2_options, wait_final):
    tool = LocalTransferTool(threads=1, gfal2_options=gfal2_options)
    slow = [
        TransferSpec(
            f"s{i}",
            [f"mock://localhost/src{i}?size=10&checksum=0a1b2c3d"],
            f"mock://localhost/dst{i}?time=30&checksum=0a1b2c3d",
            adler32="0a1b2c3d",
        )
        for i in range(2)
    ]
    submitted = tool.submit(tool.prepare(slow))
    deadline = time.monotonic() + 10
    while tool.query([submitted["s0"]])[0].external_state != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tool.query([submitted["s1"]])[0].external_state == "QUEUED"
    started = time.monotonic()
    tool.cancel(submitted.values())
    statuses = wait_final(tool, submitted.values(), timeout=10)
    assert all(s.state is TransferState.FAILED and "canceled" in s.reason for s in statuses.values())
    assert time.monotonic() - started < 10
    tool.close()


def test_unknown_ids_are_lost_after_a_restart(gfal2_options, make_file, tmp_path, wait_final):
    f = make_file()
    before = LocalTransferTool(gfal2_options=gfal2_options)
    submitted = before.submit(
        before.prepare([TransferSpec("r", [f.url], f"file://{tmp_path}/d", adler32=f.adler32)])
    )
    assert wait_final(before, submitted.values())["r"].state is TransferState.DONE
    before.close()
    after = LocalTransferTool(gfal2_options=gfal2_options)
    (status,) = after.query(submitted.values())
    assert status.state is TransferState.LOST and status.request_id is None
    after.close()


def test_finished_transfers_are_forgotten_after_retention(gfal2_options, make_file, tmp_path, wait_final):
    f = make_file()
    tool = LocalTransferTool(gfal2_options=gfal2_options, retention=0.2)
    submitted = tool.submit(
        tool.prepare([TransferSpec("r", [f.url], f"file://{tmp_path}/d", adler32=f.adler32)])
    )
    assert wait_final(tool, submitted.values())["r"].state is TransferState.DONE
    time.sleep(0.3)
    assert tool.query(submitted.values())[0].state is TransferState.LOST
    tool.close()


def test_multihop_chain_stops_at_the_first_failure(tool, make_file, tmp_path, wait_final):
    f = make_file()
    hops = [
        TransferSpec(
            "h1", [f"file://{tmp_path}/nope"], f"file://{tmp_path}/hop", adler32=f.adler32, multihop_path="p"
        ),
        TransferSpec(
            "h2",
            [f"file://{tmp_path}/hop"],
            f"file://{tmp_path}/end",
            adler32=f.adler32,
            multihop_path="p",
            hop_index=1,
        ),
    ]
    statuses = wait_final(tool, tool.submit(tool.prepare(hops)).values())
    assert statuses["h1"].state is statuses["h2"].state is TransferState.FAILED
    assert statuses["h2"].reason == "Unused hop in multi-hop"


def test_a_transfer_sent_again_under_its_job_key_gets_its_id_back():
    (job,) = local_jobs([TransferSpec("r", ["file:///a"], "file:///b")])
    (again,) = local_jobs([TransferSpec("r", ["file:///a"], "file:///b", job_key=job.key)])
    assert (again.key, again.external_ids) == (job.key, job.external_ids) == (job.key, {"r": job.key})
