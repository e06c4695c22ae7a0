"""Verified uploads to every backend, and downloads that detect a damaged replica and fall back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from datamgmt.exceptions import ChecksumMismatch
from datamgmt.rse.checksum import file_checksums
from datamgmt.rse.download import download_file
from datamgmt.rse.upload import upload_file

if TYPE_CHECKING:
    from conftest import Backend

pytestmark = pytest.mark.integration


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.dat"
    path.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    return path


def test_upload_is_verified_and_renamed(data_backend: Backend, source: Path) -> None:
    protocol = data_backend.protocol
    pfn = protocol.path_to_pfn(data_backend.unique_path())
    local = file_checksums(source)
    result = upload_file(protocol, str(source), pfn, size=local.size, adler32=local.adler32)
    assert (result.pfn, result.md5) == (pfn, local.md5)
    assert protocol.stat(pfn).size == local.size
    if data_backend.data_dir is not None:
        stored = os.listdir(data_backend.disk_path(pfn).parent)
        assert stored == [os.path.basename(pfn)], stored


@pytest.mark.parametrize(("damaged", "intact"), [("root", "posix"), ("posix", "davs")])
def test_download_detects_flipped_byte_and_falls_back(
    backends: dict[str, Backend], damaged: str, intact: str, source: Path, tmp_path: Path
) -> None:
    replicas = {}
    for name in (damaged, intact):
        backend = backends[name]
        pfn = backend.protocol.path_to_pfn(backend.unique_path())
        upload_file(backend.protocol, str(source), pfn)
        replicas[name] = (backend.protocol, pfn)

    on_disk = backends[damaged].disk_path(replicas[damaged][1])
    with open(on_disk, "r+b") as handle:  # damage the stored bytes behind the server's back
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0x01]))

    local = file_checksums(source)
    target = tmp_path / "downloaded" / "file.dat"
    result = download_file([replicas[damaged], replicas[intact]], str(target), adler32=local.adler32)
    assert result.pfn == replicas[intact][1]
    assert [(pfn, type(error)) for pfn, error in result.failures] == [
        (replicas[damaged][1], ChecksumMismatch)
    ]
    assert file_checksums(target) == local

    with pytest.raises(ChecksumMismatch):
        download_file([replicas[damaged]], str(tmp_path / "other"), md5=local.md5)
    assert not (tmp_path / "other").exists()
