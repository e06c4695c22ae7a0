"""Verified upload and falling-back download, on local POSIX storage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datamgmt.exceptions import (
    ChecksumMismatch,
    FileAlreadyExists,
    InputValidationError,
    SourceNotFound,
    StorageError,
)
from datamgmt.rse.checksum import file_checksums
from datamgmt.rse.download import download_file
from datamgmt.rse.protocols import create_protocol
from datamgmt.rse.protocols.base import ProgressCallback
from datamgmt.rse.protocols.posix import PosixProtocol
from datamgmt.rse.upload import TEMPORARY_MARKER, upload_file


class CorruptingPosix(PosixProtocol):
    """Storage that damages every file it receives (one flipped byte)."""

    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        super().put(local_path, pfn, progress_callback)
        with open(self.local_path(pfn), "r+b") as handle:
            first = handle.read(1)
            handle.seek(0)
            handle.write(bytes([first[0] ^ 0xFF]))


def posix(root: Path, cls: type[PosixProtocol] = PosixProtocol) -> PosixProtocol:
    return cls({"scheme": "file", "prefix": str(root), "domains": {"wan": {"read": 1}}})


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.dat"
    path.write_bytes(os.urandom(100_000))
    return path


def test_upload_verifies_and_renames(tmp_path: Path, source: Path) -> None:
    storage = posix(tmp_path / "rse")
    pfn = storage.lfns2pfns([{"scope": "foo", "name": "bar"}])["foo:bar"]
    seen: list[int] = []
    result = upload_file(storage, str(source), pfn, size=100_000, progress_callback=seen.append)
    local = file_checksums(source)
    assert (result.size, result.adler32, result.md5) == (local.size, local.adler32, local.md5)
    assert storage.checksum(pfn, "adler32") == local.adler32
    assert seen[-1] == 100_000
    assert os.listdir(os.path.dirname(storage.local_path(pfn))) == ["bar"]


def test_upload_refuses_existing_unless_overwrite(tmp_path: Path, source: Path) -> None:
    storage = posix(tmp_path / "rse")
    pfn = storage.path_to_pfn("foo/bar")
    upload_file(storage, str(source), pfn)
    with pytest.raises(FileAlreadyExists):
        upload_file(storage, str(source), pfn)
    upload_file(storage, str(source), pfn, overwrite=True)


def test_upload_refuses_local_file_that_differs_from_catalogue(tmp_path: Path, source: Path) -> None:
    storage = posix(tmp_path / "rse")
    with pytest.raises(ChecksumMismatch):
        upload_file(storage, str(source), storage.path_to_pfn("foo/bar"), adler32="00000001")
    assert not (tmp_path / "rse").exists()


def test_corrupted_upload_leaves_nothing_behind(tmp_path: Path, source: Path) -> None:
    storage = posix(tmp_path / "rse", CorruptingPosix)
    pfn = storage.path_to_pfn("foo/bar")
    with pytest.raises(ChecksumMismatch):
        upload_file(storage, str(source), pfn)
    assert os.listdir(tmp_path / "rse" / "foo") == []
    # a size-only check cannot see a flipped byte
    upload_file(storage, str(source), pfn, verify_checksum=False)
    assert not any(TEMPORARY_MARKER in name for name in os.listdir(tmp_path / "rse" / "foo"))


def test_download_falls_back_past_corrupt_and_missing_replicas(tmp_path: Path, source: Path) -> None:
    good, bad = posix(tmp_path / "good"), posix(tmp_path / "bad", CorruptingPosix)
    for storage in (good, bad):
        upload_file(storage, str(source), storage.path_to_pfn("foo/bar"), verify_checksum=False)
    local = file_checksums(source)
    candidates = [
        (good, good.path_to_pfn("foo/missing")),
        (bad, bad.path_to_pfn("foo/bar")),
        (good, good.path_to_pfn("foo/bar")),
    ]
    target = tmp_path / "out" / "bar"
    result = download_file(candidates, str(target), adler32=local.adler32, size=local.size)
    assert result.pfn == good.path_to_pfn("foo/bar")
    assert [type(error) for _, error in result.failures] == [SourceNotFound, ChecksumMismatch]
    assert target.read_bytes() == source.read_bytes()
    assert os.listdir(tmp_path / "out") == ["bar"]


def test_download_raises_when_all_replicas_fail(tmp_path: Path, source: Path) -> None:
    bad = posix(tmp_path / "bad", CorruptingPosix)
    pfn = bad.path_to_pfn("foo/bar")
    upload_file(bad, str(source), pfn, verify_checksum=False)
    md5 = file_checksums(source).md5
    target = tmp_path / "out"
    with pytest.raises(ChecksumMismatch):
        download_file([(bad, pfn)], str(target), md5=md5)
    with pytest.raises(StorageError) as raised:
        download_file([(bad, pfn), (bad, bad.path_to_pfn("nope"))], str(target), md5=md5)
    assert type(raised.value) is StorageError
    with pytest.raises(StorageError):
        download_file([], str(target), md5=md5)
    with pytest.raises(InputValidationError):
        download_file([(bad, pfn)], str(target))
    assert not target.exists()


def test_factory_posix_round_trip(tmp_path: Path, source: Path) -> None:
    storage = create_protocol({"scheme": "file", "prefix": str(tmp_path / "rse"), "impl": "posix"})
    pfn = storage.path_to_pfn("a/b")
    storage.put(str(source), pfn)
    storage.rename(pfn, storage.path_to_pfn("c/d"))
    assert not storage.exists(pfn)
    storage.get(storage.path_to_pfn("c/d"), str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == source.read_bytes()
