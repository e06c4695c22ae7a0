"""The FTS job body the tool builds with the official client's helpers."""

from __future__ import annotations

from datamgmt.transfertool.base import TransferSpec
from datamgmt.transfertool.fts3 import FTS3TransferTool


def test_job_body_carries_checksum_metadata_and_parameters():
    specs = [
        TransferSpec(
            "r1",
            ["root://a//f1"],
            "davs://b//f1",
            bytes=7,
            adler32="0a1b2c3d",
            activity="Express",
            priority=4,
            rule_id="R",
            overwrite=False,
            verify_checksum="target",
            metadata={"scope": "s"},
        ),
        TransferSpec(
            "r2",
            ["root://a//f2"],
            "davs://b//f2",
            md5="abc",
            priority=4,
            rule_id="R",
            overwrite=False,
            verify_checksum="target",
        ),
    ]
    body = FTS3TransferTool.build_job(specs, "sid-1")
    first, second = body["files"]
    assert first["sources"] == ["root://a//f1"] and first["destinations"] == ["davs://b//f1"]
    assert (
        first["checksum"] == "ADLER32:0a1b2c3d" and first["filesize"] == 7 and first["activity"] == "Express"
    )
    assert first["metadata"]["request_id"] == "r1" and first["metadata"]["scope"] == "s"
    assert second["checksum"] == "MD5:abc"
    params = body["params"]
    assert params["verify_checksum"] == "target" and params["overwrite"] is False and params["priority"] == 4
    assert params["id_generator"] == "deterministic" and params["sid"] == "sid-1"
    assert params["job_metadata"]["issuer"] == "datamgmt" and params["multihop"] is False


def test_multi_source_and_multihop_jobs():
    multi = FTS3TransferTool.build_job(
        [TransferSpec("m", ["root://a//f", "root://c//f"], "davs://b//f")], "sid-2"
    )
    assert multi["files"][0]["sources"] == ["root://a//f", "root://c//f"]
    assert multi["params"]["job_metadata"]["multi_sources"] is True
    hops = [
        TransferSpec("h1", ["root://a//f"], "davs://x//f", multihop_path="p"),
        TransferSpec("h2", ["davs://x//f"], "davs://b//f", multihop_path="p", hop_index=1),
    ]
    assert FTS3TransferTool.build_job(hops, "sid-3")["params"]["multihop"] is True


def test_tape_source_stages_and_tape_destination_is_watched_until_archived():
    staged = FTS3TransferTool.build_job(
        [
            TransferSpec(
                "r1", ["root://tape//f"], "davs://disk//f", bring_online=43200, copy_pin_lifetime=172800
            )
        ],
        "sid",
    )
    params, metadata = staged["params"], staged["files"][0]["metadata"]
    assert (params["bring_online"], params["copy_pin_lifetime"], params["archive_timeout"]) == (
        43200,
        172800,
        None,
    )
    assert (metadata["src_type"], metadata["dst_type"]) == ("TAPE", "DISK")
    archived = FTS3TransferTool.build_job(
        [TransferSpec("r2", ["davs://disk//f"], "root://tape//f", overwrite=False, archive_timeout=86400)],
        "sid",
    )
    params, metadata = archived["params"], archived["files"][0]["metadata"]
    assert (params["bring_online"], params["archive_timeout"], params["dst_file_report"]) == (
        None,
        86400,
        True,
    )
    assert params["overwrite"] is False and params["overwrite_when_only_on_disk"] is True
    assert (metadata["src_type"], metadata["dst_type"]) == ("DISK", "TAPE")
    plain = FTS3TransferTool.build_job([TransferSpec("r3", ["davs://a//f"], "davs://b//f")], "sid")["params"]
    assert plain["bring_online"] is None and plain["archive_timeout"] is None and not plain["dst_file_report"]
