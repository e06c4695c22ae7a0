"""Storage operations stay inside the prefix on the real file system (issue 15, defect 5).

Each attack is tried against the POSIX protocol and gfal2's ``file://`` plugin on real
directories: symbolic links planted under the prefix that point out of it, and percent-encoded
paths that are below the prefix only once decoded while the file system opens them raw. The
victim file outside the prefix must be left exactly as it was, and nothing may be created there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from datamgmt.exceptions import InvalidPath
from datamgmt.rse.lfn2pfn import path_below_prefix
from datamgmt.rse.protocols import Protocol, create_protocol
from datamgmt.rse.upload import upload_file

VICTIM_BYTES = b"another owner's data\n"

IMPLEMENTATIONS = ["posix", "gfal"]


def _has_gfal2() -> bool:
    try:
        import gfal2  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=IMPLEMENTATIONS)
def area(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Protocol, Path, Path]:
    """A protocol on ``tmp/rse`` and, next to it, ``tmp/outside`` holding a victim file."""
    if request.param == "gfal" and not _has_gfal2():
        pytest.skip("gfal2 bindings not installed")
    prefix, outside = tmp_path / "rse", tmp_path / "outside"
    prefix.mkdir()
    outside.mkdir()
    (outside / "victim").write_bytes(VICTIM_BYTES)
    protocol = create_protocol(
        {"scheme": "file", "prefix": str(prefix), "impl": request.param, "domains": {"wan": {"read": 1}}}
    )
    return protocol, prefix, outside


def _pfn(path: Path | str) -> str:
    return f"file://{path}"


def _victim_untouched(outside: Path) -> None:
    assert (outside / "victim").read_bytes() == VICTIM_BYTES
    assert sorted(os.listdir(outside)) == ["victim"]


def test_put_refuses_a_link_in_the_final_component(area: tuple[Protocol, Path, Path], tmp_path: Path) -> None:
    protocol, prefix, outside = area
    (prefix / "file").symlink_to(outside / "victim")
    local = tmp_path / "new"
    local.write_bytes(b"attacker bytes")
    with pytest.raises(InvalidPath):
        protocol.put(str(local), _pfn(prefix / "file"))
    _victim_untouched(outside)


def test_put_refuses_a_linked_parent_directory(area: tuple[Protocol, Path, Path], tmp_path: Path) -> None:
    protocol, prefix, outside = area
    (prefix / "user").symlink_to(outside)
    local = tmp_path / "new"
    local.write_bytes(b"attacker bytes")
    for target in ("user/victim", "user/sub/created"):
        with pytest.raises(InvalidPath):
            protocol.put(str(local), _pfn(prefix / target))
    _victim_untouched(outside)


def test_verified_upload_through_a_link_leaves_nothing_outside(
    area: tuple[Protocol, Path, Path], tmp_path: Path
) -> None:
    """The whole upload path (temporary name, verify, rename) as the client and conveyor use it."""
    protocol, prefix, outside = area
    (prefix / "user").symlink_to(outside)
    local = tmp_path / "new"
    local.write_bytes(b"attacker bytes")
    with pytest.raises(InvalidPath):
        upload_file(protocol, str(local), _pfn(prefix / "user" / "victim"), overwrite=True)
    _victim_untouched(outside)


def test_delete_refuses_a_linked_parent_directory(area: tuple[Protocol, Path, Path]) -> None:
    protocol, prefix, outside = area
    (prefix / "user").symlink_to(outside)
    with pytest.raises(InvalidPath):
        protocol.delete(_pfn(prefix / "user" / "victim"))
    _victim_untouched(outside)


def test_delete_refuses_a_link_and_keeps_it(area: tuple[Protocol, Path, Path]) -> None:
    protocol, prefix, outside = area
    (prefix / "file").symlink_to(outside / "victim")
    with pytest.raises(InvalidPath):
        protocol.delete(_pfn(prefix / "file"))
    assert (prefix / "file").is_symlink()
    _victim_untouched(outside)


def test_rename_refuses_to_move_into_a_linked_directory(area: tuple[Protocol, Path, Path]) -> None:
    protocol, prefix, outside = area
    (prefix / "user").symlink_to(outside)
    (prefix / "mine").write_bytes(b"attacker bytes")
    with pytest.raises(InvalidPath):
        protocol.rename(_pfn(prefix / "mine"), _pfn(prefix / "user" / "victim"))
    _victim_untouched(outside)


@pytest.mark.parametrize("operation", ["stat", "get", "checksum"])
def test_reads_refuse_links_that_leave_the_prefix(
    area: tuple[Protocol, Path, Path], tmp_path: Path, operation: str
) -> None:
    protocol, prefix, outside = area
    (prefix / "file").symlink_to(outside / "victim")
    (prefix / "dir").symlink_to(outside)
    calls: dict[str, Callable[[str], object]] = {
        "stat": protocol.stat,
        "get": lambda pfn: protocol.get(pfn, str(tmp_path / "copy")),
        "checksum": lambda pfn: protocol.checksum(pfn, "adler32"),
    }
    for target in ("file", "dir/victim"):
        with pytest.raises(InvalidPath):
            calls[operation](_pfn(prefix / target))
    assert not (tmp_path / "copy").exists()


def test_links_inside_the_prefix_still_read(area: tuple[Protocol, Path, Path]) -> None:
    protocol, prefix, _ = area
    (prefix / "real").write_bytes(b"12345")
    (prefix / "alias").symlink_to(prefix / "real")
    assert protocol.stat(_pfn(prefix / "alias")).size == 5


@pytest.mark.parametrize("encoded", ["rs%65/victim", "rse%2fsub/victim", "rse%2Fsub/victim"])
def test_encoded_paths_are_confined_as_the_file_system_reads_them(
    area: tuple[Protocol, Path, Path], encoded: str
) -> None:
    """Decoded, these lie below ``tmp/rse/``; raw, as opened, they are siblings of it."""
    protocol, prefix, _ = area
    sibling = prefix.parent / encoded.split("/")[0]
    sibling.mkdir()
    (sibling / "victim").write_bytes(VICTIM_BYTES)
    pfn = _pfn(prefix.parent / encoded)
    with pytest.raises(InvalidPath):
        protocol.delete(pfn)
    with pytest.raises(InvalidPath):
        protocol.stat(pfn)
    assert (sibling / "victim").read_bytes() == VICTIM_BYTES


@pytest.mark.parametrize("path", ["/data/rs%65/x", "/data/rse%2fx", "/data/%72se/x", "/data/rse/%2e%2e/x"])
def test_path_below_prefix_holds_under_both_readings(path: str) -> None:
    with pytest.raises(InvalidPath):
        path_below_prefix("/data/rse/", path)


def test_encoded_slash_below_the_prefix_stays_below_either_way() -> None:
    assert path_below_prefix("/data/rse/", "/data/rse/a%2fb") == "a/b"


def test_a_prefix_that_is_itself_a_link_works(tmp_path: Path) -> None:
    """The configured prefix is trusted: a mount reached through a link is confinement's root."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "mount").symlink_to(tmp_path / "disk")
    protocol = create_protocol({"scheme": "file", "prefix": str(tmp_path / "mount" / "rse")})
    local = tmp_path / "local"
    local.write_bytes(b"12345")
    pfn = _pfn(tmp_path / "mount" / "rse" / "a" / "b")
    upload_file(protocol, str(local), pfn)
    assert (tmp_path / "disk" / "rse" / "a" / "b").read_bytes() == b"12345"
    assert protocol.stat(pfn).size == 5
    protocol.delete(pfn)
    assert not (tmp_path / "disk" / "rse" / "a" / "b").exists()
