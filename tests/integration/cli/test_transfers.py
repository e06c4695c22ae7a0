"""Upload and download of 200 files across two POSIX RSEs, with checksums and replica fallback."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest

from datamgmt.client.downloads import download
from datamgmt.client.uploads import items_for, upload
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration

FILES = 200


def make_files(directory: Path, count: int) -> dict[str, bytes]:
    directory.mkdir()
    contents = {}
    for index in range(count):
        data = os.urandom(512 + 37 * index)
        (directory / f"file{index:03d}").write_bytes(data)
        contents[f"file{index:03d}"] = data
    return contents


def test_200_files_both_rses_with_a_corrupted_replica(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    contents = make_files(tmp_path / "data", FILES)
    for rse in two_rses:
        result = live.user(
            "upload",
            "--rse",
            rse,
            "--scope",
            "user.root",
            "--dataset",
            "user.root:bulk",
            "--no-rule",
            "--threads",
            "8",
            "--json",
            str(tmp_path / "data"),
        )
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(rows) == FILES and all(row["status"] == "ok" for row in rows)
        assert all(
            row["adler32"] == f"{zlib.adler32(contents[row['did'].split(':')[1]]) & 0xFFFFFFFF:08x}"
            for row in rows
        )

    replicas = list(live.client.list_replicas([("user.root", "bulk")]))
    assert len(replicas) == FILES and all(set(replica["rses"]) == set(two_rses) for replica in replicas)

    # Corrupt file007 on SITE-A, the RSE the download prefers (--near SITE-A): same size, other bytes.
    victim = next(replica for replica in replicas if replica["name"] == "file007")
    pfn = victim["rses"]["SITE-A"][0]
    path = Path(pfn.removeprefix("file://"))
    path.write_bytes(bytes(len(contents["file007"])))

    result = live.user(
        "download",
        "--dir",
        str(tmp_path / "out"),
        "--near",
        "SITE-A",
        "--threads",
        "8",
        "--json",
        "user.root:bulk",
    )
    assert result.exit_code == 0, result.output
    rows = {json.loads(line)["did"]: json.loads(line) for line in result.stdout.splitlines()}
    assert len(rows) == FILES
    assert rows["user.root:file007"]["rse"] == "SITE-B" and rows["user.root:file007"]["fallbacks"] == 1
    assert {row["rse"] for did, row in rows.items() if did != "user.root:file007"} == {"SITE-A"}
    assert "rejected" in result.stderr and pfn in result.stderr
    for name, data in contents.items():
        assert (tmp_path / "out" / "user.root" / name).read_bytes() == data


def test_every_replica_corrupted_fails_the_file(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    contents = make_files(tmp_path / "data", 3)
    for rse in two_rses:
        report = upload(live.client, items_for([str(tmp_path / "data")]), "user.root", rse, threads=2)
        assert not report.failed
    replicas = list(live.client.list_replicas([("user.root", "file001")]))
    for pfns in replicas[0]["rses"].values():
        Path(pfns[0].removeprefix("file://")).write_bytes(b"\0" * len(contents["file001"]))

    outcomes = download(live.client, replicas, str(tmp_path / "out"))
    assert outcomes[0].error is not None and outcomes[0].error.error_class == "FileConsistencyMismatch"
    assert not (tmp_path / "out" / "user.root" / "file001").exists()
    result = live.user("download", "--dir", str(tmp_path / "cli"), "user.root:file001", "user.root:file002")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "Error: DatamgmtError: 1 of 2 files failed" in result.stderr
    assert (tmp_path / "cli" / "user.root" / "file002").read_bytes() == contents["file002"]


def test_upload_again_skips_what_is_there(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    make_files(tmp_path / "data", 1)
    args = (
        "upload",
        "--rse",
        "SITE-A",
        "--scope",
        "user.root",
        "--no-rule",
        str(tmp_path / "data" / "file000"),
    )
    assert live.user(*args).exit_code == 0
    again = live.user(*args)
    assert again.exit_code == 0 and "ok: already there" in again.stdout
