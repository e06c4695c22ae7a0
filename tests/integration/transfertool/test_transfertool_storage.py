"""Both transfer tools moving files to and from real XRootD, WebDAV (XrdHttp) and S3 (moto) servers.

S3 has no adler32.  The local tool then verifies the S3 end with md5; an FTS job carries a single
checksum, so the caller verifies only the other end (as Rucio does).
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from datamgmt.transfertool.base import TransferSpec, TransferState
from datamgmt.transfertool.fts3 import FTS3TransferTool
from datamgmt.transfertool.local import LocalTransferTool

from .conftest import storage_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=["fts3", "local"])
def tool(request, gfal2_options, storage):
    if request.param == "fts3":
        server = request.getfixturevalue("fts3_server")
        tool = FTS3TransferTool(server.url, token="t")
    else:
        tool = LocalTransferTool(gfal2_options=gfal2_options)
    yield tool
    tool.close()


def test_round_trip_through_every_endpoint(tool, storage, make_file, tmp_path, wait_final):
    f = make_file(256 * 1024)
    md5 = hashlib.md5(f.data).hexdigest()
    name = uuid.uuid4().hex
    # An FTS job carries one checksum (adler32): like Rucio, verify only the end that has it.
    hops = [
        ("file", f.url, storage_url(storage, "root", name), "both"),
        ("root", storage_url(storage, "root", name), storage_url(storage, "davs", f"{name}.2"), "both"),
        ("davs", storage_url(storage, "davs", f"{name}.2"), storage_url(storage, "s3", name), "source"),
        ("s3", storage_url(storage, "s3", name), f"file://{tmp_path}/back", "target"),
    ]
    for label, source, destination, verify in hops:
        transfer = TransferSpec(
            label, [source], destination, adler32=f.adler32, md5=md5, verify_checksum=verify
        )
        status = wait_final(tool, tool.submit(tool.prepare([transfer])).values())[label]
        assert status.state is TransferState.DONE, f"{label}: {status.reason}"
    assert (tmp_path / "back").read_bytes() == f.data


def test_missing_source_on_storage_fails(tool, storage, tmp_path, wait_final):
    source = storage_url(storage, "root", f"missing-{uuid.uuid4().hex}")
    submitted = tool.submit(
        tool.prepare([TransferSpec("r", [source], f"file://{tmp_path}/d", adler32="00000001")])
    )
    status = wait_final(tool, submitted.values())["r"]
    assert status.state is TransferState.FAILED and status.reason.startswith("SOURCE")


def test_local_tool_verifies_the_s3_end_with_md5(gfal2_options, storage, make_file, tmp_path, wait_final):
    f = make_file()
    tool = LocalTransferTool(gfal2_options=gfal2_options)
    destination = storage_url(storage, "s3", uuid.uuid4().hex)
    good = TransferSpec("good", [f.url], destination, adler32=f.adler32, md5=hashlib.md5(f.data).hexdigest())
    assert wait_final(tool, tool.submit(tool.prepare([good])).values())["good"].state is TransferState.DONE
    bad = TransferSpec("bad", [destination], f"file://{tmp_path}/d", adler32=f.adler32, md5="0" * 32)
    status = wait_final(tool, tool.submit(tool.prepare([bad])).values())["bad"]
    assert status.state is TransferState.FAILED and status.reason.startswith(
        "SOURCE [5] SOURCE CHECKSUM MISMATCH MD5"
    )
    tool.close()
