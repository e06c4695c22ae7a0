"""One protocol suite, run against every backend: posix, root, davs, s3 and gfal2 mock://."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from datamgmt.exceptions import InvalidPath, SourceNotFound, StorageError
from datamgmt.rse.protocols import create_protocol

if TYPE_CHECKING:
    from conftest import Backend

pytestmark = pytest.mark.integration


def expected_checksum(data: bytes, algorithm: str) -> str:
    return f"{zlib.adler32(data):08x}" if algorithm == "adler32" else hashlib.md5(data).hexdigest()


def test_stat_and_checksum(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(123_457)
    pfn = backend.create(data, tmp_path)
    assert backend.protocol.stat(pfn).size == len(data)
    assert backend.protocol.exists(pfn)
    for algorithm in backend.checksums:
        assert backend.protocol.checksum(pfn, algorithm) == expected_checksum(data, algorithm)


def test_missing_file(backend: Backend, tmp_path: Path) -> None:
    pfn = backend.missing()
    assert not backend.protocol.exists(pfn)
    operations = [
        lambda: backend.protocol.stat(pfn),
        lambda: backend.protocol.checksum(pfn, "adler32"),
        lambda: backend.protocol.delete(pfn),
    ]
    if backend.stores_data:
        operations += [
            lambda: backend.protocol.get(pfn, str(tmp_path / "out")),
            lambda: backend.protocol.rename(pfn, backend.protocol.path_to_pfn(backend.unique_path())),
        ]
    for operation in operations:
        with pytest.raises(SourceNotFound):
            operation()
    assert not (tmp_path / "out").exists()


def test_mock_errno_other_than_enoent_is_a_storage_error(backends: dict[str, Backend]) -> None:
    mock = backends["mock"].protocol
    pfn = mock.path_to_pfn("denied/file") + "?errno=13"
    with pytest.raises(StorageError) as raised:
        mock.stat(pfn)
    assert not isinstance(raised.value, SourceNotFound)
    assert "errno 13" in raised.value.message


def test_put_get_delete_round_trip(data_backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    source = tmp_path / "source"
    source.write_bytes(data)
    protocol = data_backend.protocol
    pfn = protocol.path_to_pfn(data_backend.unique_path())
    progress: list[int] = []
    protocol.put(str(source), pfn, progress_callback=progress.append)
    assert progress and progress[-1] == len(data)
    target = tmp_path / "deep" / "target"
    protocol.get(pfn, str(target))
    assert target.read_bytes() == data
    protocol.delete(pfn)
    assert not protocol.exists(pfn)


def test_put_replaces_existing_file(data_backend: Backend, tmp_path: Path) -> None:
    pfn = data_backend.create(b"first version", tmp_path)
    replacement = tmp_path / "second"
    replacement.write_bytes(b"second, longer version")
    data_backend.protocol.put(str(replacement), pfn)
    assert data_backend.protocol.stat(pfn).size == len(b"second, longer version")


def test_rename(data_backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    protocol = data_backend.protocol
    pfn = data_backend.create(data, tmp_path)
    new_pfn = protocol.path_to_pfn(data_backend.unique_path())
    protocol.rename(pfn, new_pfn)
    assert not protocol.exists(pfn)
    assert protocol.checksum(new_pfn, "adler32") == expected_checksum(data, "adler32")


def test_local_source_missing(data_backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound):
        data_backend.protocol.put(str(tmp_path / "absent"), data_backend.missing())


def test_prefix_escape_is_refused_before_any_io(backend: Backend, tmp_path: Path) -> None:
    protocol = backend.protocol
    with pytest.raises(InvalidPath):
        protocol.path_to_pfn("../outside/file")
    with pytest.raises(InvalidPath):
        protocol.lfns2pfns([{"scope": "foo", "name": "bar", "path": "a/%2e%2e/%2E%2E/outside"}])
    victim = backend.create(b"must survive", tmp_path)
    inside = protocol.path_to_pfn("x")
    escapes = [inside[: -len("x")] + "../" + victim.split("/", 3)[3], protocol.base_url + "/elsewhere/file"]
    for pfn in escapes:
        with pytest.raises(InvalidPath):
            protocol.delete(pfn)
    assert protocol.stat(victim).size == len(b"must survive")


def test_missing_s3_bucket(backends: dict[str, Backend], tmp_path: Path) -> None:
    s3 = backends["s3"].protocol
    other = create_protocol(dataclasses.replace(s3.record, prefix="/no-such-bucket-here"), s3.settings)
    assert not other.exists(other.path_to_pfn("file"))
    source = tmp_path / "source"
    source.write_bytes(b"x")
    with pytest.raises(StorageError):
        other.put(str(source), other.path_to_pfn("file"))
