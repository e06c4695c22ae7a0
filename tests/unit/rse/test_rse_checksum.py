"""Streaming checksums agree with zlib and hashlib."""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datamgmt.exceptions import ChecksumMismatch, UnsupportedOperation
from datamgmt.rse.checksum import (
    adler32_file,
    adler32_of,
    checksum_of,
    checksums_equal,
    file_checksums,
    md5_file,
    md5_of,
    read_chunks,
    verify_expected,
)


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_chunked_values_equal_one_shot(chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    assert adler32_of(chunks) == f"{zlib.adler32(data):08x}"
    assert md5_of(chunks) == hashlib.md5(data).hexdigest()


def test_adler32_is_zero_padded_lowercase() -> None:
    assert adler32_of([b""]) == "00000001"
    assert adler32_of([b"a"]) == "00620062"
    high_bytes = b"\xff" * 7
    assert adler32_of([high_bytes]) == f"{zlib.adler32(high_bytes):08x}"


def test_file_checksums_match_library_values(tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)  # spans several read chunks
    path = tmp_path / "f"
    path.write_bytes(data)
    result = file_checksums(path)
    assert (result.size, result.adler32, result.md5) == (
        len(data),
        f"{zlib.adler32(data):08x}",
        hashlib.md5(data).hexdigest(),
    )
    assert adler32_file(path) == result.adler32
    assert md5_file(path) == result.md5
    assert b"".join(read_chunks(path, chunk_size=1000)) == data


def test_unknown_algorithm_refused() -> None:
    with pytest.raises(UnsupportedOperation):
        checksum_of([b"x"], "sha1")


@pytest.mark.parametrize(
    ("first", "second", "equal"),
    [("0a1b2c3d", "A1B2C3D", True), ("00000001", "1", True), ("0a1b2c3d", "0a1b2c3e", False)],
)
def test_checksums_equal_ignores_case_and_padding(first: str, second: str, equal: bool) -> None:
    assert checksums_equal(first, second) is equal


def test_verify_expected(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"payload")
    actual = file_checksums(path)
    verify_expected(actual, "f", size=7, adler32=actual.adler32.upper(), md5=actual.md5)
    with pytest.raises(ChecksumMismatch, match="bytes"):
        verify_expected(actual, "f", size=8)
    with pytest.raises(ChecksumMismatch, match="md5"):
        verify_expected(actual, "f", md5="0" * 32)
